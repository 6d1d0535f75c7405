#!/usr/bin/env python3
"""Full-size U^2-Net-MST parity: the paper's network (width 1.0: 24.2 M parameters, bottleneck 512
channels in 4 heads with patches 16/8/4/2, 256 x 256 input) with random weights (BatchNorm
statistics randomized so folding them is tested), our PyTorch reference (tools/u2net_mst_ref.py)
against the engine, through the files a user would use:

  random weights -> torch.save .pth -> `wgpu-forge convert` -> `wgpu-forge infer --save-raw`

on a square (256x256) and a non-square (517x383) picture. The reference does the engine's input
path (tools/parity_full.py's `reference`): cv2 INTER_LINEAR resize to 256, ImageNet normalization,
the network, and a bilinear align_corners=False resize of the map back to the picture's size.
Prints max |p_engine - p_ref| at the model's resolution (S.model.npy) and at the picture's
(S.prob.npy); exits 1 if either is over --tol.

    python3 tools/parity_u2net_mst.py [--bin target/release/wgpu-forge] [--width 1.0]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_u2net_mst_fixtures import init_weights  # noqa: E402
from parity_full import reference  # noqa: E402
from parity_pmsp import picture  # noqa: E402
from u2net_mst_ref import U2netMst, U2netMstConfig  # noqa: E402

SIZES = {"square": (256, 256), "nonsquare": (383, 517)}  # (H, W)
INPUT = (256, 256)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/release/wgpu-forge")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", default=None, help="write the results here")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    work = a.workdir or tempfile.mkdtemp(prefix="forge-u2net-parity-")
    os.makedirs(work, exist_ok=True)
    cfg = U2netMstConfig(width=a.width)
    model = U2netMst(cfg).eval()
    init_weights(model, a.seed)
    ckpt = os.path.join(work, "u2net_mst.pth")
    torch.save({"model": model.state_dict(), "forge": {"input_size": list(INPUT), "config": cfg.to_json()}}, ckpt)
    st = os.path.join(work, "u2net_mst.safetensors")
    subprocess.run([a.bin, "convert", ckpt, st], check=True, stdout=subprocess.DEVNULL)
    images = {}
    for i, (tag, (h, w)) in enumerate(SIZES.items()):
        p = os.path.join(work, f"{tag}.png")
        img = picture(h, w, a.seed + i)
        cv2.imwrite(p, img[:, :, ::-1])  # stored as RGB
        images[tag] = p
    out = os.path.join(work, "out")
    t = time.time()
    subprocess.run([a.bin, "infer", "--weights", st, "--out", out, "--save-raw", "--no-exif-orientation",
                    *images.values()], check=True, stdout=subprocess.DEVNULL)
    engine_s = time.time() - t
    results, ok = [], True
    for tag, path in images.items():
        t = time.time()
        p, full = reference(model, path, INPUT)
        ref_s = time.time() - t
        h, w = full.shape
        got_m = np.load(os.path.join(out, f"{tag}.model.npy"))
        got_f = np.load(os.path.join(out, f"{tag}.prob.npy"))
        em, ef = float(np.abs(got_m - p).max()), float(np.abs(got_f - full).max())
        ok &= em <= a.tol and ef <= a.tol
        r = {"width": a.width, "image": f"{w}x{h}", "max_err_model": em, "max_err_image": ef,
             "prob_range": [float(full.min()), float(full.max())], "reference_s": round(ref_s, 2)}
        results.append(r)
        print(json.dumps(r), flush=True)
    print(f"engine (convert excluded, both images, planning included): {engine_s:.1f} s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"results": results, "engine_s": engine_s, "torch": torch.__version__}, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
