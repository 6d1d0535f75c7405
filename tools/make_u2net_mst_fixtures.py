#!/usr/bin/env python3
"""Small seeded U^2-Net-MST fixtures under tests/fixtures/u2net_mst/, made by our reference
(tools/u2net_mst_ref.py); `cargo test` (tests/u2net_mst_parity.rs) checks the engine against them
without Python.

Usage: python3 tools/make_u2net_mst_fixtures.py [--out tests/fixtures/u2net_mst]

What it writes:
  u2net_mst_tiny.pth       torch.save of {'model': state_dict (BN buffers and num_batches_tracked
                           included), 'forge': {'input_size', 'config'}}: what `convert` reads.
                           Width 0.03125 (every width 8 or 16 channels, bottleneck 16 = 4 heads
                           of 4), patches 2/1/2/1, a learned positional embedding, input 30 x 54:
                           an awkward size whose ceil-mode pools give odd maps (30 -> 15 -> 8 -> 4
                           -> 2, 54 -> 27 -> 14 -> 7 -> 4; inside stage1's RSU-7 down to 1 x 2)
  u2net_mst_tiny.json      the config, the stages and the versions used
  u2net_mst_tiny_stages.safetensors
                           input "image" (normalized RGB) and every stage the engine outputs:
                           stage1..stage5, mst_attn, mst, stage4d..stage1d, side1..side4, fuse, prob
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from u2net_mst_ref import U2netMst, U2netMstConfig, randomize_bn  # noqa: E402

TINY = U2netMstConfig(width=0.03125, patches=(2, 1, 2, 1), pos=(2, 4))
TINY_INPUT = (30, 54)
STAGES = ["stage1", "stage2", "stage3", "stage4", "stage5", "mst_attn", "mst", "stage4d", "stage3d", "stage2d",
          "stage1d", "side1", "side2", "side3", "side4", "fuse", "prob"]


def init_weights(model, seed):
    """Convs ~ N(0, 1/fan_in) (activations stay O(1) through the RSUs' residual sums), conv biases
    ~ 0.1 N, the positional embedding ~ 0.5 N; BN statistics and affine parameters randomized (so
    folding is tested)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (1.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
        if model.mst is not None and model.mst.pos is not None:
            model.mst.pos.copy_(0.5 * torch.randn(model.mst.pos.shape, generator=g))
    randomize_bn(model, seed + 1)


def make(out_dir, name, cfg, hw, seed):
    torch.manual_seed(0)
    model = U2netMst(cfg).eval()
    init_weights(model, seed)
    g = torch.Generator().manual_seed(7)
    image = torch.randn(1, 3, *hw, generator=g)
    with torch.no_grad():
        out = model(image)
    tensors = {"image": image}
    tensors.update({k: out[k] for k in STAGES})
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out_dir, f"{name}_stages.safetensors"))
    forge = {"input_size": list(hw), "config": cfg.to_json()}
    torch.save({"model": model.state_dict(), "forge": forge}, os.path.join(out_dir, f"{name}.pth"))
    meta = {"config": cfg.to_json(), "input_size": list(hw), "stages": STAGES, "torch": torch.__version__,
            "numpy": np.__version__, "made_by": "tools/make_u2net_mst_fixtures.py"}
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(name, {k: tuple(v.shape) for k, v in tensors.items()},
          "prob range", float(out["prob"].min()), float(out["prob"].max()),
          "mst_attn absmax", float(out["mst_attn"].abs().max()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "u2net_mst"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    make(a.out, "u2net_mst_tiny", TINY, TINY_INPUT, 20261130)


if __name__ == "__main__":
    main()
