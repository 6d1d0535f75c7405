#!/usr/bin/env python3
"""Our own PyTorch reference of Mesorch and Mesorch-P (fp32, CPU).

Written from docs in /work/shared/specs/mesorch.md and the public description of the official
code (scu-zjz/Mesorch, timm ConvNeXt, SegFormer MiT). No code was copied; the module tree is laid
out so that `state_dict()` produces the official key names, so an official checkpoint loads with
`load_state_dict(strict=True)` once unused keys are dropped (see `load_official`).

One code path serves the full models and the small test configs: every width, depth, head count
and spatial-reduction ratio comes from `MesorchConfig`.

Usage:
    python3 tools/mesorch_ref.py --selftest        # key/param counts of the full models + checks
    python3 tools/mesorch_ref.py --ckpt FILE.pth [--variant mesorch|mesorch_p] [--size 512]
        # load a checkpoint and run a seeded random input (prints output stats)

Import:
    from mesorch_ref import MesorchConfig, Mesorch, load_official
    out = Mesorch(cfg).eval()(x)   # dict of intermediates, see Mesorch.forward
"""
import argparse
import dataclasses
import math
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


@dataclass
class MesorchConfig:
    """Architecture of Mesorch / Mesorch-P. Defaults are the official full Mesorch."""

    variant: str = "mesorch"  # "mesorch" (8 scales + gate) or "mesorch_p" (5 scales, no gate)
    # local encoder: timm ConvNeXt (ConvNeXt-Tiny in the official model)
    cnx_dims: Tuple[int, ...] = (96, 192, 384, 768)
    cnx_depths: Tuple[int, ...] = (3, 3, 9, 3)
    cnx_mlp_ratio: int = 4
    # timm keeps an (unused) classifier head `convnext.head.norm` + `convnext.head.fc`
    cnx_head_classes: int = 1000  # 0 = no head keys at all
    # global encoder: SegFormer MiT (MiT-B3 in the official model)
    mit_dims: Tuple[int, ...] = (64, 128, 320, 512)
    mit_heads: Tuple[int, ...] = (1, 2, 5, 8)
    mit_depths: Tuple[int, ...] = (3, 4, 18, 3)
    mit_sr: Tuple[int, ...] = (8, 4, 2, 1)
    mit_mlp_ratio: int = 4
    # adaptive weighting network ("ScoreNetwork", key prefix `gate.`), Mesorch only
    gate_dim: int = 192
    gate_hidden: int = 768
    # Mesorch-P: does the state_dict still carry convnext.stages.3.* / convnext.head.* ?
    # (they are never used by the forward; see selftest for which setting gives the spec counts)
    p_keep_stage3: bool = False
    # output size of the final bilinear resize; None = the input's size (the official code hard
    # codes 512x512, which is the input size of the official pipeline)
    out_size: Optional[Tuple[int, int]] = None
    dct_high_frac: float = 0.05
    dct_low_frac: float = 0.95

    @property
    def is_p(self) -> bool:
        return self.variant == "mesorch_p"

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @staticmethod
    def from_json(d: dict) -> "MesorchConfig":
        kw = {}
        for f in dataclasses.fields(MesorchConfig):
            if f.name in d:
                v = d[f.name]
                kw[f.name] = tuple(v) if isinstance(v, list) else v
        return MesorchConfig(**kw)


def full_config(variant: str = "mesorch") -> MesorchConfig:
    if variant == "mesorch":
        return MesorchConfig(variant="mesorch")
    # The official Mesorch_P deletes the ConvNeXt head and drops stage 3 (checked by --selftest
    # against the spec's 743 keys / 62,235,365 params).
    return MesorchConfig(variant="mesorch_p", cnx_head_classes=0, p_keep_stage3=False)


# ---------------------------------------------------------------------------------------------
# DCT frequency extractors (full-image orthonormal DCT-II per channel, float32)
# ---------------------------------------------------------------------------------------------


