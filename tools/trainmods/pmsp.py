"""PMSP-Net for tools/train.py: the ELA stream's input is computed at the image's own size
(tools/ela_ref.py, the engine's ELA bit for bit) and resized with the image."""
import numpy as np
import torch

from ela_ref import ela
from pmsp_ref import Pmsp, PmspConfig, load_pretrained_effnet
from train import to_input, to_levels

# The compact default for CPU training: MobileNetV1 at width 0.25 (streams end at 256 channels).
COMPACT = dict(width=0.25)


class Spec:
    has_side = True
    side_channels = 3

    def config(self, over, size):
        d = dict(COMPACT)
        d.update(over)
        d["input"] = (size, size)
        return PmspConfig(**d)

    def config_json(self, cfg):
        return cfg.to_json()

    def config_from_json(self, d):
        return PmspConfig.from_json(d)

    def side_tag(self, cfg):
        return f"ela{cfg.ela_quality}"

    def side(self, cfg, im):
        return ela(im, cfg.ela_quality)

    def build(self, cfg):
        return Pmsp(cfg)

    def init(self, model, args):
        """PyTorch's defaults (Kaiming-uniform convs, unit BatchNorm); with --pretrained and the
        EfficientNet backbone, both streams start from those ImageNet weights."""
        if getattr(args, "pretrained", "") and model.cfg.backbone == "efficientnet_lite0":
            sd = torch.load(args.pretrained, map_location="cpu", weights_only=True)
            for stream in (model.rgb, model.ela):
                left = load_pretrained_effnet(stream, sd)
            print(f"pretrained {args.pretrained}: both streams; unused {[k for k in left if 'num_batches' not in k]}")

    def forward(self, model, imgs, side, device):
        return model(to_input(imgs, device), to_levels(side, device))

    def logit(self, out):
        """Tampered minus authentic class logit at the input's resolution."""
        up = out["logits_up"]
        return up[:, 1:2] - up[:, 0:1]

    def prob(self, model, out):
        return out["prob"]

    def extra_loss(self, out, y, args):
        return 0.0

    def shift_logit(self, model, cfg, shift):
        model.head.cls.bias[1] += shift / 2
        model.head.cls.bias[0] -= shift / 2

    def export_dict(self, sd, forge, ck):
        return {"model": sd, "forge": forge}


def _check():
    s = Spec()
    cfg = s.config({}, 64)
    m = s.build(cfg).eval()
    imgs = np.random.randint(0, 256, (2, 64, 64, 3), np.uint8)
    side = np.stack([s.side(cfg, i) for i in imgs])
    with torch.no_grad():
        out = s.forward(m, imgs, side, torch.device("cpu"))
    assert s.logit(out).shape == (2, 1, 64, 64) and s.prob(m, out).shape == (2, 1, 64, 64)


if __name__ == "__main__":
    _check()
