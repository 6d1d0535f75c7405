#!/usr/bin/env bash
# Throughput of `infer --batch N` (docs/BENCHMARKS.md, "Batched inference"): for each model,
# backend and N, the images/s of the whole command (decode, engine, outputs written) and of the
# engine alone (the reports' timings_s.gpu summed), with the load average beside each row.
#
#   bash tools/bench_batch.sh [BATCHES] [IMAGES] [WEIGHTS...]
#   e.g. bash tools/bench_batch.sh "1 4 8" 16 weights/pmsp-mobilenet.safetensors
#
# The images are copies of examples/spliced.jpg and examples/cloned.jpg (600x400). Backends:
# BACKENDS (default "cpu vulkan"). Needs a release build (target/release/wgpu-forge).
set -eu
cd "$(dirname "$0")/.."
BATCHES=${1:-"1 4 8"}
N=${2:-16}
shift 2 2>/dev/null || shift $#
[ $# -gt 0 ] || set -- weights/pmsp-mobilenet.safetensors
BIN=target/release/wgpu-forge
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/in"
for i in $(seq 1 "$N"); do
    if [ $((i % 2)) = 0 ]; then src=examples/spliced.jpg; else src=examples/cloned.jpg; fi
    cp "$src" "$TMP/in/img$(printf %03d "$i").jpg"
done
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); $N images (600x400); $(nproc) cores"
printf '| %-22s | %-7s | %5s | %10s | %12s | %-5s |\n' model backend batch "images/s" "engine img/s" load
printf '|%s|%s|%s|%s|%s|%s|\n' ------------------------ --------- ------- ------------ -------------- -------
for w in "$@"; do
    for backend in ${BACKENDS:-cpu vulkan}; do
        for b in $BATCHES; do
            load=$(cut -d' ' -f1 /proc/loadavg)
            rm -rf "$TMP/out"
            t0=$(date +%s.%N)
            NODEVICE_SELECT=1 "$BIN" infer --backend "$backend" --weights "$w" --batch "$b" --json \
                --out "$TMP/out" "$TMP/in" >"$TMP/lines" 2>"$TMP/err" || { cat "$TMP/err"; exit 1; }
            t1=$(date +%s.%N)
            python3 - "$TMP/lines" "$t0" "$t1" "$(basename "$w" .safetensors)" "$backend" "$b" "$load" <<'EOF'
import json, sys
lines, t0, t1, model, backend, batch, load = sys.argv[1:]
reps = [json.loads(l) for l in open(lines)]
engine = sum(r["timings_s"]["gpu"] for r in reps)
wall = float(t1) - float(t0)
print(f"| {model:<22} | {backend:<7} | {batch:>5} | {len(reps) / wall:>10.3f} | {len(reps) / engine:>12.3f} | {load:<5} |")
EOF
        done
    done
done