def dct_matrix(n: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix D[k, m] = sqrt(2/n) cos(pi k (2m+1) / (2n)); row 0 = 1/sqrt(n).
    Computed on float32 tensors the way the official extractor does: pi is a Python scalar, so the
    cosine argument is rounded to float32 at every step (~1.5e-4 relative from the exact DCT at 512)."""
    k = torch.arange(n, dtype=torch.float32).reshape(n, 1)
    m = torch.arange(n, dtype=torch.float32).reshape(1, n)
    d = torch.sqrt(torch.tensor(2.0 / n)) * torch.cos(math.pi * k * (2 * m + 1) / (2 * n))
    d[0, :] = 1.0 / math.sqrt(n)
    return d


def _minmax_per_sample(v: torch.Tensor) -> torch.Tensor:
    b = v.shape[0]
    flat = v.reshape(b, -1)
    mn = flat.min(dim=1).values.view(b, 1, 1, 1)
    mx = flat.max(dim=1).values.view(b, 1, 1, 1)
    return (v - mn) / (mx - mn)  # no epsilon, as in the official code


def dct_filter(x: torch.Tensor, kind: str, high_frac: float = 0.05, low_frac: float = 0.95) -> torch.Tensor:
    """kind 'high': zero the top-left int(high_frac*H) x int(high_frac*W) DCT block.
    kind 'low': zero the bottom-right int(low_frac*H) x int(low_frac*W) block (keeps an L shape).
    Then inverse DCT and min-max over the whole sample (all channels jointly)."""
    _, _, h, w = x.shape
    dh = dct_matrix(h)
    dw = dct_matrix(w)
    coef = dh @ (x.float() @ dw.t())  # the official association order
    mask = torch.ones(h, w, dtype=torch.float32)
    if kind == "high":
        mask[: int(high_frac * h), : int(high_frac * w)] = 0.0
    elif kind == "low":
        mask[h - int(low_frac * h):, w - int(low_frac * w):] = 0.0
    else:
        raise ValueError(kind)
    rec = dh.t() @ ((coef * mask) @ dw)
    return _minmax_per_sample(rec)


# ---------------------------------------------------------------------------------------------
# Small building blocks
# ---------------------------------------------------------------------------------------------


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over channels of an NCHW tensor (timm LayerNorm2d semantics)."""

    def __init__(self, c: int, eps: float = 1e-6):
        super().__init__(c, eps=eps)

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def _up_chain(chans: List[int]) -> nn.Module:
    """ConvTranspose2d(k4, s2, p1) chain through the given channel list. One step is a bare
    module (key `<name>.weight`), several are an nn.Sequential (keys `<name>.<i>.weight`)."""
    steps = [nn.ConvTranspose2d(a, b, kernel_size=4, stride=2, padding=1) for a, b in zip(chans[:-1], chans[1:])]
    return steps[0] if len(steps) == 1 else nn.Sequential(*steps)


# ---------------------------------------------------------------------------------------------
# Local encoder: timm-style ConvNeXt (key prefix `convnext.`)
# ---------------------------------------------------------------------------------------------


class CnxMlp(nn.Module):
    def __init__(self, c: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(c, hidden)
        self.fc2 = nn.Linear(hidden, c)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact erf GELU


class CnxBlock(nn.Module):
    def __init__(self, c: int, mlp_ratio: int):
        super().__init__()
        self.conv_dw = nn.Conv2d(c, c, 7, padding=3, groups=c, bias=True)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.mlp = CnxMlp(c, mlp_ratio * c)
        self.gamma = nn.Parameter(torch.full((c,), 1e-6))

    def forward(self, x):
        y = self.conv_dw(x).permute(0, 2, 3, 1)
        y = self.mlp(self.norm(y)).permute(0, 3, 1, 2)
        return x + y * self.gamma.view(1, -1, 1, 1)


class CnxStage(nn.Module):
    def __init__(self, cin: int, cout: int, depth: int, mlp_ratio: int, downsample: bool):
        super().__init__()
        if downsample:
            self.downsample = nn.Sequential(LayerNorm2d(cin, 1e-6), nn.Conv2d(cin, cout, 2, stride=2, bias=True))
        else:
            self.downsample = nn.Identity()
        self.blocks = nn.Sequential(*[CnxBlock(cout, mlp_ratio) for _ in range(depth)])

    def forward(self, x):
        return self.blocks(self.downsample(x))


class CnxHead(nn.Module):
    """timm NormMlpClassifierHead parameters (never used by Mesorch)."""

    def __init__(self, c: int, classes: int):
        super().__init__()
        self.norm = LayerNorm2d(c, 1e-6)
        self.fc = nn.Linear(c, classes)


class ConvNeXtEnc(nn.Module):
    def __init__(self, cfg: MesorchConfig, in_chans: int = 6):
        super().__init__()
        d = cfg.cnx_dims
        self.stem = nn.Sequential(nn.Conv2d(in_chans, d[0], 4, stride=4, bias=False), LayerNorm2d(d[0], 1e-6))
        n_stages = 3 if (cfg.is_p and not cfg.p_keep_stage3) else 4
        stages = []
        for i in range(n_stages):
            cin = d[0] if i == 0 else d[i - 1]
            stages.append(CnxStage(cin, d[i], cfg.cnx_depths[i], cfg.cnx_mlp_ratio, downsample=i > 0))
        self.stages = nn.Sequential(*stages)
        if cfg.cnx_head_classes:
            self.head = CnxHead(d[3], cfg.cnx_head_classes)
        self.n_run = 3 if cfg.is_p else 4  # stages actually computed

    def forward(self, x) -> List[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for i in range(self.n_run):
            x = self.stages[i](x)
            outs.append(x)
        return outs


# ---------------------------------------------------------------------------------------------
# Global encoder: SegFormer Mix Transformer (key prefix `segformer.`)
# ---------------------------------------------------------------------------------------------


class MitAttention(nn.Module):
    def __init__(self, c: int, heads: int, sr: int):
        super().__init__()
        assert c % heads == 0
        self.heads = heads
        self.scale = (c // heads) ** -0.5
        self.q = nn.Linear(c, c, bias=True)
        self.kv = nn.Linear(c, 2 * c, bias=True)
        self.proj = nn.Linear(c, c)
        self.sr_ratio = sr
        if sr > 1:
            self.sr = nn.Conv2d(c, c, kernel_size=sr, stride=sr, bias=True)
            self.norm = nn.LayerNorm(c, eps=1e-5)

    def forward(self, x, h, w):
        b, n, c = x.shape
        hd = c // self.heads
        q = self.q(x).reshape(b, n, self.heads, hd).transpose(1, 2)  # b, heads, n, hd
        src = x
        if self.sr_ratio > 1:
            m = x.transpose(1, 2).reshape(b, c, h, w)
            m = self.sr(m).flatten(2).transpose(1, 2)
            src = self.norm(m)
        kv = self.kv(src)  # b, m, 2c: [K | V]
        k = kv[..., :c].reshape(b, -1, self.heads, hd).transpose(1, 2)
        v = kv[..., c:].reshape(b, -1, self.heads, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * self.scale
        att = torch.softmax(att.float(), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(y)


class MitDWConv(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.dwconv = nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=True)

    def forward(self, x, h, w):
        b, n, c = x.shape
        y = self.dwconv(x.transpose(1, 2).reshape(b, c, h, w))
        return y.flatten(2).transpose(1, 2)


class MitMlp(nn.Module):
    def __init__(self, c: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(c, hidden)
        self.dwconv = MitDWConv(hidden)
        self.fc2 = nn.Linear(hidden, c)

    def forward(self, x, h, w):
        return self.fc2(F.gelu(self.dwconv(self.fc1(x), h, w)))


class MitBlock(nn.Module):
    def __init__(self, c: int, heads: int, sr: int, mlp_ratio: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(c, eps=1e-6)
        self.attn = MitAttention(c, heads, sr)
        self.norm2 = nn.LayerNorm(c, eps=1e-6)
        self.mlp = MitMlp(c, int(c * mlp_ratio))

    def forward(self, x, h, w):
        x = x + self.attn(self.norm1(x), h, w)
        return x + self.mlp(self.norm2(x), h, w)


class MitPatchEmbed(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, s: int, bias: bool):
        super().__init__()
        self.proj = nn.Conv2d(cin, cout, k, stride=s, padding=k // 2, bias=bias)
        self.norm = nn.LayerNorm(cout, eps=1e-5)

    def forward(self, x):
        x = self.proj(x)
        _, _, h, w = x.shape
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class MiTEnc(nn.Module):
    def __init__(self, cfg: MesorchConfig, in_chans: int = 6):
        super().__init__()
        d = cfg.mit_dims
        for i in range(4):
            if i == 0:
                pe = MitPatchEmbed(in_chans, d[0], 7, 4, bias=False)
            else:
                pe = MitPatchEmbed(d[i - 1], d[i], 3, 2, bias=True)
            setattr(self, f"patch_embed{i + 1}", pe)
            blocks = nn.ModuleList(
                [MitBlock(d[i], cfg.mit_heads[i], cfg.mit_sr[i], cfg.mit_mlp_ratio) for _ in range(cfg.mit_depths[i])]
            )
            setattr(self, f"block{i + 1}", blocks)
            setattr(self, f"norm{i + 1}", nn.LayerNorm(d[i], eps=1e-6))

    def forward(self, x) -> List[torch.Tensor]:
        b = x.shape[0]
        outs = []
        for i in range(1, 5):
            t, h, w = getattr(self, f"patch_embed{i}")(x)
            for blk in getattr(self, f"block{i}"):
                t = blk(t, h, w)
            t = getattr(self, f"norm{i}")(t)
            x = t.reshape(b, h, w, -1).permute(0, 3, 1, 2).contiguous()
            outs.append(x)
        return outs


# ---------------------------------------------------------------------------------------------
# Decoder, gate, full model
# ---------------------------------------------------------------------------------------------


class Upsample(nn.Module):
    """Keys: upsample.upsamplec2 / upsamplec3.{0,1} / upsamplec4.{0,1,2} and the same for s2..s4
    (Mesorch-P has no c2 / c4 chains)."""

    def __init__(self, cfg: MesorchConfig):
        super().__init__()
        c, s = cfg.cnx_dims, cfg.mit_dims
        cnx_scales = [3] if cfg.is_p else [2, 3, 4]
        for i in cnx_scales:
            setattr(self, f"upsamplec{i}", _up_chain([c[j] for j in range(i - 1, -1, -1)]))
        for i in (2, 3, 4):
            setattr(self, f"upsamples{i}", _up_chain([s[j] for j in range(i - 1, -1, -1)]))


class ScoreNetwork(nn.Module):
    def __init__(self, cfg: MesorchConfig, in_chans: int = 9, n_out: int = 8):
        super().__init__()
        g, gh = cfg.gate_dim, cfg.gate_hidden
        self.conv1 = nn.Conv2d(in_chans, g, 7, stride=2, padding=3)
        self.invert = nn.Sequential(
            LayerNorm2d(g, 1e-6),
            nn.Conv2d(g, g, 3, padding=1),
            nn.Conv2d(g, gh, 1),
            nn.Conv2d(gh, g, 1),
            nn.GELU(),
        )
        self.conv2 = nn.Conv2d(g, n_out, 7, stride=2, padding=3)

    def forward(self, x):
        y = self.conv1(x)
        y = y + self.invert(y)
        return torch.softmax(self.conv2(y).float(), dim=1)


class Mesorch(nn.Module):
    """Mesorch (cfg.variant == 'mesorch') or Mesorch-P (cfg.variant == 'mesorch_p')."""

    def __init__(self, cfg: MesorchConfig):
        super().__init__()
        self.cfg = cfg
        self.convnext = ConvNeXtEnc(cfg)
        self.segformer = MiTEnc(cfg)
        self.upsample = Upsample(cfg)
        c0, s0 = cfg.cnx_dims[0], cfg.mit_dims[0]
        if cfg.is_p:
            self.inverse = nn.ModuleList([nn.Conv2d(c0, 1, 1) for _ in range(2)] + [nn.Conv2d(s0, 1, 1) for _ in range(3)])
            self.scale_names = ["c1", "c3", "s2", "s3", "s4"]
        else:
            self.inverse = nn.ModuleList([nn.Conv2d(c0, 1, 1) for _ in range(4)] + [nn.Conv2d(s0, 1, 1) for _ in range(4)])
            self.gate = ScoreNetwork(cfg)
            self.scale_names = ["c1", "c2", "c3", "c4", "s1", "s2", "s3", "s4"]

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """x: normalized image, N x 3 x H x W (H, W multiples of 32). Returns a dict:
        high, low (N,3,H,W); c1..c4 / s1..s4 raw encoder outputs (only those computed);
        up_<scale> each scale brought to H/4 (c1/s1 identical to raw); scale_logits (N,S,H/4,W/4)
        in the order of self.scale_names; gate (N,8,H/4,W/4) (Mesorch only); logit (N,1,H/4,W/4);
        logit_up (N,1,H,W) after the align_corners=True resize; prob = sigmoid(logit_up)."""
        cfg = self.cfg
        x = x.float()
        out: Dict[str, torch.Tensor] = {}
        high = dct_filter(x, "high", cfg.dct_high_frac, cfg.dct_low_frac)
        low = dct_filter(x, "low", cfg.dct_high_frac, cfg.dct_low_frac)
        out["high"], out["low"] = high, low
        cs = self.convnext(torch.cat([x, high], 1))
        ss = self.segformer(torch.cat([x, low], 1))
        for i, t in enumerate(cs):
            out[f"c{i + 1}"] = t
        for i, t in enumerate(ss):
            out[f"s{i + 1}"] = t
        feats = []
        for name in self.scale_names:
            t = out[name]
            idx = int(name[1])
            if idx > 1:
                t = getattr(self.upsample, f"upsample{name}")(t)
            out[f"up_{name}"] = t
            feats.append(t)
        logits = torch.cat([conv(f) for conv, f in zip(self.inverse, feats)], dim=1)
        out["scale_logits"] = logits
        if cfg.is_p:
            fused = logits.sum(dim=1, keepdim=True)
        else:
            g = self.gate(torch.cat([x, high, low], 1))
            out["gate"] = g
            fused = (g * logits).sum(dim=1, keepdim=True)
        out["logit"] = fused
        size = tuple(cfg.out_size) if cfg.out_size else tuple(x.shape[-2:])
        up = F.interpolate(fused, size=size, mode="bilinear", align_corners=True)
        out["logit_up"] = up
        out["prob"] = torch.sigmoid(up.float())
        return out


# ---------------------------------------------------------------------------------------------
# Loading official checkpoints
# ---------------------------------------------------------------------------------------------


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Official files are a dict with 'model'; a bare state_dict is accepted too. The file pickles
    an argparse.Namespace, hence weights_only=False (only open files you trust)."""
    obj = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    return obj


def load_official(model: Mesorch, sd: Dict[str, torch.Tensor]) -> List[str]:
    """Load into `model`: keys the model lacks are ignored (returned), missing keys are an error.
    Tensors of any float dtype are cast to float32."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    if missing:
        raise KeyError(f"missing {len(missing)} keys, e.g. {missing[:5]}")
    extra = [k for k in sd if k not in own]
    fixed = {k: sd[k].to(torch.float32) for k in own}
    for k in own:
        if tuple(fixed[k].shape) != tuple(own[k].shape):
            raise ValueError(f"{k}: shape {tuple(fixed[k].shape)} != {tuple(own[k].shape)}")
    model.load_state_dict(fixed, strict=True)
    return extra


def count(sd) -> Tuple[int, int]:
    return len(sd), sum(v.numel() for v in sd.values())


# ---------------------------------------------------------------------------------------------
# Self-test
# ---------------------------------------------------------------------------------------------


def _dct_checks():
    d = dct_matrix(64)
    assert torch.allclose(d @ d.t(), torch.eye(64), atol=1e-5), "DCT matrix not orthonormal"
    # mask shapes at 512: high zeroes 25x25, low keeps the L of rows/cols 0..25
    h = w = 512
    assert int(0.05 * h) == 25 and h - int(0.95 * h) == 26
    x = torch.randn(2, 3, 64, 96)
    for kind in ("high", "low"):
        y = dct_filter(x, kind)
        for b in range(2):
            assert abs(float(y[b].min())) < 1e-7 and abs(float(y[b].max()) - 1) < 1e-6
    # per-sample: sample 0 unaffected by sample 1
    y01 = dct_filter(x, "low")
    y0 = dct_filter(x[:1], "low")
    assert torch.equal(y01[:1], y0)


def selftest() -> int:
    torch.manual_seed(0)
    _dct_checks()
    expect = {"mesorch": (804, 85_753_944), "mesorch_p": (743, 62_235_365)}
    ok = True
    for variant in ("mesorch", "mesorch_p"):
        cfg = full_config(variant)
        with torch.device("meta"):
            m = Mesorch(cfg)
        keys, params = count(m.state_dict())
        good = (keys, params) == expect[variant]
        ok &= good
        print(f"{variant:10s} keys {keys} params {params:,}  expected {expect[variant][0]} / {expect[variant][1]:,}  {'OK' if good else 'MISMATCH'}")
        sd = m.state_dict()
        for k in ("convnext.stem.0.bias", "segformer.patch_embed1.proj.bias"):
            assert k not in sd, k
        if variant == "mesorch":
            for k in ("convnext.head.fc.weight", "gate.invert.0.weight", "gate.invert.3.weight",
                      "upsample.upsamplec2.weight", "upsample.upsamplec4.2.weight", "inverse.7.weight",
                      "segformer.block3.17.attn.sr.weight", "segformer.block4.2.attn.kv.weight"):
                assert k in sd, k
            assert "segformer.block4.0.attn.sr.weight" not in sd
            assert tuple(sd["upsample.upsamplec2.weight"].shape) == (192, 96, 4, 4)  # [in, out, kH, kW]
    # Variants of Mesorch-P bookkeeping, printed for the record
    for keep3, head in ((True, 1000), (False, 1000), (True, 0)):
        cfg = dataclasses.replace(full_config("mesorch_p"), p_keep_stage3=keep3, cnx_head_classes=head)
        with torch.device("meta"):
            k, p = count(Mesorch(cfg).state_dict())
        print(f"  (mesorch_p with stage3 keys={keep3}, head classes={head}: {k} keys, {p:,} params)")
    # small configs run end to end on both variants, square and non-square
    small = MesorchConfig(cnx_dims=(8, 16, 24, 32), cnx_depths=(1, 1, 2, 1), mit_dims=(8, 16, 24, 32),
                          mit_heads=(1, 1, 2, 2), mit_depths=(1, 1, 1, 1), gate_dim=16, gate_hidden=32,
                          cnx_head_classes=10)
    for variant in ("mesorch", "mesorch_p"):
        cfg = dataclasses.replace(small, variant=variant)
        m = Mesorch(cfg).eval()
        for hw in ((64, 64), (64, 96)):
            with torch.no_grad():
                o = m(torch.randn(1, 3, *hw))
            s = len(m.scale_names)
            assert o["scale_logits"].shape == (1, s, hw[0] // 4, hw[1] // 4)
            assert o["prob"].shape == (1, 1, *hw)
            if "gate" in o:
                assert torch.allclose(o["gate"].sum(1), torch.ones(1), atol=1e-5)
        print(f"small {variant}: runs at 64x64 and 64x96")
    print("selftest", "PASSED" if ok else "FAILED")
    return 0 if ok else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--selftest", action="store_true")
    ap.add_argument("--ckpt")
    ap.add_argument("--variant", default="mesorch", choices=["mesorch", "mesorch_p"])
    ap.add_argument("--size", type=int, default=512)
    a = ap.parse_args(argv)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    if a.selftest:
        return selftest()
    if a.ckpt:
        m = Mesorch(full_config(a.variant)).eval()
        extra = load_official(m, read_state_dict(a.ckpt))
        print(f"loaded; ignored {len(extra)} extra keys")
        g = torch.Generator().manual_seed(0)
        x = torch.randn(1, 3, a.size, a.size, generator=g)
        with torch.no_grad():
            o = m(x)
        for k, v in o.items():
            print(f"{k:14s} {tuple(v.shape)} mean {v.mean():.6g} min {v.min():.6g} max {v.max():.6g}")
        return 0
    ap.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
