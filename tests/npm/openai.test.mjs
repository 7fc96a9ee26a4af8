// loupe serve through the official `openai` npm client: chat (plain, streaming, logprobs,
// json_schema, tools), completions, embeddings and error statuses.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { missing, startServer } from './lib/serve.mjs';

const skip = missing() ?? false;
const MODEL = 'stories260K';
let server;
let client;

before(async () => {
  if (skip) return;
  server = await startServer(['--max-body', '65536']);
  client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  if (server) await server.stop();
});

const ask = (content, extra = {}) => ({
  model: MODEL,
  messages: [{ role: 'user', content }],
  temperature: 0,
  max_tokens: 24,
  ...extra,
});

test('lists the served model', { skip }, async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, [MODEL]);
});

test('chat completion: greedy, deterministic, with usage', { skip }, async () => {
  const a = await client.chat.completions.create(ask('Once upon a time'));
  const b = await client.chat.completions.create(ask('Once upon a time'));
  assert.equal(a.object, 'chat.completion');
  assert.equal(a.model, MODEL);
  assert.equal(a.choices[0].message.role, 'assistant');
  assert.equal(typeof a.choices[0].message.content, 'string');
  assert.ok(a.choices[0].message.content.length > 0);
  assert.ok(['stop', 'length'].includes(a.choices[0].finish_reason));
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  assert.ok(a.usage.prompt_tokens > 0);
  assert.ok(a.usage.completion_tokens > 0 && a.usage.completion_tokens <= 24);
  assert.equal(a.usage.total_tokens, a.usage.prompt_tokens + a.usage.completion_tokens);
});

test('streaming: the deltas add up to the non-streamed answer, then usage', { skip }, async () => {
  const whole = await client.chat.completions.create(ask('The little dog'));
  const stream = await client.chat.completions.create(
    ask('The little dog', { stream: true, stream_options: { include_usage: true } }));
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.delta?.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(chunks > 2);
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.deepEqual(usage.completion_tokens, whole.usage.completion_tokens);
});

test('logprobs with top_logprobs', { skip }, async () => {
  const r = await client.chat.completions.create(
    ask('A cat', { logprobs: true, top_logprobs: 3, max_tokens: 8 }));
  const items = r.choices[0].logprobs.content;
  assert.equal(items.length, r.usage.completion_tokens);
  for (const it of items) {
    assert.equal(typeof it.token, 'string');
    assert.ok(it.logprob <= 0);
    assert.ok(Array.isArray(it.bytes));
    assert.equal(it.top_logprobs.length, 3);
    // Greedy: the chosen token is the most likely one.
    assert.ok(it.top_logprobs[0].logprob >= it.logprob - 1e-6);
  }
});

test('json_schema output parses and follows the schema', { skip }, async () => {
  const schema = {
    type: 'object',
    properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer' },
                  pets: { type: 'array', items: { type: 'string', maxLength: 8 }, maxItems: 2 } },
    required: ['name', 'age', 'pets'],
    additionalProperties: false,
  };
  const r = await client.chat.completions.create(ask('Describe a person as JSON', {
    max_tokens: 200,
    response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } },
  }));
  const obj = JSON.parse(r.choices[0].message.content);
  assert.deepEqual(Object.keys(obj).sort(), ['age', 'name', 'pets']);
  assert.equal(typeof obj.name, 'string');
  assert.ok(Number.isInteger(obj.age));
  assert.ok(Array.isArray(obj.pets) && obj.pets.length <= 2);
});

test('a tool call: tool_choice required gives a well-formed call', { skip }, async () => {
  const tools = [{
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Weather for a city',
      parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 16 } },
                    required: ['city'], additionalProperties: false },
    },
  }];
  const r = await client.chat.completions.create(ask('Weather in Paris?', {
    tools, tool_choice: 'required', max_tokens: 120,
  }));
  const choice = r.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.tool_calls.length >= 1, true);
  const call = choice.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.ok(call.id.length > 0);
  const args = JSON.parse(call.function.arguments);
  assert.equal(typeof args.city, 'string');

  // The result goes back as a tool message and the conversation goes on.
  const follow = await client.chat.completions.create({
    model: MODEL, temperature: 0, max_tokens: 8, tools,
    messages: [{ role: 'user', content: 'Weather in Paris?' }, choice.message,
               { role: 'tool', tool_call_id: call.id, content: '{"temp": 21}' }],
  });
  assert.equal(follow.choices[0].message.role, 'assistant');
});

test('text completions', { skip }, async () => {
  const r = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 12,
                                              temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  assert.ok(r.usage.completion_tokens > 0);
});

test('embeddings: one unit vector per input', { skip }, async () => {
  const r = await client.embeddings.create({ model: MODEL, input: ['a cat', 'a dog', 'a cat'] });
  assert.equal(r.data.length, 3);
  const dim = r.data[0].embedding.length;
  assert.ok(dim > 0);
  for (const d of r.data) {
    assert.equal(d.embedding.length, dim);
    const norm = Math.sqrt(d.embedding.reduce((s, x) => s + x * x, 0));
    assert.ok(Math.abs(norm - 1) < 1e-3, `norm ${norm}`);
  }
  assert.deepEqual(r.data[0].embedding, r.data[2].embedding);
  assert.notDeepEqual(r.data[0].embedding, r.data[1].embedding);
});

test('error statuses come back as the client library\'s typed errors', { skip }, async () => {
  await assert.rejects(client.chat.completions.create({ ...ask('x'), model: 'no-such-model' }),
                       (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
  await assert.rejects(client.chat.completions.create(ask('x', { temperature: 7 })),
                       (e) => e instanceof OpenAI.BadRequestError && e.status === 400 &&
                              /temperature/.test(e.message));
  await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [] }),
                       (e) => e instanceof OpenAI.BadRequestError);
  await assert.rejects(client.chat.completions.create(ask('x'.repeat(70000))),
                       (e) => e instanceof OpenAI.APIError && e.status === 413);
  // A prompt longer than the context: 400 naming both numbers.
  await assert.rejects(client.chat.completions.create(ask('once upon a time '.repeat(400))),
                       (e) => e.status === 400 && /512/.test(e.message));
});

test('an API key is required when set', { skip }, async () => {
  const keyed = await startServer(['--api-key', 'sekret']);
  try {
    const wrong = new OpenAI({ baseURL: `${keyed.base}/v1`, apiKey: 'nope', maxRetries: 0 });
    await assert.rejects(wrong.models.list(),
                         (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
    const right = new OpenAI({ baseURL: `${keyed.base}/v1`, apiKey: 'sekret', maxRetries: 0 });
    const r = await right.chat.completions.create(ask('hi', { max_tokens: 4 }));
    assert.ok(r.choices.length === 1);
  } finally {
    await keyed.stop();
  }
});
