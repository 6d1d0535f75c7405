#!/usr/bin/env python3
"""Golden fixture for the shipped default weights (`weights/mesorch-compact.safetensors`):
the PyTorch reference (`tools/mesorch_ref.py`) run on the weights exactly as shipped (f16 values,
computed in fp32) on one small non-square PNG, through the benchmark's test path (PIL RGB,
cv2 INTER_LINEAR resize to the model's input size, ImageNet normalization, model, sigmoid,
bilinear align_corners=False back to the image's size).

Writes tests/fixtures/shipped/{input.png, expected.safetensors}; `tests/shipped_weights.rs`
runs the engine on the same files without Python. Rerun after replacing the weights:

    python3 tools/make_shipped_fixture.py [--weights weights/mesorch-compact.safetensors]

The input is a 320x240 crop of examples/spliced.jpg (CC0, made by tools/make_example.py) around
its spliced region, stored as PNG so that both sides decode the same pixels.
"""
import argparse
import hashlib
import json
import os
import sys

import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mesorch_ref import Mesorch, MesorchConfig  # noqa: E402
from parity_full import reference  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CROP = (180, 100, 500, 340)  # left, top, right, bottom in examples/spliced.jpg (600x400)


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
    ap.add_argument("--weights", default=os.path.join(ROOT, "weights", "mesorch-compact.safetensors"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "shipped"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    model, (mh, mw) = load_shipped(a.weights)
    png = os.path.join(a.out, "input.png")
    Image.open(os.path.join(ROOT, "examples", "spliced.jpg")).convert("RGB").crop(CROP).save(png)
    p, full = reference(model, png, (mh, mw))  # from the PNG as written, as the test reads it
    h, w = full.shape
    sha = hashlib.sha256(open(a.weights, "rb").read()).hexdigest()
    save_file({"model_prob": torch.from_numpy(p), "prob": torch.from_numpy(full)},
              os.path.join(a.out, "expected.safetensors"),
              metadata={"weights_sha256": sha, "weights": os.path.relpath(a.weights, ROOT),
                        "made_by": "tools/make_shipped_fixture.py", "torch": torch.__version__})
    print(f"wrote {a.out}: input {w}x{h}, model {mw}x{mh}, p in [{p.min():.4f}, {p.max():.4f}], "
          f"weights sha256 {sha[:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
