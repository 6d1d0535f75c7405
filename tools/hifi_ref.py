"""hifi: the hierarchical coarse / mid / fine forgery localizer of ../shared/specs/hifi.md (the
source, ../shared/seeds/000_*.txt, describes it in words only; no code exists) as our own PyTorch
reference. Every choice the source leaves open is a field of `HifiConfig`, written down in
docs/models/hifi.md. Every op is one the engine has: conv2d (dense, strided, dilated), BatchNorm
(folded into the conv at load), ReLU, average pooling (fixed window and global), bilinear resize
(align_corners=False), sigmoid, softmax over channels, broadcast add, mul, sum.

Three branches over one ImageNet-normalized N x 3 x H x W image (H, W multiples of
`cfg.multiple()`: coarse_pool * 2 ** len(coarse_dims), 32 by default):
- coarse (s=1): AvgPool(coarse_pool), then stages of a stride-2 conv3x3 + (depth - 1) conv3x3,
  a global context (global average pool -> 1x1 conv + bias -> ReLU, added to every position), a
  conv3x3 head and a 1x1 conv to a logit at H/32.
- mid (s=2): a stride-2 conv3x3 stem to H/2, residual blocks (conv3x3-BN-ReLU-conv3x3-BN, +
  identity, ReLU; dilation d in both convs) over `mid_dilations`, a 1x1 conv to a logit at H/2.
- fine (s=3): a conv3x3 stem at H, residual blocks of two dilated conv3x3 (dilation d each) over
  `fine_dilations`, a 1x1 conv to a logit at H.
Each logit is resized bilinearly (align_corners=False) to H x W, then P_s = sigmoid(logit_s).

Fusions (both from one set of weights):
- product: p = P_coarse * P_mid * P_fine (the source's formula);
- learned: a gate (conv3x3-BN-ReLU, conv3x3-BN-ReLU, 1x1 conv -> 3 channels, softmax over them) over
  the three logits at H x W concatenated with the fine branch's features gives per-pixel weights
  w_s (sum 1); p = sum_s w_s P_s (Mesorch's adaptive weighting, on probabilities).
`logit_learned` / `logit_product` are log p - log(1 - p) computed stably in log space (training
only; the engine computes `prob` directly).

Output dict: `coarse_pool`, `coarse_feat` (after the stages), `coarse_ctx` (after the context add),
`coarse_head`, `mid_stem`, `mid_feat`, `fine_stem`, `fine_feat`, `gate_hidden`, `gate_logits`
(before softmax); `logit_coarse_lo` (H/32), `logit_mid_lo` (H/2); `logit_coarse`, `logit_mid`,
`logit_fine`, `p_coarse`, `p_mid`, `p_fine`, `gate` (N x 3 x H x W, order coarse, mid, fine) at
H x W; `prob_product`, `prob_learned`, `logit_product`, `logit_learned`, and `prob` / `logit` (the
chosen fusion).

Checkpoint keys: `coarse.stages.{i}.{j}.{conv,bn}`, `coarse.ctx` (1x1, bias), `coarse.head.{conv,bn}`,
`coarse.logit` (1x1, bias); `mid.stem.{conv,bn}`, `mid.blocks.{i}.{conv1,bn1,conv2,bn2}`, `mid.logit`;
`fine.stem.{conv,bn}`, `fine.blocks.{i}.{conv1,bn1,conv2,bn2}`, `fine.logit`; `gate.conv1`, `gate.bn1`,
`gate.conv2`, `gate.bn2`, `gate.out` (1x1, bias). Convs before a BN have no bias.

    python3 tools/hifi_ref.py --selftest      # parameters and FLOPs per branch at 512x512, shapes
"""

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

BN_EPS = 1e-5
SCALES = ("coarse", "mid", "fine")
FUSIONS = ("learned", "product")


