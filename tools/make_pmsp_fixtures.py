#!/usr/bin/env python3
"""Small seeded PMSP-Net fixtures under tests/fixtures/pmsp/, made by our reference
(tools/pmsp_ref.py); `cargo test` checks the engine against them without Python.

Usage: python3 tools/make_pmsp_fixtures.py [--out tests/fixtures/pmsp]

What it writes:
  pmsp_tiny.pth            torch.save of {'model': state_dict (BN buffers and num_batches_tracked
                           included), 'forge': {'input_size', 'config'}}: what `convert` reads
  pmsp_tiny.json           the config, the cases and the versions used
  pmsp_tiny_stages.safetensors
                           inputs "image" (normalized RGB) and "ela" (levels), and every stage the
                           reference names (rgb_f5, ela_f5, fused, ppm, head, logits, prob,
                           ela_view, ela_share) at 64 x 96
  pmsp_tiny_photo.png      a 150 x 110 picture with a pasted, differently compressed region
  pmsp_tiny_photo.safetensors
                           the reference's prob at 64 x 96 for that picture through the whole
                           input path (ELA at 150 x 110 by tools/ela_ref.py, cv2 resizes)
  pmsp_eff_tiny.*          the same (checkpoint, config, stages) for EfficientNet streams with a
                           short block table
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np
import torch
from safetensors.torch import save_file

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmsp_ref import Pmsp, PmspConfig, prepare, randomize_bn  # noqa: E402

TINY = PmspConfig(width=0.125, input=(64, 96), ppm_dim=16, head_dim=32)
# EfficientNet streams with a short block table (the engine reads it from the metadata): stride 32
# after the stem and four stride-2 blocks, every kind of block (no expansion, 3x3 and 5x5, skips).
TINY_EFF = PmspConfig(backbone="efficientnet_lite0", input=(64, 96), ppm_dim=8, head_dim=16,
                      effnet_blocks=((1, 3, 1, 8), (2, 3, 2, 8), (2, 5, 1, 8), (2, 5, 2, 16), (2, 3, 2, 16),
                                     (2, 5, 1, 16), (2, 5, 2, 24)),
                      effnet_ca_after=(3, 5, 6))
STAGES = ["rgb_f5", "ela_f5", "fused", "ppm", "head", "logits", "prob", "ela_view", "ela_share"]


def init_weights(model, seed):
    """Convs ~ N(0, 2/fan_in) (ReLU gain, so activations stay O(1) through 13 blocks), conv
    biases ~ 0.1 N; BN statistics and affine parameters randomized (so folding is tested)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
    randomize_bn(model, seed + 1)


def photo(seed):
    """A smooth picture saved as a q90 JPEG with a region pasted from a q60 JPEG of noise."""
    rng = np.random.default_rng(seed)
    h, w = 110, 150
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([60 + xx, 80 + yy * 0.8, 200 - (xx + yy) * 0.4], -1) + rng.normal(0, 3, (h, w, 3))
    img = np.clip(base, 0, 255).astype(np.uint8)
    img = cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1], cv2.IMREAD_UNCHANGED)
    donor = np.clip(rng.normal(128, 40, (h, w, 3)), 0, 255).astype(np.uint8)
    donor = cv2.imdecode(cv2.imencode(".jpg", donor, [cv2.IMWRITE_JPEG_QUALITY, 60])[1], cv2.IMREAD_UNCHANGED)
    img[30:80, 40:110] = donor[30:80, 40:110]
    return img  # BGR == RGB here: the content is synthetic; we treat the array as RGB throughout


def make(out_dir, name, cfg, seed, with_photo):
    torch.manual_seed(0)
    model = Pmsp(cfg).eval()
    init_weights(model, seed)
    h, w = cfg.input
    g = torch.Generator().manual_seed(7)
    image = torch.randn(1, 3, h, w, generator=g)
    ela = torch.randint(0, 40, (1, 3, h, w), generator=g).float()
    with torch.no_grad():
        out = model(image, ela)
    tensors = {"image": image, "ela": ela}
    tensors.update({k: out[k] for k in STAGES})
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out_dir, f"{name}_stages.safetensors"))
    if with_photo:
        img = photo(11)
        cv2.imwrite(os.path.join(out_dir, f"{name}_photo.png"), img[:, :, ::-1])  # stored as RGB
        rgb, e = prepare(img, cfg)
        with torch.no_grad():
            p = model(rgb, e)
        save_file({"prob": p["prob"].contiguous(), "ela": e.contiguous(), "image": rgb.contiguous()},
                  os.path.join(out_dir, f"{name}_photo.safetensors"))
    forge = {"input_size": list(cfg.input), "config": cfg.to_json()}
    torch.save({"model": model.state_dict(), "forge": forge}, os.path.join(out_dir, f"{name}.pth"))
    meta = {"config": cfg.to_json(), "stages": STAGES, "photo": [110, 150] if with_photo else None,
            "torch": torch.__version__, "numpy": np.__version__, "opencv": cv2.__version__,
            "made_by": "tools/make_pmsp_fixtures.py"}
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(name, {k: tuple(v.shape) for k, v in tensors.items()},
          "prob range", float(out["prob"].min()), float(out["prob"].max()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "pmsp"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    make(a.out, "pmsp_tiny", TINY, 20261129, True)
    make(a.out, "pmsp_eff_tiny", TINY_EFF, 20261130, False)


if __name__ == "__main__":
    main()
