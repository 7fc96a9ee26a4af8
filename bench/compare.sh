#!/usr/bin/env bash
# bench/compare.sh: loupe vs llama.cpp on the same GGUF files, same threads, same tests.
#
#   LLAMA_BENCH=/path/to/llama-bench bench/compare.sh [-t 2] [-p 512] [-n 128] [-r 3] \
#       [--rounds 3] MODEL.gguf...
#
# llama-bench is built from llama.cpp's own sources outside this repository (nothing of
# it lives here). Each round runs both engines on every model, alternating which goes
# first, so slow drifts of a shared machine hit both alike. Per model and test it prints
# ours and theirs (medians over rounds of each run's mean t/s), the median of the paired
# per-round ratios, and the share of this machine's ceilings measured in the same run:
# read bandwidth (bench/membw) for tgN, with bytes per token = the model's tensor bytes;
# the compute ceiling of the path used (bench/peak) for ppN, with 2·params ops per token
# (int8 on AVX-512: the zmm vpdpbusd rate, which the panel kernels use).
# Env: LOUPE (default build/loupe), BENCH_BIN (default: LOUPE's dir/bench), LLAMA_BENCH_ARGS
# (extra llama-bench arguments, e.g. "-fa off"), LOUPE_ARGS (extra loupe bench arguments).
set -euo pipefail

threads=2 n_prompt=512 n_gen=128 reps=3 rounds=3
models=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -t) threads="$2"; shift 2 ;;
    -p) n_prompt="$2"; shift 2 ;;
    -n) n_gen="$2"; shift 2 ;;
    -r) reps="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) models+=("$1"); shift ;;
  esac
done
root="$(cd "$(dirname "$0")/.." && pwd)"
loupe="${LOUPE:-$root/build/loupe}"
bench_bin="${BENCH_BIN:-$(dirname "$loupe")/bench}"
if [[ -z "${LLAMA_BENCH:-}" || ! -x "$LLAMA_BENCH" ]]; then
  echo "compare.sh: set LLAMA_BENCH to a llama-bench binary (built from llama.cpp's sources)" >&2
  exit 2
fi
[[ -x "$loupe" ]] || { echo "compare.sh: no loupe binary at $loupe (set LOUPE)" >&2; exit 2; }
[[ ${#models[@]} -gt 0 ]] || { echo "compare.sh: give at least one GGUF file" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

membw_line="$("$bench_bin/membw" -t "$threads" -s 1024 -r 5)"
peak_out="$("$bench_bin/peak" -t "$threads")"
echo "$membw_line" >&2
echo "$peak_out" >&2

for ((round = 0; round < rounds; ++round)); do
  for m in "${models[@]}"; do
    base="$work/$(basename "$m").$round"
    run_ours() { "$loupe" bench -m "$m" -p "$n_prompt" -n "$n_gen" -t "$threads" -r "$reps" ${LOUPE_ARGS:-} -o json > "$base.ours.json" 2>> "$work/log"; }
    run_theirs() { "$LLAMA_BENCH" -m "$m" -p "$n_prompt" -n "$n_gen" -t "$threads" -r "$reps" ${LLAMA_BENCH_ARGS:-} -o json > "$base.theirs.json" 2>> "$work/log"; }
    if ((round % 2 == 0)); then run_ours; run_theirs; else run_theirs; run_ours; fi
    echo "round $((round + 1))/$rounds: $(basename "$m") done" >&2
  done
done

python3 - "$work" "$membw_line" "$peak_out" "$threads" "$loupe" "$LLAMA_BENCH" "$n_prompt" "$n_gen" "$reps" "$rounds" <<'PY'
import glob, json, os, re, statistics, sys
work, membw_line, peak_out, threads, loupe, llama, n_prompt, n_gen, reps, rounds = sys.argv[1:11]
bw = float(re.search(r"median ([0-9.]+) GB/s", membw_line).group(1))
peaks = {m.group(1).strip(): float(m.group(2)) for m in re.finditer(r"^\s+(.+?)\s+([0-9.]+) G", peak_out, re.M)}
def test_name(t): return f"pp{t['n_prompt']}" if t["n_prompt"] > 0 else f"tg{t['n_gen']}"
rows = {}
for path in sorted(glob.glob(os.path.join(work, "*.ours.json"))):
    theirs_path = path.replace(".ours.json", ".theirs.json")
    ours = json.load(open(path)); theirs = json.load(open(theirs_path))
    model = os.path.basename(path).rsplit(".", 3)[0]
    th = {test_name(t): t for t in theirs}
    for t in ours:
        name = test_name(t)
        if name not in th: continue
        key = (model, t["model_type"], name)
        r = rows.setdefault(key, {"ours": [], "theirs": [], "ratio": [], "t": t})
        r["ours"].append(t["avg_ts"]); r["theirs"].append(th[name]["avg_ts"])
        r["ratio"].append(t["avg_ts"] / th[name]["avg_ts"])
def compute_ceiling(model_type, isa):
    if "F16" in model_type and "BF16" not in model_type: return "f32 fma avx512" if isa == "avx512" else "f32 fma avx2"
    # BF16: widened to F32 and FMA on AVX-512 (vdpbf16ps runs at half that rate here)
    if "BF16" in model_type: return "f32 fma avx512" if isa == "avx512" else "f32 fma avx2"
    if "F32" in model_type: return "f32 fma avx512" if isa == "avx512" else "f32 fma avx2"
    return "int8 vnni zmm" if isa == "avx512" else "int8 maddubs avx2"
print(f"loupe vs llama.cpp, {threads} threads, -p {n_prompt} -n {n_gen} -r {reps}, {rounds} alternating rounds")
print(f"ceilings (same run): read bandwidth {bw:.1f} GB/s; " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()))
print(f"command: LLAMA_BENCH={llama} bench/compare.sh -t {threads} -p {n_prompt} -n {n_gen} -r {reps} --rounds {rounds} ...")
print()
print("| model | test | loupe t/s | llama.cpp t/s | ratio | loupe % of ceiling | llama.cpp % of ceiling | ceiling |")
print("|---|---|---:|---:|---:|---:|---:|---|")
for (model, mtype, name), r in rows.items():
    t = r["t"]; o = statistics.median(r["ours"]); l = statistics.median(r["theirs"]); q = statistics.median(r["ratio"])
    if name.startswith("tg"):
        # GB read per token: the file's tensor bytes (a MoE model: its active share)
        need = t.get("active_bytes_per_token", t["model_size"]) / 1e9
        po, pl, ceil = 100 * o * need / bw, 100 * l * need / bw, f"{bw:.1f} GB/s read"
    else:
        cname = compute_ceiling(mtype, t.get("isa", "avx512")); c = peaks.get(cname, 0.0)
        ops = 2 * t.get("active_params_per_token", t["model_n_params"]) / 1e9
        po = 100 * o * ops / c if c else 0; pl = 100 * l * ops / c if c else 0
        ceil = f"{cname} {c:.0f} G/s"
    print(f"| {mtype} | {name} | {o:.2f} | {l:.2f} | {q:.2f} | {po:.0f}% | {pl:.0f}% | {ceil} |")
PY
