#!/usr/bin/env python3
"""Full-size PMSP-Net parity: the paper's network (MobileNetV1 width 1.0 streams, 576 x 576 input)
with random weights (BatchNorm statistics randomized so folding them is tested), our PyTorch
reference (tools/pmsp_ref.py) against the engine, through the files a user would use:

  random weights -> torch.save .pth -> `wgpu-forge convert` -> `wgpu-forge infer --save-raw`

on a square (576x576) and a non-square (517x383) picture saved as JPEG (so ELA has a history to
measure). The reference does the engine's input path: ELA at the picture's own size
(tools/ela_ref.py), cv2 INTER_LINEAR resizes of picture and ELA to 576, ImageNet normalization,
the network, and a bilinear align_corners=False resize of the map back to the picture's size.
Prints max |p_engine - p_ref| at the model's resolution (S.model.npy) and at the picture's
(S.prob.npy); exits 1 if either is over --tol.

    python3 tools/parity_pmsp.py [--bin target/release/wgpu-forge] [--width 1.0]
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
from make_pmsp_fixtures import init_weights  # noqa: E402
from pmsp_ref import Pmsp, PmspConfig, reference  # noqa: E402

SIZES = {"square": (576, 576), "nonsquare": (383, 517)}  # (H, W)


def picture(h, w, seed):
    """A textured picture, saved as a q85 JPEG, with a q60 patch pasted in."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([80 + 60 * np.sin(xx / 23.0), 100 + 50 * np.cos(yy / 17.0), 128 + 0.2 * (xx - yy)], -1)
    img = np.clip(base + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    jpg = lambda a, q: cv2.imdecode(cv2.imencode(".jpg", a, [cv2.IMWRITE_JPEG_QUALITY, q])[1], 1)  # noqa: E731
    img = jpg(img, 85)
    donor = jpg(np.clip(rng.normal(120, 45, (h, w, 3)), 0, 255).astype(np.uint8), 60)
    img[h // 4:h // 2, w // 3:2 * w // 3] = donor[h // 4:h // 2, w // 3:2 * w // 3]
    return img


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="target/release/wgpu-forge")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--backbone", default="mobilenet_v1", choices=["mobilenet_v1", "efficientnet_lite0"])
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", default=None, help="write the results here")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    work = a.workdir or tempfile.mkdtemp(prefix="forge-pmsp-parity-")
    os.makedirs(work, exist_ok=True)
    cfg = PmspConfig(backbone=a.backbone, width=a.width)
    model = Pmsp(cfg).eval()
    init_weights(model, a.seed)
    ckpt = os.path.join(work, "pmsp.pth")
    torch.save({"model": model.state_dict(), "forge": {"input_size": list(cfg.input), "config": cfg.to_json()}},
               ckpt)
    st = os.path.join(work, "pmsp.safetensors")
    subprocess.run([a.bin, "convert", ckpt, st], check=True, stdout=subprocess.DEVNULL)
    images = {}
    for i, (tag, (h, w)) in enumerate(SIZES.items()):
        p = os.path.join(work, f"{tag}.png")
        img = picture(h, w, a.seed + i)
        cv2.imwrite(p, img[:, :, ::-1])
        images[tag] = (p, img)
    out = os.path.join(work, "out")
    t = time.time()
    subprocess.run([a.bin, "infer", "--weights", st, "--out", out, "--save-raw", "--no-exif-orientation",
                    *[p for p, _ in images.values()]], check=True)
    engine_s = time.time() - t
    results, ok = [], True
    for tag, (path, img) in images.items():
        t = time.time()
        p, full = reference(model, cfg, img)
        h, w = img.shape[:2]
        ref_s = time.time() - t
        got_m = np.load(os.path.join(out, f"{tag}.model.npy"))
        got_f = np.load(os.path.join(out, f"{tag}.prob.npy"))
        em, ef = float(np.abs(got_m - p).max()), float(np.abs(got_f - full).max())
        ok &= em <= a.tol and ef <= a.tol
        r = {"backbone": a.backbone, "width": a.width, "image": f"{w}x{h}", "max_err_model": em, "max_err_image": ef,
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
