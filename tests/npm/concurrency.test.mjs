// Concurrent load through the `openai` client: 32 clients against --parallel 4 (every answer
// complete and equal to the same request served alone), a client that disconnects mid-stream
// frees its slot, a full queue answers 503 with Retry-After, and kill -9 during a burst of
// writes loses no answered exchange and leaves the database intact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { missing, startServer, loupe } from './lib/serve.mjs';

const skip = missing() ?? false;
let dir;
let model;  // a synthetic stories-15m: slow enough that a request spans many decode steps

before(async () => {
  if (skip) return;
  dir = mkdtempSync(path.join(tmpdir(), 'loupe-npm-load-'));
  model = path.join(dir, 's15.gguf');
  const r = await loupe(['synth', '--shape', 'stories-15m', '--type', 'q8_0', '-o', model]);
  assert.equal(r.code, 0, r.stderr);
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const MODEL = 's15';
const prompts = ['Once upon a time', 'The cat sat', 'A big red ball', 'In the forest',
                 'Tom and Lily', 'The sun was hot', 'One day a bird', 'Under the bed'];
const req = (p, extra = {}) => ({ model: MODEL, messages: [{ role: 'user', content: p }],
                                  temperature: 0, max_tokens: 32, ...extra });

async function health(base) {
  return (await fetch(`${base}/health`)).json();
}

async function waitIdle(base) {
  for (let i = 0; i < 300; i++) {
    const h = await health(base);
    if (h.models.every((m) => m.active === 0 && m.queued === 0)) return h;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the server never became idle');
}

test('32 clients x 3 requests with --parallel 4: all complete and correct', { skip }, async () => {
  const server = await startServer(['--parallel', '4', '-t', '2', '-c', '256'], { model });
  try {
    const client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'x', maxRetries: 0 });
    // What each prompt gives when it is served alone.
    const alone = {};
    for (const p of prompts) alone[p] = (await client.chat.completions.create(req(p))).choices[0];
    const t0 = performance.now();
    let tokens = 0;
    const clients = Array.from({ length: 32 }, async (_, c) => {
      for (let k = 0; k < 3; k++) {
        const p = prompts[(c + k) % prompts.length];
        const stream = k === 1;  // mix streaming and plain requests
        let content = '';
        let finish = null;
        if (stream) {
          const s = await client.chat.completions.create(
            req(p, { stream: true, stream_options: { include_usage: true } }));
          for await (const chunk of s) {
            for (const ch of chunk.choices) {
              content += ch.delta?.content ?? '';
              finish = ch.finish_reason ?? finish;
            }
            if (chunk.usage) tokens += chunk.usage.completion_tokens;
          }
        } else {
          const r = await client.chat.completions.create(req(p));
          content = r.choices[0].message.content;
          finish = r.choices[0].finish_reason;
          tokens += r.usage.completion_tokens;
        }
        assert.equal(content, alone[p].message.content, `client ${c} request ${k}: ${p}`);
        assert.equal(finish, alone[p].finish_reason);
      }
    });
    await Promise.all(clients);
    const seconds = (performance.now() - t0) / 1000;
    const h = await waitIdle(server.base);
    console.log(`# 96 requests, ${tokens} tokens in ${seconds.toFixed(2)} s: ` +
                `${(tokens / seconds).toFixed(1)} tokens/s aggregate (--parallel 4, 2 threads); ` +
                `server: ${JSON.stringify(h.models[0])}`);
    // Decode steps carried several sequences at once.
    assert.ok(h.models[0].batched_tokens > h.models[0].steps);
  } finally {
    await server.stop();
  }
});

test('a client that disconnects mid-stream frees its slot', { skip }, async () => {
  const data = mkdtempSync(path.join(tmpdir(), 'loupe-npm-cancel-'));
  const server = await startServer(['--parallel', '1', '-c', '256'], { model, data });
  try {
    const client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'x', maxRetries: 0 });
    const controller = new AbortController();
    const s = await client.chat.completions.create(req('Once upon a time', {
      stream: true, max_tokens: 240, ignore_eos: true }), { signal: controller.signal });
    // The client's stream ends quietly once aborted (or throws, depending on the version).
    let seen = 0;
    try {
      for await (const chunk of s) {
        if (chunk.choices[0]?.delta?.content) {
          seen++;
          controller.abort();
        }
      }
    } catch (e) {
      assert.ok(e instanceof OpenAI.APIUserAbortError || e.name === 'AbortError', String(e));
    }
    assert.ok(seen >= 1);
    await waitIdle(server.base);
    // The slot is free: the next request is served.
    const r = await client.chat.completions.create(req('The cat sat', { max_tokens: 4 }));
    assert.ok(r.choices[0].message.content.length > 0);
    // The cancelled exchange was stopped early and says so.
    const list = await loupe(['sessions', 'list', '--data', data]);
    const ids = list.stdout.trim().split('\n').map((l) => l.split('\t')[0]);
    const exported = await Promise.all(
      ids.map(async (id) => JSON.parse((await loupe(['sessions', 'export', id, '--data', data])).stdout)));
    const cancelled = exported.flatMap((c) => c.exchanges).filter((e) => e.finish_reason === 'cancelled');
    assert.equal(cancelled.length, 1, JSON.stringify(exported));
    assert.ok(cancelled[0].completion_tokens < 240, `${cancelled[0].completion_tokens} tokens`);
  } finally {
    await server.stop();
    rmSync(data, { recursive: true, force: true });
  }
});

