"""U^2-Net-MST for tools/train.py (our reference tools/u2net_mst_ref.py; U^2-Net's key names). RGB
only. Deep supervision as in the paper (sum of 5 BCE terms, weight 1): train.py's loss covers the
fused logit (its BCE + Dice), `extra_loss` adds the four side logits' BCE."""
import dataclasses
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tools/, when run as a script
from train import to_input
from u2net_mst_ref import COMPACT as COMPACT_CFG
from u2net_mst_ref import U2netMst, U2netMstConfig

# The compact default: width 0.375 (bottleneck 192 channels, 4 heads of 48), 3.49 M parameters.
COMPACT = COMPACT_CFG.to_json()


class Spec:
    has_side = False
    side_channels = 0

    def config(self, over, size):
        d = dict(COMPACT)
        d.update(over)
        return U2netMstConfig.from_json(d)

    def config_json(self, cfg):
        return cfg.to_json()

    def config_from_json(self, d):
        return U2netMstConfig.from_json(d)

    def side_tag(self, cfg):
        return "none"

    def side(self, cfg, im):
        return None

    def build(self, cfg):
        return U2netMst(cfg)

    def init(self, model, args):
        """PyTorch's defaults (Kaiming-uniform convs, unit BatchNorm), as the public U^2-Net code,
        except the fuse: `outconv` starts as the mean of the four side logits (weights 1/4, bias 0).
        With the default's random signs the fused logit starts opposite to sides that the side
        losses are already training, and its four weights move only ~lr per step under Adam."""
        with torch.no_grad():
            model.outconv.weight.fill_(0.25)
            model.outconv.bias.zero_()

    def forward(self, model, imgs, side, device):
        return model(to_input(imgs, device))

    def logit(self, out):
        return out["fuse"]

    def prob(self, model, out):
        return out["prob"]

    def extra_loss(self, out, y, args):
        """The four side logits' BCE against the soft mask (all at the input's size), weight 1 each."""
        return sum(F.binary_cross_entropy_with_logits(out[f"side{i}"], y) for i in range(1, 5))

    def shift_logit(self, model, cfg, shift):
        model.outconv.bias += shift

    def export_dict(self, sd, forge, ck):
        return {"model": sd, "forge": forge}


def _check():
    s = Spec()
    cfg = s.config({}, 256)
    assert cfg == COMPACT_CFG and s.config_from_json(s.config_json(cfg)) == cfg
    assert s.config({"width": 0.25, "patches": [8, 4]}, 256) == dataclasses.replace(cfg, width=0.25, patches=(8, 4))
    m = s.build(cfg).eval()
    imgs = np.random.randint(0, 256, (2, 256, 256, 3), np.uint8)
    with torch.no_grad():
        out = s.forward(m, imgs, None, torch.device("cpu"))
        assert s.logit(out).shape == (2, 1, 256, 256) and s.prob(m, out).shape == (2, 1, 256, 256)
        y = torch.rand(2, 1, 256, 256)
        extra = s.extra_loss(out, y, None)
        assert extra.ndim == 0 and float(extra) > 0
        before = s.logit(out).clone()
        s.shift_logit(m, cfg, 1.5)
        after = s.logit(s.forward(m, imgs, None, torch.device("cpu")))
        assert torch.allclose(after - before, torch.full_like(before, 1.5), atol=1e-4)
    print(f"u2net_mst spec ok: {sum(p.numel() for p in m.parameters()):,} params, config {cfg.to_json()}")


if __name__ == "__main__":
    _check()
