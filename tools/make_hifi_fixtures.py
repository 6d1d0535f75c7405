#!/usr/bin/env python3
"""Small seeded hifi fixtures under tests/fixtures/hifi/, made by our reference (tools/hifi_ref.py);
`cargo test` (tests/hifi_parity.rs) checks the engine against them without Python.

Usage: python3 tools/make_hifi_fixtures.py [--out tests/fixtures/hifi]

What it writes, for each of two tiny configs:
  NAME.pth               torch.save of {'model': state_dict (BN buffers and num_batches_tracked
                         included), 'forge': {'input_size', 'config'}}: what `convert` reads
  NAME.json              the config, the stages and the versions used
  NAME_stages.safetensors
                         input "image" (normalized RGB, 32 x 48) and every stage the reference names:
                         coarse_pool, coarse_feat, coarse_ctx, coarse_head, logit_coarse_lo, mid_stem,
                         mid_feat, logit_mid_lo, fine_stem, fine_feat, logits (the three at H x W),
                         p_scales, prob_product, and (learned) gate_hidden, gate_logits, gate,
                         prob_learned; both fusions from the one set of weights

hifi_tiny: two coarse stages after a 2x2 pool (total stride 8), dilations (1, 2) and (1, 3), a gate
over the logits and the fine features, default fusion learned. hifi_tiny_logits: the same shapes
with a logits-only gate and default fusion product (the metadata chooses it).
"""
import argparse
import dataclasses
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hifi_ref import Hifi, HifiConfig, randomize_bn  # noqa: E402

TINY = HifiConfig(input=(32, 48), coarse_pool=2, coarse_dims=(8, 16), coarse_depth=(1, 2), coarse_head=8,
                  mid_dim=8, mid_dilations=(1, 2), fine_dim=8, fine_dilations=(1, 3), gate_dim=8)
TINY_LOGITS = dataclasses.replace(TINY, gate_fine_feats=False, fusion="product")
COMMON = ["coarse_pool", "coarse_feat", "coarse_ctx", "coarse_head", "logit_coarse_lo", "mid_stem", "mid_feat",
          "logit_mid_lo", "fine_stem", "fine_feat", "logits", "p_scales", "prob_product"]
LEARNED = ["gate_hidden", "gate_logits", "gate", "prob_learned"]


def init_weights(model, seed):
    """Convs ~ N(0, 2/fan_in), conv biases ~ 0.1 N (the gate's last conv too, so its weights are
    not flat); BN statistics and affine parameters randomized (so folding is tested)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
    randomize_bn(model, seed + 1)


def make(out_dir, name, cfg, seed):
    torch.manual_seed(0)
    model = Hifi(cfg).eval()
    init_weights(model, seed)
    h, w = cfg.input
    image = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        out = model(image)
    out["logits"] = torch.cat([out["logit_coarse"], out["logit_mid"], out["logit_fine"]], 1)
    out["p_scales"] = torch.cat([out["p_coarse"], out["p_mid"], out["p_fine"]], 1)
    stages = COMMON + LEARNED
    tensors = {"image": image}
    tensors.update({k: out[k] for k in stages})
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out_dir, f"{name}_stages.safetensors"))
    forge = {"input_size": list(cfg.input), "config": cfg.to_json()}
    torch.save({"model": model.state_dict(), "forge": forge}, os.path.join(out_dir, f"{name}.pth"))
    meta = {"config": cfg.to_json(), "stages": stages, "torch": torch.__version__, "numpy": np.__version__,
            "made_by": "tools/make_hifi_fixtures.py"}
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(name, {k: tuple(v.shape) for k, v in tensors.items()},
          "learned", float(out["prob_learned"].min()), float(out["prob_learned"].max()),
          "product", float(out["prob_product"].min()), float(out["prob_product"].max()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "hifi"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    make(a.out, "hifi_tiny", TINY, 20261130)
    make(a.out, "hifi_tiny_logits", TINY_LOGITS, 20261131)


if __name__ == "__main__":
    main()
