#!/usr/bin/env python3
"""Speed of `wgpu-forge infer` against our PyTorch reference on the same machine, in the same run.

For each variant: random weights of the official shapes -> official .pth -> `wgpu-forge convert`;
then one 512x512 PNG analysed N times by both:
- PyTorch (CPU unless --cuda, torch.set_num_threads(--threads)): PIL decode, cv2 resize, normalize,
  model, sigmoid, resize back; one warm-up run, then the median of N;
- the engine: one `wgpu-forge infer` process over N copies of the image (planned once), per-image
  wall time as printed by infer (decode + preprocess + GPU + postprocess + writing the mask);
  the first image is reported apart (it pays the driver's first-dispatch costs).
Also prints the engine's planned GPU memory. Writes a JSON summary with --json.

    python3 tools/speed_mesorch.py [--variants mesorch mesorch_p] [--reps 3] [--threads 2]
"""
import argparse
import json
import os
import platform
import re
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


def torch_once(model, path, device):
    img = np.array(Image.open(path).convert("RGB"))
    h, w = img.shape[:2]
    x = normalize(cv2.resize(img, (512, 512), interpolation=cv2.INTER_LINEAR)).to(device)
    with torch.no_grad():
        p = model(x)["prob"]
        full = F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False).cpu()
    return full


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=["mesorch", "mesorch_p"])
    ap.add_argument("--bin", default="target/release/wgpu-forge")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--cuda", action="store_true", help="time PyTorch on CUDA instead of the CPU")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    device = "cuda" if a.cuda else "cpu"
    work = a.workdir or tempfile.mkdtemp(prefix="forge-speed-")
    os.makedirs(work, exist_ok=True)
    img = os.path.join(work, "img512.png")
    Image.fromarray(make_image(512, 512, 7)).save(img)
    copies = []
    for i in range(a.reps + 1):
        c = os.path.join(work, f"copy{i}.png")
        shutil.copy(img, c)
        copies.append(c)
    info = subprocess.run([a.bin, "info"], capture_output=True, text=True).stdout
    adapter = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("Chosen:")), "?")
    results = []
    for variant in a.variants:
        model = Mesorch(full_config(variant)).eval()
        init_weights(model, 1)
        ckpt = os.path.join(work, f"{variant}.pth")
        torch.save(official_dict(model.state_dict(), 1, variant, False), ckpt)
        st = os.path.join(work, f"{variant}.safetensors")
        subprocess.run([a.bin, "convert", ckpt, st], check=True, capture_output=True)
        # PyTorch
        model = model.to(device)
        torch_once(model, img, device)
        ts = []
        for _ in range(a.reps):
            t = time.perf_counter()
            torch_once(model, img, device)
            if a.cuda:
                torch.cuda.synchronize()
            ts.append(time.perf_counter() - t)
        # Engine
        t = time.perf_counter()
        p = subprocess.run([a.bin, "infer", "--weights", st, "--out", os.path.join(work, "out"), *copies],
                           capture_output=True, text=True, check=True)
        total = time.perf_counter() - t
        per = [float(m.group(1)) for m in re.finditer(r", ([0-9.]+) s \(GPU", p.stdout)]
        gpu = [float(m.group(1)) for m in re.finditer(r"\(GPU ([0-9.]+) s\)", p.stdout)]
        mem = re.search(r"GPU memory ([0-9.]+) MiB \(weights ([0-9.]+), activations ([0-9.]+), scratch ([0-9.]+)\)",
                        p.stderr)
        planned = re.search(r"planned in ([0-9.]+) s", p.stderr)
        r = {
            "variant": variant,
            "torch_device": device,
            "torch_threads": a.threads,
            "torch_median_s": round(float(np.median(ts)), 3),
            "engine_first_image_s": per[0] if per else None,
            "engine_median_s": round(float(np.median(per[1:])), 3) if len(per) > 1 else None,
            "engine_gpu_median_s": round(float(np.median(gpu[1:])), 3) if len(gpu) > 1 else None,
            "engine_plan_s": float(planned.group(1)) if planned else None,
            "engine_process_s": round(total, 2),
            "engine_gpu_memory_mib": {k: float(v) for k, v in zip(
                ["total", "weights", "activations", "scratch"], mem.groups())} if mem else None,
            "adapter": adapter,
        }
        results.append(r)
        print(json.dumps(r), flush=True)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.platform(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "load_avg": os.getloadavg(), "results": results}
    print(json.dumps({k: v for k, v in meta.items() if k != "results"}))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(meta, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
