#!/usr/bin/env bash
# Alternates single-repetition runs of llama.cpp's llama-bench and heed bench on one GGUF and
# prints the per-pair and summary t/s ratios (heed / llama.cpp) for prefill and decode.
# Usage: scripts/bench_vs_llama.sh LLAMA_BENCH FILE.gguf [PAIRS=5] [P=512] [N=128] [THREADS=2]
# Alternating one repetition at a time keeps a shared machine's drift (memory bandwidth moves by
# tens of percent between minutes on a VM) out of the ratios better than -r 3 blocks per tool.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  echo "usage: $0 LLAMA_BENCH FILE.gguf [PAIRS] [P] [N] [THREADS]" >&2
  exit 2
fi
llama=$1 file=$2 pairs=${3:-5} p=${4:-512} n=${5:-128} threads=${6:-2}
case "$pairs$p$n$threads" in *[!0-9]*) echo "$0: PAIRS, P, N and THREADS must be integers" >&2; exit 2 ;; esac
if [ "$pairs" -lt 1 ] || [ "$p" -lt 1 ] || [ "$n" -lt 1 ] || [ "$threads" -lt 1 ]; then
  echo "$0: PAIRS, P, N and THREADS must be at least 1 (the ratios need a pp and a tg run)" >&2
  exit 2
fi
[ -x "$llama" ] || { echo "$0: $llama: not an executable llama-bench" >&2; exit 2; }
[ -r "$file" ] || { echo "$0: $file: cannot read" >&2; exit 2; }
[ -x build/heed ] || { echo "$0: build/heed missing: run scripts/build.sh first" >&2; exit 2; }
command -v python3 >/dev/null || { echo "$0: python3 is needed to read the JSON records" >&2; exit 2; }

# One line per run: the avg_ts of the pp record, then of the tg record.
rates='import json, sys
recs = json.load(sys.stdin)
pp = [r["avg_ts"] for r in recs if r["n_prompt"] > 0]
tg = [r["avg_ts"] for r in recs if r["n_gen"] > 0]
print(pp[0], tg[0])'

for _ in $(seq 1 "$pairs"); do
  l=$("$llama" -m "$file" -p "$p" -n "$n" -t "$threads" -r 1 -fa 0 -o json 2>/dev/null |
    python3 -c "$rates")
  h=$(build/heed bench -m "$file" -p "$p" -n "$n" -t "$threads" -r 1 -o json 2>/dev/null |
    python3 -c "$rates")
  echo "$l $h"
done | python3 -c '
import statistics as st, sys
p, n = sys.argv[1], sys.argv[2]
rows = [tuple(map(float, line.split())) for line in sys.stdin]
for lp, lt, hp, ht in rows:
    print(f"pp{p}: llama.cpp {lp:8.2f} heed {hp:8.2f} ({hp / lp:.2f}x) | "
          f"tg{n}: llama.cpp {lt:7.2f} heed {ht:7.2f} ({ht / lt:.2f}x)")
for name, (li, hi) in ((f"pp{p}", (0, 2)), (f"tg{n}", (1, 3))):
    lv, hv = [r[li] for r in rows], [r[hi] for r in rows]
    ratios = [h / l for l, h in zip(lv, hv)]
    print(f"{name}: mean llama.cpp {st.mean(lv):.2f} heed {st.mean(hv):.2f} t/s, ratio of means "
          f"{st.mean(hv) / st.mean(lv):.2f}, per pair min {min(ratios):.2f} "
          f"median {st.median(ratios):.2f} max {max(ratios):.2f}")
' "$p" "$n"
