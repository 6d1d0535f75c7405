#!/usr/bin/env bash
# One training session on a lent GPU machine, as one command (tools/README.md, "Training on a lent
# GPU"): generate the synthetic forgeries there from the photos tools/device_pack.py packed into
# .gpu/, build the data caches once, train every model side by side on the one GPU until a shared
# wall-clock deadline, and leave the best checkpoints and all logs in $OUT (split in parts of at
# most 15 MiB, the device tool's limits).
#
#   bash tools/device_train.sh MINUTES [NTRAIN]     # on the device: MINUTES for the whole command
#   SMOKE=1 bash tools/device_train.sh 3 48          # here, on the CPU: every step, tiny
#
# Then here: cat runs.tar.part* | tar xf -; wgpu-forge convert runs/NAME/NAME.pth W.safetensors.
#
# Each run's command line is in RUNS below; a run that fails does not stop the others.
set -u
T0=$(date +%s)
MINUTES=${1:-9}
NTRAIN=${2:-8000}
NVAL=${NVAL:-300}
OUT=${OUT:-/tmp/device-out}
WORK=${WORK:-/tmp/device-work}
DATA=$WORK/synth
RUNS_DIR=$WORK/runs
CORES=$(nproc)
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 OMP_NUM_THREADS=2
mkdir -p "$OUT" "$RUNS_DIR"
exec > >(tee -a "$OUT/device.log") 2>&1

stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
size_of() { [ "$1" = hifi ] && echo 384 || echo 256; }   # hifi trains on 256 crops of the 384 images
stamp "start: $(hostname), $CORES cores, budget $MINUTES min, $NTRAIN train images"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
python3 -c "import torch, cv2, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cv2', cv2.__version__, 'numpy', numpy.__version__)" || exit 3
ONLY=${ONLY:-.}   # a regex of run names to keep (the smoke test here runs a subset)
MODELS=${MODELS:-"pmsp u2net_mst hifi"}
for m in $MODELS; do
    python3 -c "import sys; sys.path.insert(0, 'tools'); import trainmods.$m as t; t._check()" \
        || { stamp "trainmod $m failed its check"; exit 4; }
done

# 1. Data: the same generator and recipe as weights/pmsp.md's, another seed, more images.
stamp "generating $NTRAIN + $NVAL synthetic forgeries"
python3 tools/synth_forgery.py --pool .gpu/pool.csv --out "$DATA" --train "$NTRAIN" --val "$NVAL" \
    --size 384 --seed 21 --workers "$CORES" || exit 5
# 2. Caches: PMSP's (with the ELA at 384) and the RGB-only one the other models share, in parallel.
stamp "building caches"
# (Waits name their processes: a bare `wait` would also wait for the `tee` above.)
python3 tools/train.py prep --model pmsp --data "$DATA" --size 256 --workers $(( CORES * 3 / 4 + 1 )) &
PREP=$!
for m in $MODELS; do
    [ "$m" = pmsp ] || python3 tools/train.py prep --model "$m" --data "$DATA" --size "$(size_of "$m")" \
        --workers $(( CORES / 4 + 1 ))
done
wait $PREP

# 3. Train side by side until the deadline (45 s kept for the final validations and the packing).
DEADLINE=$(( T0 + MINUTES * 60 - 45 ))
stamp "training until $(( DEADLINE - T0 )) s"
EXTRA=""
[ -n "${SMOKE:-}" ] && EXTRA="--cpu --threads 1 --batch 4 --val-every 4 --log-every 2"
COMMON="--data $DATA --steps 1000000 --deadline $DEADLINE --fresh --threads 2 --save-minutes 100 --log-every 100"
PMSP="--model pmsp --size 256 --batch 32 --pos-weight 2 --focus 0.3 --skip-plain-copymove --select f1_best --val-every 400"
RUNS=(
    "pmsp-s25|$PMSP --crop 192 --lr 3e-3 --warmup 300"
    "pmsp-ft25|$PMSP --crop 192 --lr 1e-3 --warmup 100 --init .gpu/init/pmsp1.pt"
    "pmsp-w50|$PMSP --config {\"width\":0.5} --crop 0 --lr 2e-3 --warmup 300"
    "u2net|--model u2net_mst --size 256 --batch 16 --crop 0 --lr 1e-3 --warmup 200 --pos-weight 2 --select f1_best --val-every 200"
    "hifi|--model hifi --size 384 --crop 256 --batch 32 --lr 2e-3 --warmup 200 --pos-weight 2 --focus 0.3 --skip-plain-copymove --select f1_best --val-every 400"
)
PIDS=()
for r in "${RUNS[@]}"; do
    name=${r%%|*}
    args=${r#*|}
    [[ $name =~ $ONLY ]] || continue
    # shellcheck disable=SC2086
    python3 tools/train.py train $COMMON $args --out "$RUNS_DIR/$name" $EXTRA > "$RUNS_DIR/$name.out" 2>&1 &
    PIDS+=($!)
done
wait "${PIDS[@]}"
stamp "training done"
for r in "${RUNS[@]}"; do
    name=${r%%|*}
    echo "== $name"; grep -E "new best|done:|Error|error" "$RUNS_DIR/$name.out" | tail -4
done
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv 2>/dev/null

# 4. Export each run's best checkpoint to the layout `wgpu-forge convert` reads (it also serves as
#    `--init` for a later run), then pack exports, logs and the data manifests in parts < 15 MiB.
for r in "${RUNS[@]}"; do
    name=${r%%|*}
    model=$(echo "${r#*|}" | sed -E 's/.*--model ([a-z0-9_]+).*/\1/')
    [ -f "$RUNS_DIR/$name/best.pt" ] || continue
    python3 tools/train.py export --model "$model" --ckpt "$RUNS_DIR/$name/best.pt" --to "$RUNS_DIR/$name/$name.pth" \
        > /dev/null || stamp "export of $name failed"
done
(cd "$WORK" && tar cf "$OUT/runs.tar" runs/*.out runs/*/log.txt runs/*/*.pth synth/*/manifest.csv 2>/dev/null)
(cd "$OUT" && split -b 15M -d runs.tar runs.tar.part && rm runs.tar && ls -la)
stamp "end"
