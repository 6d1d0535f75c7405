#!/usr/bin/env python3
"""The prepared GPU check (issue 16): parity and speed of the engine against our PyTorch references
on a lent GPU, in one command, results as JSON. `tools/device_check.sh` runs it there; run it here
with `--device cpu --smoke` to test everything up to the GPU part.

For every model (Mesorch and Mesorch-P with random weights of the official shapes, converted from an
official-format .pth by `wgpu-forge convert`; every shipped weights/*.safetensors):
- parity: `wgpu-forge infer --save-raw` on one picture against the reference's map on `--device`,
  max |p_engine - p_ref| at the model's resolution;
- f16 weights: the same parity and speed with `--half-weights` (weights stored in f16 on the GPU);
- speed: the engine's per-image time (`infer --json` over reps+1 copies, planned once, the first
  image apart: total and GPU) and, on the same device, the PyTorch reference's network alone in
  fp32 eager and `torch.compile`, batch 1 and 8, median of --reps after warm-up (CUDA synchronized).
  The engine's batch-8 figure is `infer --batch 8` over 16 copies (two submissions of 8, planned
  once): the second submission's 8 images, total and GPU (`batch8`); `batch8_sequential` is
  8 times the batch-1 median, for comparison.

    python3 tools/device_check.py --bin BIN --out DIR [--device cuda] [--reps 5] [--budget-s 420]
        [--models mesorch_p mesorch weights/pmsp-mobilenet.safetensors ...] [--no-compile] [--smoke]

`--budget-s` bounds the whole run: torch.compile (the slowest part) is skipped, with a note, for
models reached after the budget's two thirds are spent.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_mesorch_fixtures import init_weights, make_image, official_dict  # noqa: E402
from make_shipped_fixture import load_hifi, load_shipped, load_u2net_mst  # noqa: E402
from mesorch_ref import Mesorch, full_config  # noqa: E402
from parity_full import reference  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T0 = time.time()


class OnDevice(torch.nn.Module):
    """Runs `model` on `dev` and hands back CPU tensors, so the references' CPU code paths
    (preprocessing, resizes back, numpy) stay as they are."""

    def __init__(self, model, dev, call=None):
        super().__init__()
        self.m, self.dev, self.call = model.to(dev), dev, call

    def forward(self, *xs):
        out = (self.call or self.m)(*[x.to(self.dev) for x in xs])
        return {k: v.float().cpu() for k, v in out.items()} if isinstance(out, dict) else out.float().cpu()


def sync(dev):
    if dev.startswith("cuda"):
        torch.cuda.synchronize()


def median_ms(fn, reps, dev):
    with torch.no_grad():
        fn()
        sync(dev)
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            sync(dev)
            ts.append(time.perf_counter() - t)
    return round(float(np.median(ts)) * 1e3, 3)


def load_model(spec, work, seed):
    """(name, torch module taking the network's inputs, engine weights path, arch, (H, W), inputs
    per batch item as shapes, reference fn(png) -> map at the model's size)."""
    if spec in ("mesorch", "mesorch_p"):
        model = Mesorch(full_config(spec)).eval()
        init_weights(model, seed)
        ckpt = os.path.join(work, f"{spec}.pth")
        torch.save(official_dict(model.state_dict(), 1, spec, False), ckpt)
        return spec, model, ckpt, spec, (512, 512), None
    with safe_open(spec, "pt") as f:
        meta = f.metadata()
    arch = meta["arch"]
    name = os.path.splitext(os.path.basename(spec))[0]
    if arch == "pmsp":
        import dataclasses

        from pmsp_ref import Pmsp, PmspConfig
        with safe_open(spec, "pt") as f:
            sd = {k: f.get_tensor(k).float() for k in f.keys()}
        cfg = dataclasses.replace(PmspConfig.from_json(json.loads(meta["config"])),
                                  input=tuple(json.loads(meta["input_size"])))
        model = Pmsp(cfg).eval()
        model.load_state_dict(sd, strict=False)
        return name, model, spec, arch, tuple(cfg.input), cfg
    if arch == "u2net_mst":
        model, hw = load_u2net_mst(spec)
        return name, model, spec, arch, hw, None
    if arch == "hifi":
        model, cfg = load_hifi(spec)
        return name, model, spec, arch, tuple(cfg.input), cfg
    model, hw = load_shipped(spec)
    return name, model, spec, arch, hw, None


def ref_map(arch, model, cfg, png, hw, dev):
    """The reference's map at the model's size for the picture at `png`, the network on `dev`."""
    if arch == "pmsp":
        from pmsp_ref import reference as pmsp_reference
        p, _ = pmsp_reference(OnDevice(model, dev), cfg, np.array(Image.open(png).convert("RGB")))
        return p
    call = (lambda x: model(x, fusion=cfg.fusion)) if arch == "hifi" else None
    p, _ = reference(OnDevice(model, dev, call), png, hw)
    return p


def engine(bin_, weights, pngs, out, save_raw=False, batch=1, extra=()):
    args = [bin_, "infer", "--json", "--weights", weights, "--out", out, "--batch", str(batch),
            *(["--save-raw"] if save_raw else []), *extra, *pngs]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"engine exited {p.returncode}: {p.stderr[-2000:]}")
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


