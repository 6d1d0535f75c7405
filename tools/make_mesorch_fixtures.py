#!/usr/bin/env python3
"""Generate small, seeded Mesorch / Mesorch-P fixtures under tests/fixtures/mesorch/.

Usage: python3 tools/make_mesorch_fixtures.py [--out tests/fixtures/mesorch]

Needs torch, numpy, safetensors (see tools/README.md). Deterministic: the same torch version
writes the same tensors (weights come from a seeded torch.Generator; all math is fp32 on CPU).

What it writes (see tools/README.md for the full list and the tensor names):
  mesorch_tiny.pth            official training-checkpoint layout: {'model', 'epoch', 'optimizer',
                              'scaler', 'args'}; storages tagged 'cuda:0' like a GPU-trained file
  mesorch_tiny_bare.pth       the same weights as a bare state_dict
  mesorch_tiny_f16.pth        official layout, some tensors stored as float16
  mesorch_p_tiny.pth          Mesorch-P, official layout
  <model>_<H>x<W>.safetensors input + every intermediate + outputs of the reference
  <model>.json                the config and the list of cases
"""
import argparse
import dataclasses
import json
import math
import os
import sys
from typing import Dict

import numpy as np
import torch
from safetensors.torch import save_file

sys.dont_write_bytecode = True  # no tools/__pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mesorch_ref import Mesorch, MesorchConfig, count, load_official, read_state_dict  # noqa: E402

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

TINY = MesorchConfig(
    variant="mesorch",
    cnx_dims=(8, 16, 24, 32),
    cnx_depths=(1, 1, 2, 1),
    cnx_head_classes=10,
    mit_dims=(8, 16, 24, 32),
    mit_heads=(1, 1, 2, 2),
    mit_depths=(1, 2, 1, 1),
    mit_sr=(8, 4, 2, 1),
    gate_dim=16,
    gate_hidden=64,
)
TINY_P = dataclasses.replace(TINY, variant="mesorch_p", cnx_head_classes=0, p_keep_stage3=False)


def init_weights(model: Mesorch, seed: int) -> None:
    """Random weights that keep activations O(1): weights ~ N(0, 1/fan_in), biases ~ 0.1 N,
    norm scales ~ 1 + 0.1 N, ConvNeXt layer scale gamma ~ 0.5 + 0.1 N."""
    g = torch.Generator().manual_seed(seed)
    mods = dict(model.named_modules())
    with torch.no_grad():
        for name, p in model.named_parameters():
            owner_name, _, leaf = name.rpartition(".")
            owner = mods[owner_name]
            n = lambda: torch.randn(p.shape, generator=g)  # noqa: E731
            if isinstance(owner, torch.nn.LayerNorm):
                p.copy_(1.0 + 0.1 * n() if leaf == "weight" else 0.1 * n())
            elif leaf == "gamma":
                p.copy_(0.5 + 0.1 * n())
            elif leaf == "bias":
                p.copy_(0.1 * n())
            elif isinstance(owner, torch.nn.ConvTranspose2d):
                # weight [in, out, 4, 4], stride 2: each output sees in * 2 * 2 taps
                p.copy_(n() / math.sqrt(p.shape[0] * 4))
            elif isinstance(owner, torch.nn.Conv2d):
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                p.copy_(n() / math.sqrt(fan_in))
            elif isinstance(owner, torch.nn.Linear):
                p.copy_(n() / math.sqrt(p.shape[1]))
            else:
                raise ValueError(f"no init rule for {name}")
        if hasattr(model, "gate"):
            model.gate.conv2.weight.mul_(2.0)  # sharper, more varied gate weights


