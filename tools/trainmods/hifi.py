"""hifi (tools/hifi_ref.py) for tools/train.py: RGB only. The trainer's BCE + Dice applies to the
learned fusion's logit (log p - log(1 - p), p = sum_s w_s P_s, computed in log space); `extra_loss`
adds the source's weighted per-scale BCE, 0.2 coarse + 0.3 mid + 0.5 fine, on each scale's logit at
the input size against the soft mask. The product fusion has no loss of its own: it is a fixed
function of the three scale maps, which the per-scale terms train.

`--config '{"fusion": "product"}'` makes validation (and so best.pt's choice) use the product
fusion; training is the same either way.

    python3 tools/trainmods/hifi.py     # a quick check of the Spec on CPU
"""
import os
import sys

import torch.nn.functional as F

if __name__ == "__main__":  # run as a script: tools/ holds hifi_ref.py and train.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hifi_ref import COMPACT, Hifi, HifiConfig
from train import to_input

SCALE_WEIGHTS = {"coarse": 0.2, "mid": 0.3, "fine": 0.5}


class Spec:
    has_side = False
    side_channels = 0

    def config(self, over, size):
        d = dict(COMPACT)
        d.update(over)
        d["input"] = (size, size)
        return HifiConfig(**d)

    def config_json(self, cfg):
        return cfg.to_json()

    def config_from_json(self, d):
        return HifiConfig.from_json(d)

    def side_tag(self, cfg):
        return "none"

    def side(self, cfg, im):
        return None

    def build(self, cfg):
        return Hifi(cfg)

    def init(self, model, args):
        """PyTorch's defaults (Kaiming-uniform convs, unit BatchNorm); the gate's last conv starts at
        zero (equal weights 1/3), which Hifi's constructor does."""

    def forward(self, model, imgs, side, device):
        return model(to_input(imgs, device), fusion="learned")

    def logit(self, out):
        return out["logit_learned"]

    def prob(self, model, out):
        return out[f"prob_{model.cfg.fusion}"]

    def extra_loss(self, out, y, args):
        return sum(w * F.binary_cross_entropy_with_logits(out[f"logit_{s}"], y) for s, w in SCALE_WEIGHTS.items())

    def shift_logit(self, model, cfg, shift):
        # Every scale's logit moves by `shift` (its 1x1 conv's bias). Where the three scales agree
        # this moves the learned fusion's logit by exactly `shift`; elsewhere only approximately
        # (p is a mixture of probabilities, not of logits). The product fusion's threshold moves
        # differently again (three factors each shifted). See docs/models/hifi.md: prefer the
        # uncalibrated export and the engine's own verdict thresholds.
        for b in (model.coarse, model.mid, model.fine):
            b.logit.bias += shift

    def export_dict(self, sd, forge, ck):
        return {"model": sd, "forge": forge}


def _check():
    import numpy as np
    import torch
    s = Spec()
    cfg = s.config({}, 64)
    m = s.build(cfg).eval()
    imgs = np.random.randint(0, 256, (2, 64, 64, 3), np.uint8)
    with torch.no_grad():
        out = s.forward(m, imgs, None, torch.device("cpu"))
        y = (torch.rand(2, 1, 64, 64) > 0.8).float()
        assert s.logit(out).shape == (2, 1, 64, 64) and s.prob(m, out).shape == (2, 1, 64, 64)
        assert float(s.extra_loss(out, y, None)) > 0
        before = out["prob_learned"].clone()
        s.shift_logit(m, cfg, 1.0)
        after = s.forward(m, imgs, None, torch.device("cpu"))["prob_learned"]
        assert torch.all(after > before)
    print("trainmods/hifi ok")


if __name__ == "__main__":
    _check()
