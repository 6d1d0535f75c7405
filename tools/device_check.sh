#!/usr/bin/env bash
# The prepared GPU check (issue 16; tools/README.md, "Checking on a lent GPU"): full-size parity and
# speed of every shipped model and of Mesorch / Mesorch-P at 512x512 against our PyTorch references
# on CUDA (eager fp32 and torch.compile, batch 1 and 8), by tools/device_check.py, in one command
# under 8 minutes, results in $OUT/device_check.json.
#
#   bash tools/device_check.sh --prepare          # here: release binary -> .gpu-check/, Vulkan loader -> .gl/
#   OUT=$OUT bash tools/device_check.sh           # there: `run` with carry [".gl", ".gpu-check"], timeout_s 540
#   SMOKE=1 OUT=/tmp/dc bash tools/device_check.sh  # here: the same steps on the CPU and lavapipe, one rep
#
# The binary built here runs there (this machine's glibc is the older); the device image has torch,
# OpenCV, Pillow and safetensors, but no Vulkan loader, hence .gl/ (the device tool's README).
set -u
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--prepare" ]; then
    set -e
    cargo build --release
    mkdir -p .gpu-check .gl /tmp/amd64/partial
    cp target/release/wgpu-forge .gpu-check/
    for d in /.gpu-check/ /.gl/; do grep -qxF "$d" .git/info/exclude 2>/dev/null || echo "$d" >>"$(git rev-parse --git-common-dir)/info/exclude"; done
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    # shellcheck disable=SC2086
    apt-get $o update -qq && (cd .gl && apt-get $o download libvulkan1)
    du -sh .gpu-check .gl
    exit 0
fi

T0=$(date +%s)
OUT=${OUT:-/tmp/device-check}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/device_check.log") 2>&1
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }

if [ -n "${SMOKE:-}" ]; then
    BIN=target/release/wgpu-forge
    set -- --device cpu --smoke --models weights/pmsp-mobilenet.safetensors
else
    BIN=.gpu-check/wgpu-forge
    if ! ldconfig -p | grep -q libvulkan.so.1; then
        for f in .gl/*.deb; do dpkg -x "$f" /; done
        ldconfig
    fi
    icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    if [ -f "$icd" ] && ! compgen -G '/usr/share/vulkan/icd.d/*.json' >/dev/null && ! compgen -G '/etc/vulkan/icd.d/*.json' >/dev/null; then
        export VK_DRIVER_FILES=$icd
    fi
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.total --format=csv >"$OUT/nvidia-smi.csv" 2>&1
    set -- --device cuda --budget-s 400
fi
[ -x "$BIN" ] || { echo "no engine binary at $BIN (run: bash tools/device_check.sh --prepare)"; exit 2; }
stamp "engine: $("$BIN" info 2>&1 | head -3 | tr '\n' ' ')"
"$BIN" info >"$OUT/info.txt" 2>&1
if [ -z "${SMOKE:-}" ] && grep -qi 'llvmpipe\|software' "$OUT/info.txt"; then
    stamp "warning: the engine chose a software adapter; speed numbers would be lavapipe's (see $OUT/info.txt)"
fi
stamp "check: python3 tools/device_check.py --bin $BIN --out $OUT $*"
timeout 460 python3 tools/device_check.py --bin "$BIN" --out "$OUT" "$@"
rc=$?
stamp "done (exit $rc)"
exit $rc