def make_image(h: int, w: int, seed: int) -> np.ndarray:
    """Synthetic uint8 RGB image (H, W, 3): smooth gradients + a pasted block + noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack(
        [
            128 + 90 * np.sin(xx / w * 3.1 + 0.3) * np.cos(yy / h * 2.3),
            100 + 80 * np.cos((xx + yy) / (h + w) * 6.0),
            60 + 0.8 * xx + 0.6 * yy,
        ],
        axis=-1,
    )
    y0, x0 = h // 4, w // 3
    img[y0:y0 + h // 3, x0:x0 + w // 4] = rng.uniform(0, 255, size=3)  # a "spliced" patch
    img += rng.normal(0, 12, size=img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def normalize(img: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(img).permute(2, 0, 1).float()[None]
    mean = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    return ((x - mean) / std).contiguous()


def official_dict(sd, epoch: int, model_name: str, with_opt_state: bool) -> dict:
    """The layout of IMDL-BenCo training checkpoints. A few AdamW state tensors are included so
    that the file holds storages the 'model' dict does not reference (as real files do)."""
    opt = {"state": {}, "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8,
                                          "weight_decay": 0.05, "amsgrad": False, "params": []}]}
    if with_opt_state:
        for i, (k, v) in enumerate(list(sd.items())[:4]):
            opt["state"][i] = {"step": torch.tensor(float(epoch * 100)),
                               "exp_avg": torch.full_like(v, 1e-3, dtype=torch.float32),
                               "exp_avg_sq": torch.full_like(v, 1e-6, dtype=torch.float32)}
            opt["param_groups"][0]["params"].append(i)
    args = argparse.Namespace(model=model_name, batch_size=12, epochs=150, lr=1e-4, min_lr=5e-7,
                              weight_decay=0.05, warmup_epochs=2, accum_iter=2, image_size=512,
                              if_resizing=True, seg_pretrain_path=None, conv_pretrain=False,
                              output_dir="./output_dir", seed=42)
    scaler = {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
              "_growth_tracker": 0}
    return {"model": sd, "optimizer": opt, "epoch": epoch, "scaler": scaler, "args": args}


def save_cuda_tagged(obj, path: str) -> bool:
    """torch.save with every storage tagged 'cuda:0' (what a GPU-trained file records), without a
    GPU: a temporary location tagger ahead of the built-in ones. Falls back to a plain save."""
    reg = getattr(torch.serialization, "_package_registry", None)
    try:
        torch.serialization.register_package(-100, lambda s: "cuda:0", lambda s, loc: None)
    except Exception:  # noqa: BLE001
        torch.save(obj, path)
        return False
    try:
        torch.save(obj, path)
    finally:
        if reg is not None:
            reg[:] = [e for e in reg if e[0] != -100]
    return True


def run_case(model: Mesorch, img: np.ndarray) -> Dict[str, torch.Tensor]:
    """Inputs and every intermediate of one forward. (The safetensors files carry no __metadata__:
    safetensors writes it in hash order, which would make the files differ run to run.)"""
    x = normalize(img)
    with torch.no_grad():
        out = model(x)
    t = {"image_u8": torch.from_numpy(img.copy()), "input": x}
    for k, v in out.items():
        if k in ("up_c1", "up_s1"):
            continue  # the same tensors as c1 / s1 (scale 1 is not upsampled)
        t[k] = v.contiguous()
    return t


def check_roundtrip(path: str, cfg: MesorchConfig, ref: Mesorch, img: np.ndarray, exact=True) -> None:
    m = Mesorch(cfg).eval()
    extra = load_official(m, read_state_dict(path))
    a = run_case(m, img)["prob"]
    b = run_case(ref, img)["prob"]
    err = float((a - b).abs().max())
    assert (err == 0.0) if exact else err < 1e-2, (path, err)
    print(f"  reload {os.path.basename(path)}: ignored {len(extra)} extra keys, max|dp| {err:.3g}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                                   "fixtures", "mesorch"))
    a = ap.parse_args(argv)
    out = os.path.normpath(a.out)
    os.makedirs(out, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)

    images = {(64, 64): make_image(64, 64, 1), (64, 96): make_image(64, 96, 2)}
    notes = {}

    for name, cfg, seed, sizes in (("mesorch_tiny", TINY, 1234, [(64, 64), (64, 96)]),
                                   ("mesorch_p_tiny", TINY_P, 4321, [(64, 64)])):
        model = Mesorch(cfg).eval()
        init_weights(model, seed)
        sd = model.state_dict()  # keeps the _metadata attribute, as the official files do
        keys, params = count(sd)
        files = {}
        path = os.path.join(out, f"{name}.pth")
        tagged = save_cuda_tagged(official_dict(sd, 3, "Mesorch" if not cfg.is_p else "Mesorch_P", True), path)
        files[f"{name}.pth"] = {"format": "official dict", "storage_location": "cuda:0" if tagged else "cpu",
                                "dtype": "float32", "expected": "{name}_<H>x<W>.safetensors".format(name=name)}
        check_roundtrip(path, cfg, model, images[(64, 64)])
        cases = []
        for hw in sizes:
            t = run_case(model, images[hw])
            fn = f"{name}_{hw[0]}x{hw[1]}.safetensors"
            save_file(t, os.path.join(out, fn))
            cases.append({"file": fn, "height": hw[0], "width": hw[1],
                          "tensors": {k: [str(v.dtype).replace("torch.", ""), list(v.shape)] for k, v in t.items()}})

        if name == "mesorch_tiny":
            bare = os.path.join(out, f"{name}_bare.pth")
            torch.save(sd, bare)
            files[f"{name}_bare.pth"] = {"format": "bare state_dict", "storage_location": "cpu",
                                         "dtype": "float32", "expected": f"{name}_<H>x<W>.safetensors"}
            check_roundtrip(bare, cfg, model, images[(64, 64)])

            # float16 copy: every weight of segformer.* and upsample.* and the gate convs in f16
            sd16 = type(sd)()
            sd16._metadata = getattr(sd, "_metadata", None)
            for k, v in sd.items():
                half = (k.startswith(("segformer.", "upsample.", "gate.conv")) and k.endswith(".weight"))
                sd16[k] = v.half() if half else v.clone()
            p16 = os.path.join(out, f"{name}_f16.pth")
            torch.save(official_dict(sd16, 3, "Mesorch", False), p16)
            m16 = Mesorch(cfg).eval()
            load_official(m16, read_state_dict(p16))
            t = run_case(m16, images[(64, 64)])
            fn = f"{name}_f16_64x64.safetensors"
            save_file(t, os.path.join(out, fn))
            n16 = sum(1 for v in sd16.values() if v.dtype == torch.float16)
            files[f"{name}_f16.pth"] = {"format": "official dict", "storage_location": "cpu",
                                        "dtype": f"mixed: {n16} float16 tensors (segformer.*/upsample.*/gate.conv* "
                                                 "weights), the rest float32",
                                        "expected": fn + " (outputs of the f16-rounded weights, computed in fp32)"}
            cases.append({"file": fn, "height": 64, "width": 64, "checkpoint": f"{name}_f16.pth"})

        cfg_json = {
            "config": cfg.to_json(),
            "state_dict_keys": keys,
            "parameters": params,
            "scale_names": model.scale_names,
            "normalize": {"mean": list(MEAN), "std": list(STD), "formula": "(x - mean*255) / (std*255)"},
            "output_resize": "bilinear, align_corners=True, to the input size",
            "checkpoints": files,
            "cases": cases,
            "generator": "tools/make_mesorch_fixtures.py",
            "torch_version": torch.__version__,
            "seed": seed,
        }
        with open(os.path.join(out, f"{name}.json"), "w") as f:
            json.dump(cfg_json, f, indent=1)
            f.write("\n")
        notes[name] = (keys, params)
        print(f"{name}: {keys} keys, {params} params")

    total = 0
    for fn in sorted(os.listdir(out)):
        s = os.path.getsize(os.path.join(out, fn))
        total += s
        print(f"  {fn:36s} {s:>9,d} B")
    print(f"  total {total:,d} B")
    return 0


if __name__ == "__main__":
    sys.exit(main())