def check(spec, a, work):
    t_model = time.time()
    name, model, weights, arch, (h, w), cfg = load_model(spec, work, a.seed)
    model = model.to(a.device).eval()
    r = {"model": name, "arch": arch, "input": [h, w]}
    if weights.endswith(".pth"):
        st = os.path.join(work, f"{name}.safetensors")
        subprocess.run([a.bin, "convert", weights, st], check=True, stdout=subprocess.DEVNULL)
        weights = st
    # Parity on one picture at the model's size (the engine's and the reference's resize agree).
    png = os.path.join(work, f"{name}-pic.png")
    Image.fromarray(make_image(h, w, a.seed)).save(png)
    out = os.path.join(work, f"out-{name}")
    engine(a.bin, weights, [png], out, save_raw=True)
    got = np.load(os.path.join(out, f"{name}-pic.model.npy"))
    want = ref_map(arch, model, cfg, png, (h, w), a.device)
    r["parity_max_abs"] = float(np.abs(got - want).max())
    r["parity_pass"] = r["parity_max_abs"] <= a.tol
    # Engine speed: reps+1 copies in one process.
    copies = []
    for i in range(a.reps + 1):
        c = os.path.join(work, f"{name}-c{i}.png")
        shutil.copy(png, c)
        copies.append(c)
    reps = engine(a.bin, weights, copies, os.path.join(work, f"speed-{name}"))
    tot = [x["timings_s"]["total"] for x in reps[1:]]
    gpu = [x["timings_s"]["gpu"] for x in reps[1:]]
    r["engine_ms"] = {"total": round(float(np.median(tot)) * 1e3, 3), "gpu": round(float(np.median(gpu)) * 1e3, 3),
                      "first_image_total": round(reps[0]["timings_s"]["total"] * 1e3, 3)}
    r["engine_ms"]["batch8_sequential"] = round(8 * r["engine_ms"]["total"], 3)
    # Batch 8: 16 copies, two submissions of 8; the second (warm) one's images.
    copies16 = [os.path.join(work, f"{name}-b{i:02d}.png") for i in range(16)]
    for c in copies16:
        shutil.copy(png, c)
    b8 = engine(a.bin, weights, copies16, os.path.join(work, f"speed8-{name}"), batch=8)[8:16]
    r["engine_ms"]["batch8"] = {"total": round(sum(x["timings_s"]["total"] for x in b8) * 1e3, 3),
                                "gpu": round(sum(x["timings_s"]["gpu"] for x in b8) * 1e3, 3)}
    # The same with weights stored in f16 (--half-weights; hardware GPUs only): what it costs in
    # parity, what it saves in time.
    half_out = os.path.join(work, f"half-{name}")
    engine(a.bin, weights, [png], half_out, save_raw=True, extra=["--half-weights"])
    r["parity_half_weights_max_abs"] = float(np.abs(np.load(os.path.join(half_out, f"{name}-pic.model.npy")) - want).max())
    half = engine(a.bin, weights, copies, os.path.join(work, f"speed-half-{name}"), extra=["--half-weights"])
    r["engine_ms"]["half_weights_total"] = round(float(np.median([x["timings_s"]["total"] for x in half[1:]])) * 1e3, 3)
    # PyTorch, the network alone on random inputs of the model's size.
    torch_ms = {}
    for batch in (1, 8):
        xs = [torch.randn(batch, 3, h, w, device=a.device)]
        if arch == "pmsp":
            xs.append(torch.rand(batch, 3, h, w, device=a.device) * 40)
        fwd = (lambda *x: model(*x, fusion=cfg.fusion)) if arch == "hifi" else model
        torch_ms[f"eager_b{batch}"] = median_ms(lambda: fwd(*xs), a.reps, a.device)
        if a.no_compile:
            continue
        if time.time() - T0 > a.budget_s * 2 / 3:
            torch_ms[f"compile_b{batch}"] = None
            r.setdefault("notes", []).append(f"torch.compile b{batch} skipped: over two thirds of the budget spent")
            continue
        t = time.time()
        comp = torch.compile(fwd)
        with torch.no_grad():
            comp(*xs)
        r.setdefault("compile_s", {})[f"b{batch}"] = round(time.time() - t, 1)
        torch_ms[f"compile_b{batch}"] = median_ms(lambda: comp(*xs), a.reps, a.device)
    r["torch_ms"] = torch_ms
    r["engine_over_eager_b1"] = round(r["engine_ms"]["total"] / torch_ms["eager_b1"], 2)
    r["seconds"] = round(time.time() - t_model, 1)
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "wgpu-forge"))
    ap.add_argument("--out", required=True, help="folder for device_check.json")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--models", nargs="+", default=None,
                    help="mesorch, mesorch_p and/or weights files (default: both and every shipped file)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--budget-s", type=float, default=420)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="one rep, no torch.compile (a CPU dry run)")
    a = ap.parse_args()
    if a.smoke:
        a.reps, a.no_compile = 1, True
    models = a.models or ["mesorch_p", "mesorch", *sorted(glob.glob(os.path.join(ROOT, "weights", "*.safetensors")))]
    os.makedirs(a.out, exist_ok=True)
    info = subprocess.run([a.bin, "info"], capture_output=True, text=True)
    res = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "engine_info": info.stdout.strip().splitlines()[:12],
        "torch": torch.__version__,
        "torch_device": torch.cuda.get_device_name(0) if a.device.startswith("cuda") else "cpu",
        "reps": a.reps,
        "tol": a.tol,
        "models": [],
    }
    work = tempfile.mkdtemp(prefix="forge-devcheck-")
    ok = True
    for spec in models:
        try:
            r = check(spec, a, work)
        except Exception as e:  # one model's failure must not lose the others' numbers
            r = {"model": spec, "error": f"{type(e).__name__}: {e}"}
        ok &= bool(r.get("parity_pass"))
        res["models"].append(r)
        print(json.dumps(r), flush=True)
        with open(os.path.join(a.out, "device_check.json"), "w") as f:
            json.dump(res, f, indent=1)
    res["seconds"] = round(time.time() - T0, 1)
    with open(os.path.join(a.out, "device_check.json"), "w") as f:
        json.dump(res, f, indent=1)
    shutil.rmtree(work, ignore_errors=True)
    print("PASS" if ok else "FAIL", f"(parity tolerance {a.tol}; {res['seconds']} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
