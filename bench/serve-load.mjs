#!/usr/bin/env node
// A small concurrent load client for OpenAI-compatible servers (loupe serve, llama-server):
// N clients each send R streaming /v1/completions requests one after another; prints one JSON
// line with the aggregate generation rate and time to first token. Node >= 18, no packages.
//
//   node bench/serve-load.mjs --url http://127.0.0.1:8080 --model ID --clients 16 \
//        --requests 4 --max-tokens 64 [--prompt TEXT]
const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const url = args.url ?? 'http://127.0.0.1:8080';
const model = args.model ?? 'model';
const clients = Number(args.clients ?? 1);
const requests = Number(args.requests ?? 4);
const maxTokens = Number(args['max-tokens'] ?? 64);
const prompt = args.prompt ?? 'Once upon a time, in a small village by the sea, there lived';

async function one(k) {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model, prompt: `${prompt} (${k})`, max_tokens: maxTokens, stream: true,
                           temperature: 0, ignore_eos: true }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let ttft = null;
  let tokens = 0;
  let buf = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body) {
    buf += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = buf.indexOf('\n\n')) >= 0) {
      const event = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
      const j = JSON.parse(event.slice(6));
      const text = j.choices?.[0]?.text ?? j.content ?? '';
      if (text.length > 0) {
        tokens++;
        if (ttft === null) ttft = performance.now() - t0;
      }
    }
  }
  return { ttft, tokens };
}

const t0 = performance.now();
const results = [];
await Promise.all(Array.from({ length: clients }, async (_, c) => {
  for (let r = 0; r < requests; r++) results.push(await one(c * requests + r));
}));
const seconds = (performance.now() - t0) / 1000;
const tokens = results.reduce((s, r) => s + r.tokens, 0);
const ttfts = results.map((r) => r.ttft).filter((x) => x !== null).sort((a, b) => a - b);
const q = (p) => ttfts[Math.min(ttfts.length - 1, Math.floor(p * ttfts.length))];
console.log(JSON.stringify({ clients, requests: results.length, tokens, seconds,
                             aggregate_tps: tokens / seconds, ttft_median_ms: q(0.5),
                             ttft_p90_ms: q(0.9) }));
