#!/usr/bin/env python3
"""Full-size hifi parity: the large config (width 2.0, 3.7 M parameters, 512 x 512 input) with
random weights (BatchNorm statistics randomized so folding them is tested), our PyTorch reference
(tools/hifi_ref.py) against the engine, through the files a user would use:

  random weights -> torch.save .pth -> `wgpu-forge convert` -> `wgpu-forge infer --save-raw`
  (default fusion learned, then `--set fusion=product`)

on a square (512x512) and a non-square (383x517) picture. The reference does the engine's input
path: cv2 INTER_LINEAR resize to 512, ImageNet normalization, the network, bilinear
align_corners=False back to the picture's size. Prints max |p_engine - p_ref| at the model's
resolution (S.model.npy) and the picture's (S.prob.npy) for both fusions; exits 1 if any is over --tol.

    python3 tools/parity_hifi.py [--bin target/release/wgpu-forge] [--width 2.0]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hifi_ref import Hifi, HifiConfig  # noqa: E402
from make_hifi_fixtures import init_weights  # noqa: E402
from parity_full import make_image, reference  # noqa: E402

SIZES = {"square": (512, 512), "nonsquare": (383, 517)}  # (H, W)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/release/wgpu-forge")
    ap.add_argument("--width", type=float, default=2.0)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", default=None, help="write the results here")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    work = a.workdir or tempfile.mkdtemp(prefix="forge-hifi-parity-")
    os.makedirs(work, exist_ok=True)
    cfg = HifiConfig(width=a.width)
    model = Hifi(cfg).eval()
    init_weights(model, a.seed)
    ckpt = os.path.join(work, "hifi.pth")
    torch.save({"model": model.state_dict(), "forge": {"input_size": list(cfg.input), "config": cfg.to_json()}},
               ckpt)
    st = os.path.join(work, "hifi.safetensors")
    subprocess.run([a.bin, "convert", ckpt, st], check=True, stdout=subprocess.DEVNULL)
    images = {}
    for i, (tag, (h, w)) in enumerate(SIZES.items()):
        p = os.path.join(work, f"{tag}.png")
        Image.fromarray(make_image(h, w, a.seed + i)).save(p)
        images[tag] = p
    results, ok, times = [], True, {}
    for fusion in ("learned", "product"):
        out = os.path.join(work, f"out-{fusion}")
        t = time.time()
        subprocess.run([a.bin, "infer", "--weights", st, "--set", f"fusion={fusion}", "--out", out, "--save-raw",
                        "--no-exif-orientation", *images.values()], check=True, stdout=subprocess.DEVNULL)
        times[fusion] = round(time.time() - t, 1)
        for tag, path in images.items():
            t = time.time()
            p, full = reference(lambda x: model(x, fusion=fusion), path, cfg.input)
            ref_s = time.time() - t
            got_m = np.load(os.path.join(out, f"{tag}.model.npy")).reshape(p.shape)
            got_f = np.load(os.path.join(out, f"{tag}.prob.npy")).reshape(full.shape)
            em, ef = float(np.abs(got_m - p).max()), float(np.abs(got_f - full).max())
            ok &= em <= a.tol and ef <= a.tol
            h, w = full.shape
            r = {"width": a.width, "fusion": fusion, "image": f"{w}x{h}", "max_err_model": em, "max_err_image": ef,
                 "prob_range": [float(full.min()), float(full.max())], "reference_s": round(ref_s, 2)}
            results.append(r)
            print(json.dumps(r), flush=True)
    print(f"engine (convert excluded, both images, planning included): {times} s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"results": results, "engine_s": times, "torch": torch.__version__}, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
