"""PMSP-Net (Meng et al., two-stream ELA + RGB MobileNetV1 with Coordinate Attention and pyramid
pooling) as our own PyTorch reference. No official code exists: the architecture follows the paper
(../shared/seeds/002_*.txt, distilled in ../shared/specs/pmsp.md) and the standard blocks, and every
choice the paper leaves open is a field of `PmspConfig` with its value written down in
docs/models/pmsp.md. The engine's graph (src/models/pmsp.rs) computes the same function.

Inputs (the engine's pipeline makes both; `prepare` below does the same in numpy):
- `rgb`: the image resized to `input` with cv2.resize(INTER_LINEAR) on uint8, ImageNet-normalized.
- `ela`: ELA levels |x - jpeg(x, 90)| computed **at the image's own size** by tools/ela_ref.py (bit
  for bit the engine's ELA), resized to `input` the same way as uint8, as float levels 0..255. The
  model scales them by `ela_scale` itself.

Output dict: `rgb_f5`, `ela_f5` (each stream's last features, after their CA), `fused` (their sum),
`ppm` (the pyramid-pooled concat), `head` (after conv3x3 + BN + ReLU), `logits` (2 classes at
1/32), `logits_up` (bilinear, align_corners=False, to `input`), `prob` (softmax channel 1 =
tampered), and for `--scales`: `ela_view` (the ELA input's channel mean times `ela_scale`, clipped to
[0, 1]) and `ela_share` (the ELA stream's share of the fused features' energy at 1/32).

Checkpoint keys (timm's MobileNet naming): `rgb.conv_stem`, `rgb.bn1`, `rgb.blocks.{i}.conv_dw`,
`.bn1`, `.conv_pw`, `.bn2`; Coordinate Attention `rgb.ca{3,4,5}.conv1`, `.bn1`, `.conv_h`,
`.conv_w` (Hou et al.'s names); the same under `ela.`; `ppm.{k}.conv`, `ppm.{k}.bn`; `head.conv`,
`head.bn`, `head.cls`.

    python3 tools/pmsp_ref.py --selftest
"""

import dataclasses

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# (out channels at width 1.0, stride) of MobileNetV1's 13 depthwise-separable blocks.
MOBILENET_V1 = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
                (512, 1), (512, 1), (1024, 2), (1024, 1)]
# Feature taps: F3, F4, F5 end after these block indices (F1 after 0, F2 after 2); CA follows each.
CA_AFTER = {4: 3, 10: 4, 12: 5}
# EfficientNet-Lite0's 16 MBConv blocks: (expansion, kernel, stride, out channels); no squeeze-
# excitation, ReLU6, BatchNorm eps 1e-3 (TF's), lukemelas/EfficientNet-PyTorch key names.
EFFNET_LITE0 = ([(1, 3, 1, 16)] + [(6, 3, 2, 24), (6, 3, 1, 24)] + [(6, 5, 2, 40), (6, 5, 1, 40)]
                + [(6, 3, 2, 80)] + [(6, 3, 1, 80)] * 2 + [(6, 5, 1, 112)] * 3
                + [(6, 5, 2, 192)] + [(6, 5, 1, 192)] * 3 + [(6, 3, 1, 320)])
EFFNET_CA_AFTER = {4: 3, 10: 4, 15: 5}
EFFNET_BN_EPS = 1e-3
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BN_EPS = 1e-5


