#!/usr/bin/env python3
"""Full-size parity: the official Mesorch / Mesorch-P architectures at 512x512 with random weights
of the official shapes, our PyTorch reference (tools/mesorch_ref.py) against the engine, through
the same files a user would use:

  random weights -> official-format .pth -> `wgpu-forge convert` -> `wgpu-forge infer --save-raw`

on a square (512x512) and a non-square (517x383) PNG. The reference does the benchmark's test path:
PIL RGB, cv2 INTER_LINEAR resize to 512x512, ImageNet normalization, model, sigmoid, and a bilinear
align_corners=False resize back to the image's size. Prints max |p_engine - p_ref| at the model's
resolution (S.model.npy) and at the image's (S.prob.npy); exits 1 if either is over --tol.

    python3 tools/parity_full.py [--variants mesorch mesorch_p] [--bin target/release/wgpu-forge]
                                 [--backend cpu|vulkan]

--backend is passed to the engine (its global flag); without it the engine picks its default (the
best hardware GPU, else the CPU backend), and the backend it used is printed with the results.

Needs torch, numpy, opencv-python-headless, Pillow; the engine binary built (cargo build --release).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_mesorch_fixtures import init_weights, make_image, normalize, official_dict  # noqa: E402
from mesorch_ref import Mesorch, full_config  # noqa: E402

SIZES = {"square": (512, 512), "nonsquare": (383, 517)}  # (H, W)


def reference(model: Mesorch, path: str, size=(512, 512)):
    """The benchmark's test path on the image file at `path`, at a model input of `size` (H, W):
    the map at the model's resolution and the map at the image's."""
    img = np.array(Image.open(path).convert("RGB"))
    h, w = img.shape[:2]
    x = normalize(cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_LINEAR))
    with torch.no_grad():
        p = model(x)["prob"]
    full = F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
    return p[0, 0].numpy(), full[0, 0].numpy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=["mesorch", "mesorch_p"])
    ap.add_argument("--bin", default="target/release/wgpu-forge")
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--workdir", default=None, help="keep the images, checkpoints and outputs here (default: a temporary folder, removed at the end)")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--backend", default=None, help="the engine's --backend (default: the engine's choice)")
    a = ap.parse_args()
    engine = [a.bin] + (["--backend", a.backend] if a.backend else [])
    info = subprocess.run([*engine, "info"], check=True, capture_output=True, text=True).stdout
    print(info.splitlines()[0], flush=True)
    torch.manual_seed(a.seed)
    work = a.workdir or tempfile.mkdtemp(prefix="forge-parity-")
    try:
        return run(a, engine, info, work)
    finally:
        # A run leaves 1-2 GB of checkpoints and maps: kept only where the caller asked.
        if a.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def run(a, engine, info, work) -> int:
    os.makedirs(work, exist_ok=True)
    images = {}
    for i, (tag, (h, w)) in enumerate(SIZES.items()):
        p = os.path.join(work, f"{tag}.png")
        Image.fromarray(make_image(h, w, a.seed + i)).save(p)
        images[tag] = p
    results, ok = [], True
    for variant in a.variants:
        model = Mesorch(full_config(variant)).eval()
        init_weights(model, a.seed)
        ckpt = os.path.join(work, f"{variant}.pth")
        torch.save(official_dict(model.state_dict(), 1, variant, False), ckpt)
        st = os.path.join(work, f"{variant}.safetensors")
        subprocess.run([*engine, "convert", ckpt, st], check=True, stdout=subprocess.DEVNULL)
        out = os.path.join(work, f"out-{variant}")
        t = time.time()
        subprocess.run([*engine, "infer", "--weights", st, "--out", out, "--save-raw", *images.values()], check=True)
        engine_s = time.time() - t
        for tag, path in images.items():
            t = time.time()
            ref_model, ref_full = reference(model, path)
            ref_s = time.time() - t
            got_model = np.load(os.path.join(out, f"{tag}.model.npy"))
            got_full = np.load(os.path.join(out, f"{tag}.prob.npy"))
            r = {
                "variant": variant,
                "image": f"{tag} {ref_full.shape[1]}x{ref_full.shape[0]}",
                "max_abs_model": float(np.abs(got_model - ref_model).max()),
                "max_abs_full": float(np.abs(got_full - ref_full).max()),
                "mean_abs_full": float(np.abs(got_full - ref_full).mean()),
                "ref_prob_range": [float(ref_full.min()), float(ref_full.max())],
                "ref_cpu_s": round(ref_s, 2),
            }
            r["pass"] = r["max_abs_model"] <= a.tol and r["max_abs_full"] <= a.tol
            ok &= r["pass"]
            results.append(r)
            print(json.dumps(r), flush=True)
        print(f"{variant}: engine infer of {len(images)} images took {engine_s:.1f} s (incl. planning)", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"tol": a.tol, "seed": a.seed, "engine": info.splitlines()[0], "results": results}, f, indent=1)
    print("PASS" if ok else "FAIL", f"(tolerance {a.tol})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
