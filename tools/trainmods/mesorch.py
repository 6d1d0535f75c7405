"""Mesorch / Mesorch-P for tools/train.py (our reference tools/mesorch_ref.py; official key names,
so the export is an official-format checkpoint)."""
import argparse

import torch.nn as nn

from mesorch_ref import Mesorch, MesorchConfig
from train import to_input

COMPACT = dict(variant="mesorch", cnx_dims=(32, 64, 128, 256), cnx_depths=(1, 1, 2, 1), cnx_head_classes=0,
               mit_dims=(64, 128, 192, 256), mit_heads=(1, 2, 3, 4), mit_depths=(1, 1, 2, 1), mit_sr=(8, 4, 2, 1),
               gate_dim=64, gate_hidden=256)


class Spec:
    has_side = False
    side_channels = 0

    def config(self, over, size):
        d = dict(COMPACT)
        d.update(over)
        return MesorchConfig(**d)

    def config_json(self, cfg):
        return cfg.to_json()

    def config_from_json(self, d):
        return MesorchConfig.from_json(d)

    def side_tag(self, cfg):
        return "none"

    def side(self, cfg, im):
        return None

    def build(self, cfg):
        return Mesorch(cfg)

    def init(self, model, args):
        """timm's init for linear layers; ConvNeXt layer scale at --layer-scale (timm's 1e-6 suits
        long runs; for short CPU runs it scales the blocks' gradients below Adam's epsilon)."""
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for n, p in model.named_parameters():
            if n.endswith(".gamma"):
                nn.init.constant_(p, args.layer_scale)

    def forward(self, model, imgs, side, device):
        return model(to_input(imgs, device))

    def logit(self, out):
        return out["logit"]

    def prob(self, model, out):
        return out["prob"]

    def extra_loss(self, out, y, args):
        return 0.0

    def shift_logit(self, model, cfg, shift):
        # The fused logit is a gate-weighted (weights sum to 1) or plain sum of the per-scale
        # logits: moving every per-scale bias by `shift` (or shift / n for the plain sum) moves it.
        per_scale = shift / len(model.inverse) if cfg.is_p else shift
        for conv in model.inverse:
            conv.bias += per_scale

    def export_dict(self, sd, forge, ck):
        targs = ck.get("train_args", {})
        size = forge["input_size"][0]
        args = argparse.Namespace(model="Mesorch", image_size=size, if_resizing=True, batch_size=targs.get("batch"),
                                  lr=targs.get("lr"), weight_decay=targs.get("wd"), seed=targs.get("seed"),
                                  steps=ck.get("step"), trained_by="wgpu-forge tools/train.py",
                                  data="tools/synth_forgery.py (synthetic forgeries of Debian-packaged photos)")
        return {"model": sd, "epoch": int(ck.get("step", 0)), "args": args, "forge": forge}