def make_divisible(v, divisor=8):
    """torchvision's channel rounding for width multipliers."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return new


@dataclasses.dataclass(frozen=True)
class PmspConfig:
    backbone: str = "mobilenet_v1"  # or "efficientnet_lite0" (ImageNet-pretrained weights exist)
    width: float = 1.0          # MobileNetV1 width multiplier (channels via make_divisible(c * width, 8))
    input: tuple = (576, 576)   # [H, W], multiples of 32 (paper: 576)
    ca_reduction: int = 32      # CA hidden width mip = max(ca_min, C // ca_reduction)
    ca_min: int = 8
    ppm_bins: tuple = (1, 2, 3, 6)
    ppm_dim: int = 0            # per bin; 0 = C5 // 4 (PSPNet)
    head_dim: int = 0           # the head's conv3x3 width; 0 = C5 // 2 (PSPNet: 512 for 1024)
    ela_quality: int = 90       # paper: 90
    ela_scale: float = 1 / 16   # ELA levels -> the ELA stream's input
    # EfficientNet backbone only: its blocks (expansion, kernel, stride, out) and the blocks CA
    # follows; () = EfficientNet-Lite0's (small tables make small test fixtures)
    effnet_blocks: tuple = ()
    effnet_ca_after: tuple = ()

    def blocks(self):
        return [tuple(b) for b in (self.effnet_blocks or EFFNET_LITE0)]

    def channels(self):
        if self.backbone == "efficientnet_lite0":
            return [o for _, _, _, o in self.blocks()]
        return [make_divisible(c * self.width) for c, _ in MOBILENET_V1]

    def stem(self):
        return 32 if self.backbone == "efficientnet_lite0" else make_divisible(32 * self.width)

    def ca_after(self):
        if self.backbone == "efficientnet_lite0":
            after = self.effnet_ca_after or tuple(EFFNET_CA_AFTER)
            return {i: f for i, f in zip(after, (3, 4, 5))}
        return CA_AFTER

    def c5(self):
        return self.channels()[-1]

    def ppm_width(self):
        return self.ppm_dim or self.c5() // 4

    def head_width(self):
        return self.head_dim or self.c5() // 2

    def mip(self, c):
        return max(self.ca_min, c // self.ca_reduction)

    def to_json(self):
        d = dataclasses.asdict(self)
        for k in ("input", "ppm_bins", "effnet_ca_after"):
            d[k] = list(d[k])
        d["effnet_blocks"] = [list(b) for b in self.effnet_blocks]
        return d

    @staticmethod
    def from_json(d):
        kw = {f.name: d[f.name] for f in dataclasses.fields(PmspConfig) if f.name in d}
        for k in ("input", "ppm_bins", "effnet_ca_after"):
            if k in kw:
                kw[k] = tuple(kw[k])
        if "effnet_blocks" in kw:
            kw["effnet_blocks"] = tuple(tuple(b) for b in kw["effnet_blocks"])
        return PmspConfig(**kw)


def conv_bn(cin, cout, k, stride=1, groups=1, eps=BN_EPS):
    return nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout, eps=eps)


class CoordAtt(nn.Module):
    """Coordinate Attention (Hou et al., CVPR 2021): pools along W and along H, a shared 1x1 conv +
    BN + h-swish, then a 1x1 conv + sigmoid per direction; out = x * a_h * a_w."""

    def __init__(self, c, mip):
        super().__init__()
        self.conv1 = nn.Conv2d(c, mip, 1)
        self.bn1 = nn.BatchNorm2d(mip, eps=BN_EPS)
        self.conv_h = nn.Conv2d(mip, c, 1)
        self.conv_w = nn.Conv2d(mip, c, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        x_h = F.adaptive_avg_pool2d(x, (h, 1))                      # [N, C, H, 1]
        x_w = F.adaptive_avg_pool2d(x, (1, w)).permute(0, 1, 3, 2)  # [N, C, W, 1]
        y = F.hardswish(self.bn1(self.conv1(torch.cat([x_h, x_w], dim=2))))
        y_h, y_w = torch.split(y, [h, w], dim=2)
        a_h = torch.sigmoid(self.conv_h(y_h))                        # [N, C, H, 1]
        a_w = torch.sigmoid(self.conv_w(y_w.permute(0, 1, 3, 2)))    # [N, C, 1, W]
        return x * a_h * a_w


class Block(nn.Module):
    """Depthwise-separable: dw3x3 + BN + ReLU6, pw1x1 + BN + ReLU6 (no conv biases)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv_dw, self.bn1 = conv_bn(cin, cin, 3, stride, groups=cin)
        self.conv_pw, self.bn2 = conv_bn(cin, cout, 1)

    def forward(self, x):
        x = F.relu6(self.bn1(self.conv_dw(x)))
        return F.relu6(self.bn2(self.conv_pw(x)))


