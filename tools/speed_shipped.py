#!/usr/bin/env python3
"""Same-run speed of a shipped RGB-only model (u2net_mst, hifi, mesorch): our PyTorch reference on
the CPU against `wgpu-forge infer` on the same cores, at the file's input size.

- torch: the network alone on a prepared input (random, ImageNet-normalized scale), N threads,
  median of --reps after a warm-up;
- engine: one `wgpu-forge infer --json` process over reps+1 copies of examples/spliced.jpg
  (planned once); the per-image `timings_s` of its reports (total and GPU), the first image apart.

    python3 tools/speed_shipped.py --weights weights/u2net-mst-compact.safetensors [--reps 5] [--threads 2]

PMSP has its own script (tools/speed_pmsp.py: its ELA stream needs the picture). Run it on an idle
machine, and quote the load beside the numbers.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from safetensors import safe_open

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_shipped_fixture import load_hifi, load_shipped, load_u2net_mst  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(path):
    """(callable on a normalized N x 3 x H x W tensor, (H, W), arch)."""
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    arch = meta["arch"]
    if arch == "u2net_mst":
        model, hw = load_u2net_mst(path)
        return model, hw, arch
    if arch == "hifi":
        model, cfg = load_hifi(path)
        return (lambda x: model(x, fusion=cfg.fusion)), tuple(cfg.input), arch
    if arch.startswith("mesorch"):
        model, hw = load_shipped(path)
        return model, hw, arch
    raise SystemExit(f"{path}: arch {arch} is not handled here (PMSP: tools/speed_pmsp.py)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "wgpu-forge"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, (h, w), arch = load(a.weights)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, h, w)).astype(np.float32))
    ts = []
    with torch.no_grad():
        model(x)
        for _ in range(a.reps):
            t = time.perf_counter()
            model(x)
            ts.append(time.perf_counter() - t)
    torch_s = float(np.median(ts))
    tmp = tempfile.mkdtemp(prefix="speed-")
    try:
        imgs = []
        for i in range(a.reps + 1):
            p = os.path.join(tmp, f"img{i}.jpg")
            shutil.copy(os.path.join(ROOT, "examples", "spliced.jpg"), p)
            imgs.append(p)
        out = subprocess.run([a.bin, "infer", "--json", "--weights", a.weights, "--out", os.path.join(tmp, "out"),
                              *imgs], capture_output=True, text=True, check=True)
        reports = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tot = [r["timings_s"]["total"] for r in reports[1:]]
    gpu = [r["timings_s"]["gpu"] for r in reports[1:]]
    load_avg = os.getloadavg()[0]
    print(f"{arch} ({os.path.basename(a.weights)}) at {h}x{w}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"load average {load_avg:.2f}, {a.threads} threads, median of {a.reps}:")
    print(f"  PyTorch {torch.__version__} CPU, network alone: {torch_s * 1e3:.0f} ms")
    print(f"  engine (lavapipe), per image after the first: {np.median(tot) * 1e3:.0f} ms total, "
          f"{np.median(gpu) * 1e3:.0f} ms GPU (first image {reports[0]['timings_s']['total'] * 1e3:.0f} ms); "
          f"engine GPU / PyTorch = {np.median(gpu) / torch_s:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
