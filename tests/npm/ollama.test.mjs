// loupe serve through the official `ollama` npm client: chat, generate, embed, tags, show,
// version, ps and errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import { missing, startServer } from './lib/serve.mjs';

const skip = missing() ?? false;
const MODEL = 'stories260K';
let server;
let ollama;

before(async () => {
  if (skip) return;
  server = await startServer();
  ollama = new Ollama({ host: server.base });
});
after(async () => {
  if (server) await server.stop();
});

const options = { temperature: 0, num_predict: 16, seed: 42 };

test('chat without streaming', { skip }, async () => {
  const r = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'Hello' }],
                                stream: false, options });
  assert.equal(r.model, MODEL);
  assert.equal(r.message.role, 'assistant');
  assert.ok(r.message.content.length > 0);
  assert.equal(r.done, true);
  assert.ok(['stop', 'length'].includes(r.done_reason));
  assert.ok(r.prompt_eval_count > 0);
  assert.ok(r.eval_count > 0 && r.eval_count <= 16);
  assert.ok(r.total_duration > 0);
  assert.ok(!Number.isNaN(Date.parse(r.created_at)));
  const again = await ollama.chat({ model: `${MODEL}:latest`,
                                    messages: [{ role: 'user', content: 'Hello' }],
                                    stream: false, options });
  assert.equal(again.message.content, r.message.content);
});

test('chat streaming adds up to the same answer', { skip }, async () => {
  const whole = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'A tale' }],
                                    stream: false, options });
  const parts = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'A tale' }],
                                    stream: true, options });
  let text = '';
  let last = null;
  let n = 0;
  for await (const part of parts) {
    n++;
    text += part.message.content;
    last = part;
  }
  assert.ok(n > 2);
  assert.equal(last.done, true);
  assert.equal(text, whole.message.content);
  assert.equal(last.eval_count, whole.eval_count);
});

test('format json gives JSON; a schema is followed', { skip }, async () => {
  const r = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'json' }],
                                stream: false, format: 'json',
                                options: { ...options, num_predict: 64 } });
  assert.doesNotThrow(() => JSON.parse(r.message.content));
  const schema = { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'],
                   additionalProperties: false };
  const s = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'json' }],
                                stream: false, format: schema,
                                options: { ...options, num_predict: 64 } });
  assert.ok(Number.isInteger(JSON.parse(s.message.content).n));
});

test('generate, raw and templated', { skip }, async () => {
  const raw = await ollama.generate({ model: MODEL, prompt: 'Once upon a time', raw: true,
                                      stream: false, options });
  assert.ok(raw.response.length > 0);
  assert.equal(raw.done, true);
  const templated = await ollama.generate({ model: MODEL, prompt: 'Once upon a time',
                                            stream: false, options });
  assert.ok(templated.prompt_eval_count > raw.prompt_eval_count);
});

test('embed: unit vectors, one per input', { skip }, async () => {
  const r = await ollama.embed({ model: MODEL, input: ['a cat', 'a dog'] });
  assert.equal(r.embeddings.length, 2);
  for (const e of r.embeddings) {
    const norm = Math.sqrt(e.reduce((s, x) => s + x * x, 0));
    assert.ok(Math.abs(norm - 1) < 1e-3);
  }
  assert.notDeepEqual(r.embeddings[0], r.embeddings[1]);
});

test('tags, show, version, ps', { skip }, async () => {
  const tags = await ollama.list();
  assert.equal(tags.models.length, 1);
  const m = tags.models[0];
  assert.ok(m.name.startsWith(MODEL));
  assert.ok(m.size > 0);
  assert.match(m.digest, /^[0-9a-f]{64}$/);
  assert.equal(m.details.format, 'gguf');
  const show = await ollama.show({ model: MODEL });
  assert.equal(show.details.format, 'gguf');
  assert.equal(show.model_info['general.architecture'], 'llama');
  const version = await ollama.version();
  assert.equal(typeof version.version, 'string');
  const ps = await ollama.ps();
  assert.ok(ps.models.some((x) => x.name.startsWith(MODEL)));
});

test('unknown model: 404 with an error message', { skip }, async () => {
  await assert.rejects(
    ollama.chat({ model: 'nope', messages: [{ role: 'user', content: 'x' }], stream: false }),
    (e) => e.name === 'ResponseError' && e.status_code === 404 && /not found/.test(e.error));
});