class MBConv(nn.Module):
    """EfficientNet-Lite's inverted residual: 1x1 expand + BN + ReLU6 (when expanding), kxk depthwise
    + BN + ReLU6, 1x1 project + BN; identity skip when the stride is 1 and the width stays.
    Symmetric padding k // 2 (lukemelas pads like TF's SAME; fine-tuning absorbs the one-pixel
    shift of stride-2 layers, and the engine pads symmetrically too)."""

    def __init__(self, cin, e, k, s, cout):
        super().__init__()
        mid = cin * e
        self.expand = e != 1
        if self.expand:
            self._expand_conv, self._bn0 = conv_bn(cin, mid, 1, eps=EFFNET_BN_EPS)
        self._depthwise_conv, self._bn1 = conv_bn(mid, mid, k, s, groups=mid, eps=EFFNET_BN_EPS)
        self._project_conv, self._bn2 = conv_bn(mid, cout, 1, eps=EFFNET_BN_EPS)
        self.skip = s == 1 and cin == cout

    def forward(self, x):
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EffNetStream(nn.Module):
    """EfficientNet-Lite0 (to 1/32, 320 channels, before its 1x1 head) with Coordinate Attention
    after its 1/8, 1/16 and 1/32 stages; keys `_conv_stem`, `_bn0`, `_blocks.{i}.*` as the
    ImageNet-pretrained file has them."""

    def __init__(self, cfg: PmspConfig):
        super().__init__()
        self._conv_stem, self._bn0 = conv_bn(3, 32, 3, 2, eps=EFFNET_BN_EPS)
        cin, blocks = 32, []
        for e, k, s, o in cfg.blocks():
            blocks.append(MBConv(cin, e, k, s, o))
            cin = o
        self._blocks = nn.ModuleList(blocks)
        self.ca_after = cfg.ca_after()
        for i, f in self.ca_after.items():
            c = cfg.blocks()[i][3]
            setattr(self, f"ca{f}", CoordAtt(c, cfg.mip(c)))

    def forward(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for i, b in enumerate(self._blocks):
            x = b(x)
            if i in self.ca_after:
                x = getattr(self, f"ca{self.ca_after[i]}")(x)
        return x


def load_pretrained_effnet(stream: EffNetStream, state_dict):
    """ImageNet EfficientNet-Lite0 weights (lukemelas names) into a stream; returns the keys
    that had no place (the 1x1 head and the classifier)."""
    own = stream.state_dict()
    take = {k: v for k, v in state_dict.items() if k in own and own[k].shape == v.shape}
    stream.load_state_dict(take, strict=False)
    return sorted(set(state_dict) - set(take))


class Stream(nn.Module):
    """MobileNetV1 (to F5, 1/32) with Coordinate Attention after F3, F4 and F5."""

    def __init__(self, cfg: PmspConfig):
        super().__init__()
        ch = cfg.channels()
        self.conv_stem, self.bn1 = conv_bn(3, cfg.stem(), 3, 2)
        cin = cfg.stem()
        blocks = []
        for (_, s), c in zip(MOBILENET_V1, ch):
            blocks.append(Block(cin, c, s))
            cin = c
        self.blocks = nn.ModuleList(blocks)
        for i, f in CA_AFTER.items():
            setattr(self, f"ca{f}", CoordAtt(ch[i], cfg.mip(ch[i])))

    def forward(self, x):
        x = F.relu6(self.bn1(self.conv_stem(x)))
        for i, b in enumerate(self.blocks):
            x = b(x)
            if i in CA_AFTER:
                x = getattr(self, f"ca{CA_AFTER[i]}")(x)
        return x


class PpmBranch(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)


class Head(nn.Module):
    def __init__(self, cin, mid):
        super().__init__()
        self.conv = nn.Conv2d(cin, mid, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(mid, eps=BN_EPS)
        self.cls = nn.Conv2d(mid, 2, 1)


class Pmsp(nn.Module):
    def __init__(self, cfg: PmspConfig):
        super().__init__()
        self.cfg = cfg
        make = EffNetStream if cfg.backbone == "efficientnet_lite0" else Stream
        self.rgb = make(cfg)
        self.ela = make(cfg)
        c5, pd = cfg.c5(), cfg.ppm_width()
        self.ppm = nn.ModuleList([PpmBranch(c5, pd) for _ in cfg.ppm_bins])
        self.head = Head(c5 + pd * len(cfg.ppm_bins), cfg.head_width())

    def forward(self, rgb, ela):
        out = {}
        out["rgb_f5"] = f_rgb = self.rgb(rgb)
        out["ela_view"] = torch.clamp(ela.mean(1, keepdim=True) * self.cfg.ela_scale, 0, 1)
        out["ela_f5"] = f_ela = self.ela(ela * self.cfg.ela_scale)
        out["fused"] = f = f_rgb + f_ela
        h, w = f.shape[2:]
        parts = [f]
        for b, br in zip(self.cfg.ppm_bins, self.ppm):
            p = F.relu(br.bn(br.conv(F.adaptive_avg_pool2d(f, b))))
            parts.append(F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False))
        out["ppm"] = x = torch.cat(parts, dim=1)
        out["head"] = x = F.relu(self.head.bn(self.head.conv(x)))
        out["logits"] = x = self.head.cls(x)
        out["logits_up"] = x = F.interpolate(x, size=tuple(rgb.shape[2:]), mode="bilinear", align_corners=False)
        out["prob"] = torch.softmax(x, dim=1)[:, 1:2]
        e, r = (f_ela * f_ela).sum(1, keepdim=True), (f_rgb * f_rgb).sum(1, keepdim=True)
        out["ela_share"] = e / (e + r + 1e-12)
        return out


def expected_counts(cfg: PmspConfig):
    """(keys, parameters) of a state_dict, BN buffers included, num_batches_tracked excluded."""
    sd = Pmsp(cfg).state_dict()
    keys = [k for k in sd if not k.endswith("num_batches_tracked")]
    return len(keys), sum(sd[k].numel() for k in keys)


def randomize_bn(model, seed):
    """Non-trivial BN statistics and affine parameters, so folding them is really tested."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = 1 + 0.2 * (torch.rand(n, generator=g) - 0.5)
            m.bias.data = 0.2 * (torch.rand(n, generator=g) - 0.5)
            m.running_mean.data = 0.2 * (torch.rand(n, generator=g) - 0.5)
            m.running_var.data = 0.5 + torch.rand(n, generator=g)


def prepare(img_u8, cfg: PmspConfig, ela_u8=None):
    """The engine's inputs from an RGB uint8 image (H x W x 3): (rgb, ela) float32 NCHW tensors."""
    import cv2

    from ela_ref import ela as ela_of
    h, w = cfg.input
    if ela_u8 is None:
        ela_u8 = ela_of(img_u8, cfg.ela_quality)
    rgb = cv2.resize(img_u8, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    rgb = (rgb - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    e = cv2.resize(ela_u8, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]  # noqa: E731
    return to_t(rgb), to_t(e)



def reference(model, cfg: PmspConfig, img_u8, ela_u8=None):
    """The engine's trip for one RGB uint8 image: inputs by `prepare`, the network, and the map
    resized back to the image (bilinear, align_corners=False). Returns (p at the model's size,
    p at the image's size), both H x W numpy float32."""
    rgb, e = prepare(img_u8, cfg, ela_u8)
    with torch.no_grad():
        p = model(rgb, e)["prob"]
        full = F.interpolate(p, size=img_u8.shape[:2], mode="bilinear", align_corners=False)
    return p[0, 0].numpy(), full[0, 0].numpy()

def selftest():
    full = PmspConfig()
    n, p = expected_counts(full)
    print(f"PMSP width 1.0: {n} keys, {p:,} parameters (BN running stats included)")
    eff = PmspConfig(backbone="efficientnet_lite0")
    n, p = expected_counts(eff)
    print(f"PMSP on EfficientNet-Lite0: {n} keys, {p:,} parameters (BN running stats included)")
    small = PmspConfig(width=0.25, input=(64, 96))
    m = Pmsp(small).eval()
    randomize_bn(m, 1)
    x = torch.randn(1, 3, 64, 96)
    e = torch.rand(1, 3, 64, 96) * 40
    with torch.no_grad():
        out = m(x, e)
    assert out["prob"].shape == (1, 1, 64, 96) and out["rgb_f5"].shape[2:] == (2, 3)
    assert torch.all((out["prob"] >= 0) & (out["prob"] <= 1))
    assert torch.all((out["ela_share"] >= 0) & (out["ela_share"] <= 1))
    print("width 0.25 at 64x96:", {k: tuple(v.shape) for k, v in out.items()})


if __name__ == "__main__":
    import argparse
    import sys
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--selftest", action="store_true")
    a = ap.parse_args()
    if a.selftest:
        sys.path.insert(0, __file__.rsplit("/", 1)[0])
        selftest()