def rounded(c, width):
    """Channels at a width multiplier: multiples of 8 (at least 8)."""
    return max(8, int(c * width + 4) // 8 * 8)


@dataclasses.dataclass(frozen=True)
class HifiConfig:
    width: float = 1.0                # multiplies every channel count below (rounded to multiples of 8)
    input: tuple = (512, 512)         # [H, W] the engine resizes to; multiples of multiple()
    coarse_pool: int = 4              # the coarse branch's first op: AvgPool(k, stride k)
    coarse_dims: tuple = (48, 96, 192)  # one stride-2 stage each (after the pool: H/8, H/16, H/32)
    coarse_depth: tuple = (1, 2, 2)   # conv3x3s per stage (the first one strided)
    coarse_head: int = 96             # the conv3x3 head before the logit
    mid_dim: int = 32
    mid_dilations: tuple = (1, 2, 4, 8)  # one residual block (two dilated conv3x3) per entry, at H/2
    fine_dim: int = 16
    fine_dilations: tuple = (1, 2, 4, 8)  # one residual block (two dilated conv3x3) per entry
    gate_dim: int = 16
    gate_fine_feats: bool = True      # the gate sees the fine features besides the three logits
    fusion: str = "learned"           # the default fusion (`forward(fusion=...)` overrides it)

    def c(self, n):
        return rounded(n, self.width)

    def multiple(self):
        return self.coarse_pool * 2 ** len(self.coarse_dims)

    def to_json(self):
        d = dataclasses.asdict(self)
        for k in ("input", "coarse_dims", "coarse_depth", "mid_dilations", "fine_dilations"):
            d[k] = list(d[k])
        return d

    @staticmethod
    def from_json(d):
        kw = {f.name: d[f.name] for f in dataclasses.fields(HifiConfig) if f.name in d}
        for k in ("input", "coarse_dims", "coarse_depth", "mid_dilations", "fine_dilations"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return HifiConfig(**kw)


def from_engine_json(d, input_size):
    """The HifiConfig of a file written by `wgpu-forge convert` (metadata `config`: the engine's
    channel counts, not the reference's pre-width dims) at `input_size` [H, W]; width 1.0 gives
    the counts back unchanged (they are multiples of 8)."""
    return HifiConfig(width=1.0, input=tuple(input_size), coarse_pool=d["coarse_pool"],
                      coarse_dims=tuple(d["coarse_channels"]), coarse_depth=tuple(d["coarse_depth"]),
                      coarse_head=d["coarse_head"], mid_dim=d["mid_channels"],
                      mid_dilations=tuple(d["mid_dilations"]), fine_dim=d["fine_channels"],
                      fine_dilations=tuple(d["fine_dilations"]), gate_dim=d["gate_channels"],
                      gate_fine_feats=d["gate_fine_feats"], fusion=d["fusion"])


# The compact config (CPU-trainable, ~1 M parameters) is the default; LARGE doubles every width
# (the source gives no sizes: "paper-size" here means a larger model of the same shape, ~4x the
# FLOPs and parameters).
COMPACT = {}
LARGE = dict(width=2.0)


class ConvBN(nn.Module):
    def __init__(self, cin, cout, stride=1, dilation=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, dilation, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class ResBlock(nn.Module):
    """conv3x3(d)-BN-ReLU-conv3x3(d)-BN, + x, ReLU."""

    def __init__(self, c, dilation=1):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, 1, dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(c, eps=BN_EPS)
        self.conv2 = nn.Conv2d(c, c, 3, 1, dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(c, eps=BN_EPS)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(y)))


class Coarse(nn.Module):
    def __init__(self, cfg: HifiConfig):
        super().__init__()
        self.pool = nn.AvgPool2d(cfg.coarse_pool, cfg.coarse_pool)
        stages, cin = [], 3
        for d, depth in zip(cfg.coarse_dims, cfg.coarse_depth):
            c = cfg.c(d)
            stages.append(nn.Sequential(*[ConvBN(cin if j == 0 else c, c, 2 if j == 0 else 1) for j in range(depth)]))
            cin = c
        self.stages = nn.ModuleList(stages)
        self.ctx = nn.Conv2d(cin, cin, 1)
        self.head = ConvBN(cin, cfg.c(cfg.coarse_head))
        self.logit = nn.Conv2d(cfg.c(cfg.coarse_head), 1, 1)

    def forward(self, x, out):
        x = out["coarse_pool"] = self.pool(x)
        for s in self.stages:
            x = s(x)
        out["coarse_feat"] = x
        x = out["coarse_ctx"] = x + F.relu(self.ctx(F.adaptive_avg_pool2d(x, 1)))
        x = out["coarse_head"] = self.head(x)
        return self.logit(x)


class Mid(nn.Module):
    def __init__(self, cfg: HifiConfig):
        super().__init__()
        c = cfg.c(cfg.mid_dim)
        self.stem = ConvBN(3, c, 2)
        self.blocks = nn.ModuleList([ResBlock(c, d) for d in cfg.mid_dilations])
        self.logit = nn.Conv2d(c, 1, 1)

    def forward(self, x, out):
        x = out["mid_stem"] = self.stem(x)
        for b in self.blocks:
            x = b(x)
        out["mid_feat"] = x
        return self.logit(x)


class Fine(nn.Module):
    def __init__(self, cfg: HifiConfig):
        super().__init__()
        c = cfg.c(cfg.fine_dim)
        self.stem = ConvBN(3, c)
        self.blocks = nn.ModuleList([ResBlock(c, d) for d in cfg.fine_dilations])
        self.logit = nn.Conv2d(c, 1, 1)

    def forward(self, x, out):
        x = out["fine_stem"] = self.stem(x)
        for b in self.blocks:
            x = b(x)
        out["fine_feat"] = x
        return self.logit(x)


class Gate(nn.Module):
    """Per-pixel softmax weights over the three scales from their logits (and the fine features)."""

    def __init__(self, cfg: HifiConfig):
        super().__init__()
        g = cfg.c(cfg.gate_dim)
        cin = 3 + (cfg.c(cfg.fine_dim) if cfg.gate_fine_feats else 0)
        self.conv1 = nn.Conv2d(cin, g, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(g, eps=BN_EPS)
        self.conv2 = nn.Conv2d(g, g, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(g, eps=BN_EPS)
        self.out = nn.Conv2d(g, 3, 1)
        nn.init.zeros_(self.out.weight)   # starts at equal weights (1/3 each)
        nn.init.zeros_(self.out.bias)

    def forward(self, x, out):
        y = F.relu(self.bn1(self.conv1(x)))
        y = out["gate_hidden"] = F.relu(self.bn2(self.conv2(y)))
        return self.out(y)


def up(x, size):
    return x if tuple(x.shape[2:]) == tuple(size) else F.interpolate(x, size=size, mode="bilinear",
                                                                     align_corners=False)


def log1mexp(a):
    """log(1 - exp(a)) for a <= 0, stably (Maechler 2012)."""
    a = a.clamp(max=-1e-7)
    return torch.where(a > -0.6931, torch.log(-torch.expm1(a)), torch.log1p(-torch.exp(a)))


class Hifi(nn.Module):
    def __init__(self, cfg: HifiConfig = HifiConfig()):
        super().__init__()
        self.cfg = cfg
        self.coarse = Coarse(cfg)
        self.mid = Mid(cfg)
        self.fine = Fine(cfg)
        self.gate = Gate(cfg)

    def forward(self, x, fusion=None):
        fusion = fusion or self.cfg.fusion
        assert fusion in FUSIONS, fusion
        m = self.cfg.multiple()
        size = tuple(x.shape[2:])
        assert size[0] % m == 0 and size[1] % m == 0, f"input {size} is not a multiple of {m}"
        out = {}
        lc = out["logit_coarse_lo"] = self.coarse(x, out)
        lm = out["logit_mid_lo"] = self.mid(x, out)
        lf = self.fine(x, out)
        logits = torch.cat([up(lc, size), up(lm, size), lf], 1)          # N x 3 x H x W
        for i, s in enumerate(SCALES):
            out[f"logit_{s}"] = logits[:, i:i + 1]
            out[f"p_{s}"] = torch.sigmoid(logits[:, i:i + 1])
        gin = torch.cat([logits, out["fine_feat"]], 1) if self.cfg.gate_fine_feats else logits
        g = out["gate_logits"] = self.gate(gin, out)
        out["gate"] = torch.softmax(g, 1)
        ps = torch.sigmoid(logits)
        out["prob_product"] = ps.prod(1, keepdim=True)
        out["prob_learned"] = (out["gate"] * ps).sum(1, keepdim=True)
        # log p - log(1 - p) in log space: p = sum w P, 1 - p = sum w (1 - P); product: log p = sum log P
        lw = torch.log_softmax(g, 1)
        out["logit_learned"] = (torch.logsumexp(lw + F.logsigmoid(logits), 1, keepdim=True)
                                - torch.logsumexp(lw + F.logsigmoid(-logits), 1, keepdim=True))
        lp = F.logsigmoid(logits).sum(1, keepdim=True)
        out["logit_product"] = lp - log1mexp(lp)
        out["prob"] = out[f"prob_{fusion}"]
        out["logit"] = out[f"logit_{fusion}"]
        return out


# ------------------------------------------------------------------------------------------------
# counting
# ------------------------------------------------------------------------------------------------


def branch_params(model):
    return {b: sum(p.numel() for p in getattr(model, b).parameters()) for b in ("coarse", "mid", "fine", "gate")}


def count_flops(model, size=(512, 512)):
    """FLOPs (2 per multiply-add) per branch of one forward at `size`, by a per-layer counter:
    convolutions (BN folded into them, bias adds included), the coarse pool and the global pool,
    and the elementwise tail (BN-free ReLU/add in blocks are not counted: < 1%). Returns
    {branch: flops}, plus 'resize+fusion' for the three logits' upsampling, sigmoids, softmax and
    both fusions (~10 ops per pixel per scale)."""
    counts, hooks = {}, []
    for name, mod in model.named_modules():
        branch = name.split(".")[0]
        if isinstance(mod, nn.Conv2d):
            def hook(m, i, o, b=branch):
                k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
                counts[b] = counts.get(b, 0) + o.numel() * (2 * k + (1 if m.bias is not None else 0))
        elif isinstance(mod, nn.AvgPool2d):
            def hook(m, i, o, b=branch):
                counts[b] = counts.get(b, 0) + i[0].numel()
        else:
            continue
        hooks.append(mod.register_forward_hook(hook))
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, *size))
    for h in hooks:
        h.remove()
    counts["coarse"] += model.cfg.c(model.cfg.coarse_dims[-1]) * (size[0] // model.cfg.multiple()) ** 2  # GAP
    counts["resize+fusion"] = 3 * 10 * size[0] * size[1]
    return counts


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


def report(name, cfg):
    m = Hifi(cfg)
    bp = branch_params(m)
    fl = count_flops(m, (512, 512))
    tot = sum(fl.values())
    print(f"{name} {cfg.to_json()}")
    print(f"  parameters {sum(bp.values()):,}: " + ", ".join(f"{k} {v:,}" for k, v in bp.items()))
    print(f"  GFLOPs at 512x512 {tot / 1e9:.2f}: "
          + ", ".join(f"{k} {v / 1e9:.3f} ({100 * v / tot:.1f}%)" for k, v in fl.items()))
    return m, fl, tot


def selftest():
    torch.manual_seed(0)
    for name, over in (("compact", COMPACT), ("large", LARGE)):
        _, fl, tot = report(name, HifiConfig(**over))
        assert fl["coarse"] / tot < 0.05, "the coarse branch must cost under 5% of the FLOPs"
    cfg = HifiConfig(input=(64, 96))
    assert HifiConfig.from_json(cfg.to_json()) == cfg
    m = Hifi(cfg).eval()
    randomize_bn(m, 1)
    keys = {k.split(".")[0] for k in m.state_dict()}
    assert keys == {"coarse", "mid", "fine", "gate"}, keys
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        out = m(x)
        outp = m(x, fusion="product")
    for k in ("logit_coarse", "logit_mid", "logit_fine", "p_coarse", "p_mid", "p_fine", "prob", "prob_product",
              "prob_learned", "logit_learned", "logit_product"):
        assert out[k].shape == (2, 1, 64, 96), (k, out[k].shape)
    assert out["gate"].shape == (2, 3, 64, 96)
    assert out["logit_coarse_lo"].shape == (2, 1, 2, 3) and out["logit_mid_lo"].shape == (2, 1, 32, 48)
    assert torch.allclose(out["gate"].sum(1), torch.ones(2, 64, 96), atol=1e-5)
    assert torch.allclose(torch.sigmoid(out["logit_learned"]), out["prob_learned"], atol=1e-5)
    assert torch.allclose(torch.sigmoid(out["logit_product"]), out["prob_product"], atol=1e-5)
    assert torch.equal(outp["prob"], out["prob_product"]) and torch.equal(out["prob"], out["prob_learned"])
    assert torch.all(out["prob_product"] <= out["prob_learned"].max())
    # the stable logits stay finite where the probabilities saturate
    big = torch.tensor([[[[40.0]], [[-40.0]], [[30.0]]]]).reshape(1, 3, 1, 1)
    lp = F.logsigmoid(big).sum(1, keepdim=True)
    assert torch.isfinite(lp - log1mexp(lp)).all()
    print("64x96:", {k: tuple(v.shape) for k, v in out.items()})
    print("selftest ok")


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--selftest", action="store_true")
    a = ap.parse_args()
    if a.selftest:
        selftest()
    else:
        ap.print_help()
