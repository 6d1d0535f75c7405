#!/usr/bin/env python3
"""Golden fixtures for the shipped weights (`weights/*.safetensors`): our PyTorch reference of the
file's `arch` (`tools/mesorch_ref.py`, `tools/pmsp_ref.py`, `tools/u2net_mst_ref.py`,
`tools/hifi_ref.py`) run on the weights exactly as shipped
(f16 values, computed in fp32) on one small non-square PNG, through the engine's input path (PIL
RGB; for PMSP the ELA at the image's own size by `tools/ela_ref.py`; cv2 INTER_LINEAR resize to the
model's input size, ImageNet normalization, model, probability, bilinear align_corners=False back
to the image's size).

Writes tests/fixtures/shipped/{input.png, <weights stem>.safetensors} (for hifi also
`model_prob_product`: the product fusion of the same file at the model's size, `--set fusion=product`); `tests/shipped_weights.rs`
runs the engine on the same files without Python. Rerun after replacing a file:

    python3 tools/make_shipped_fixture.py --weights weights/NAME.safetensors

The input is a 320x240 crop of examples/spliced.jpg (CC0, made by tools/make_example.py) around
its spliced region, stored as PNG so that both sides decode the same pixels.
"""
import argparse
import dataclasses
import hashlib
import json
import os
import sys

import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
from mesorch_ref import Mesorch, MesorchConfig  # noqa: E402
from parity_full import reference  # noqa: E402
from pmsp_ref import Pmsp, PmspConfig  # noqa: E402
from pmsp_ref import reference as pmsp_reference  # noqa: E402
from u2net_mst_ref import U2netMst, U2netMstConfig  # noqa: E402
from hifi_ref import Hifi, from_engine_json  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CROP = (180, 100, 500, 340)  # left, top, right, bottom in examples/spliced.jpg (600x400)


def pmsp_maps(path: str, png: str):
    """(map at the model's size, map at the image's size) of a converted PMSP file on `png`."""
    with safe_open(path, "pt") as f:
        meta = f.metadata()
        sd = {k: f.get_tensor(k).float() for k in f.keys()}
    cfg = dataclasses.replace(PmspConfig.from_json(json.loads(meta["config"])),
                              input=tuple(json.loads(meta["input_size"])))
    model = Pmsp(cfg).eval()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    p, full = pmsp_reference(model, cfg, np.array(Image.open(png).convert("RGB")))
    return p, full, cfg.input


def load_u2net_mst(path: str):
    """U^2-Net-MST and its input size from a converted file (metadata `config`, `input_size`)."""
    with safe_open(path, "pt") as f:
        meta = f.metadata()
        sd = {k: f.get_tensor(k).float() for k in f.keys()}
    model = U2netMst(U2netMstConfig.from_json(json.loads(meta["config"]))).eval()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    h, w = json.loads(meta["input_size"])
    return model, (h, w)


def load_hifi(path: str):
    """hifi and its config (fusion, input size) from a converted file."""
    with safe_open(path, "pt") as f:
        meta = f.metadata()
        sd = {k: f.get_tensor(k).float() for k in f.keys()}
    cfg = from_engine_json(json.loads(meta["config"]), json.loads(meta["input_size"]))
    model = Hifi(cfg).eval()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    return model, cfg


def hifi_maps(path: str, png: str):
    """{name: map} of a converted hifi file on `png`: the metadata's fusion as model_prob / prob,
    the product fusion at the model's size as model_prob_product."""
    model, cfg = load_hifi(path)
    maps = {}
    for fusion, tag in ((cfg.fusion, ""), ("product", "_product")):
        p, full = reference(lambda x: model(x, fusion=fusion), png, cfg.input)
        maps[f"model_prob{tag}"], maps[f"prob{tag}"] = p, full
    del maps["prob_product"]  # the resize back is checked on the default fusion
    return maps, cfg.input


def load_shipped(path: str):
    """Model and input size from a file written by `wgpu-forge convert` (metadata `config`,
    `input_size`, `arch`; tensors under the official key names)."""
    with safe_open(path, "pt") as f:
        meta = f.metadata()
        sd = {k: f.get_tensor(k).float() for k in f.keys()}
    c = json.loads(meta["config"])
    gate = c.get("gate") or {}
    cfg = MesorchConfig(
        variant=meta["arch"], cnx_dims=tuple(c["convnext_dims"]), cnx_depths=tuple(c["convnext_depths"]),
        cnx_mlp_ratio=c["mlp_ratio"], cnx_head_classes=1000 if any(k.startswith("convnext.head.") for k in sd) else 0,
        mit_dims=tuple(c["mit_dims"]), mit_heads=tuple(c["mit_heads"]), mit_depths=tuple(c["mit_depths"]),
        mit_sr=tuple(c["mit_sr_ratios"]), mit_mlp_ratio=c["mlp_ratio"],
        gate_dim=gate.get("dim", 192), gate_hidden=gate.get("hidden", 768))
    model = Mesorch(cfg).eval()
    model.load_state_dict(sd, strict=True)
    h, w = json.loads(meta["input_size"])
    return model, (h, w)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True, help="a weights/*.safetensors file")
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "shipped"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    png = os.path.join(a.out, "input.png")
    Image.open(os.path.join(ROOT, "examples", "spliced.jpg")).convert("RGB").crop(CROP).save(png)
    with safe_open(a.weights, "pt") as f:
        arch = f.metadata()["arch"]
    # From the PNG as written, as the test reads it.
    extra = {}
    if arch == "pmsp":
        p, full, (mh, mw) = pmsp_maps(a.weights, png)
    elif arch == "hifi":
        extra, (mh, mw) = hifi_maps(a.weights, png)
        p, full = extra.pop("model_prob"), extra.pop("prob")
    else:
        model, (mh, mw) = load_u2net_mst(a.weights) if arch == "u2net_mst" else load_shipped(a.weights)
        p, full = reference(model, png, (mh, mw))
    h, w = full.shape
    sha = hashlib.sha256(open(a.weights, "rb").read()).hexdigest()
    maps = {"model_prob": p, "prob": full, **extra}
    save_file({k: torch.from_numpy(v) for k, v in maps.items()},
              os.path.join(a.out, os.path.splitext(os.path.basename(a.weights))[0] + ".safetensors"),
              metadata={"weights_sha256": sha, "weights": os.path.relpath(a.weights, ROOT),
                        "made_by": "tools/make_shipped_fixture.py", "torch": torch.__version__})
    print(f"wrote {a.out}: input {w}x{h}, model {mw}x{mh}, p in [{p.min():.4f}, {p.max():.4f}], "
          f"weights sha256 {sha[:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
