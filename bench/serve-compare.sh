#!/usr/bin/env bash
# loupe serve against llama-server on the same GGUF file, under the same concurrent load:
# aggregate generation tokens/s and time to first token at several client counts, both with
# the same number of parallel slots and threads, alternating which server runs first each
# round. llama-server is built from llama.cpp's sources outside this repository.
#
#   LLAMA_SERVER=/path/to/llama-server [LOUPE=build/loupe] bench/serve-compare.sh \
#       [-t THREADS] [--parallel N] [--clients "1 4 16"] [--requests R] [--max-tokens T] \
#       [--rounds K] [-c CTX] MODEL.gguf
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
LOUPE="${LOUPE:-$here/../build/loupe}"
threads=2 parallel=4 clients="1 4 16" requests=4 max_tokens=64 rounds=3 ctx=0
while [ $# -gt 1 ]; do
  case "$1" in
    -t) threads="$2"; shift 2 ;;
    --parallel) parallel="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    --max-tokens) max_tokens="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    -c) ctx="$2"; shift 2 ;;
    *) echo "serve-compare: unknown option $1" >&2; exit 2 ;;
  esac
done
model="${1:?usage: serve-compare.sh [options] MODEL.gguf}"
: "${LLAMA_SERVER:?set LLAMA_SERVER to a llama-server binary}"
# Both servers get the same total context: llama-server splits -c over its slots.
[ "$ctx" = 0 ] && ctx=$((512 * parallel))
slot_ctx=$((ctx / parallel))
id="$(basename "$model" .gguf)"
port=$((20000 + RANDOM % 20000))
out="$(mktemp -d)"
trap 'rm -rf "$out"; kill $(jobs -p) 2>/dev/null || true' EXIT

start() {  # engine -> pid (waits for /health)
  if [ "$1" = loupe ]; then
    "$LOUPE" serve -m "$model" --port "$port" -t "$threads" --parallel "$parallel" \
      -c "$slot_ctx" --no-store > "$out/$1.log" 2>&1 &
  else
    "$LLAMA_SERVER" -m "$model" --port "$port" -t "$threads" -np "$parallel" -c "$ctx" \
      -cb --alias "$id" > "$out/$1.log" 2>&1 &
  fi
  local pid=$!
  for _ in $(seq 300); do
    if curl -sf "http://127.0.0.1:$port/health" > /dev/null 2>&1; then echo "$pid"; return; fi
    sleep 0.2
  done
  echo "serve-compare: $1 did not start:" >&2; cat "$out/$1.log" >&2; exit 1
}

for round in $(seq "$rounds"); do
  engines="loupe llama"; [ $((round % 2)) = 0 ] && engines="llama loupe"
  for e in $engines; do
    pid="$(start "$e")"
    for c in $clients; do
      node "$here/serve-load.mjs" --url "http://127.0.0.1:$port" --model "$id" --clients "$c" \
        --requests "$requests" --max-tokens "$max_tokens" | sed "s/^/$e $round /" >> "$out/results"
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done

python3 - "$out/results" "$id" "$parallel" "$threads" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    engine, rnd, js = line.split(' ', 2)
    r = json.loads(js)
    rows.setdefault((r['clients'], int(rnd)), {})[engine] = r
print(f"# {sys.argv[2]}: --parallel {sys.argv[3]}, {sys.argv[4]} threads, medians over rounds")
print("| clients | loupe t/s | llama-server t/s | ratio (median of paired) | loupe TTFT ms | llama-server TTFT ms |")
print("|---:|---:|---:|---:|---:|---:|")
for c in sorted({k[0] for k in rows}):
    pairs = [v for k, v in rows.items() if k[0] == c and 'loupe' in v and 'llama' in v]
    med = lambda e, f: statistics.median(p[e][f] for p in pairs)
    ratio = statistics.median(p['loupe']['aggregate_tps'] / p['llama']['aggregate_tps'] for p in pairs)
    print(f"| {c} | {med('loupe','aggregate_tps'):.1f} | {med('llama','aggregate_tps'):.1f} | "
          f"{ratio:.2f} | {med('loupe','ttft_median_ms'):.0f} | {med('llama','ttft_median_ms'):.0f} |")
PY