test('a full queue answers 503 with Retry-After', { skip }, async () => {
  const server = await startServer(['--parallel', '1', '--max-queue', '1', '-c', '256'], { model });
  try {
    const body = JSON.stringify(req('Once upon a time', { max_tokens: 200, ignore_eos: true }));
    const results = await Promise.all(Array.from({ length: 6 }, () =>
      fetch(`${server.base}/v1/chat/completions`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body,
      }).then(async (r) => ({ status: r.status, retry: r.headers.get('retry-after'),
                               body: await r.json() }))));
    const busy = results.filter((r) => r.status === 503);
    const ok = results.filter((r) => r.status === 200);
    assert.ok(busy.length >= 1, JSON.stringify(results.map((r) => r.status)));
    assert.ok(ok.length >= 1);
    for (const b of busy) {
      assert.ok(Number(b.retry) >= 1);
      assert.equal(typeof b.body.error.message, 'string');
    }
    for (const o of ok) assert.equal(o.body.usage.completion_tokens, 200);
  } finally {
    await server.stop();
  }
});

test('kill -9 during a burst of writes: no answered exchange lost, database intact', { skip },
     async () => {
  const data = mkdtempSync(path.join(tmpdir(), 'loupe-npm-crash-'));
  const server = await startServer(['--parallel', '4'], { data });  // stories260K: fast
  const client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'x', maxRetries: 0 });
  const answered = [];
  let killed = false;
  const burst = Array.from({ length: 16 }, async (_, c) => {
    for (let k = 0; k < 50 && !killed; k++) {
      try {
        const r = await client.chat.completions.create({
          model: 'stories260K', messages: [{ role: 'user', content: `client ${c} turn ${k}` }],
          temperature: 1, seed: c * 100 + k, max_tokens: 4 });
        answered.push({ id: r.loupe.conversation_id, text: r.choices[0].message.content });
        if (answered.length === 40 && !killed) {
          killed = true;
          await server.kill('SIGKILL');
        }
      } catch {
        return;  // the server is gone
      }
    }
  });
  await Promise.all(burst);
  assert.ok(killed && answered.length >= 40);
  const check = await loupe(['sessions', 'check', '--data', data]);
  assert.equal(check.stdout.trim(), 'ok');
  assert.equal(check.code, 0);
  for (const a of answered) {
    const e = await loupe(['sessions', 'export', String(a.id), '--data', data]);
    assert.equal(e.code, 0, e.stderr);
    const conv = JSON.parse(e.stdout);
    assert.equal(conv.messages.at(-1).content, a.text);
  }
  // The store opens again for a restarted server.
  const again = await startServer([], { data });
  await again.stop();
  rmSync(data, { recursive: true, force: true });
});
