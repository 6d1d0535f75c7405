"""U^2-Net with a multi-scale Transformer at the bottleneck (Qin et al., Front. Artif. Intell. 2025;
distilled in ../shared/specs/u2net-mst.md) as our own PyTorch reference. No official code exists:
the backbone follows the public U^2-Net architecture (written here from its description, with its
state_dict key names), the attention is exactly the engine's `msattn` op (src/ops/msattn.rs, whose
CPU reference `msattn_naive` below mirrors), and every open choice is a field of `U2netMstConfig`
written down in docs/models/u2net-mst.md.

Input: an ImageNet-normalized N x 3 x H x W tensor. Every pool is max 2x2 stride 2 with ceil_mode,
so any H, W works for the backbone; the attention needs every patch size to divide the bottleneck
map (H and W after four ceil-halvings): at 256x256 the bottleneck is 16x16 and patches 16/8/4/2
fit, and e.g. 250 x 500 (bottleneck 16 x 32) works too.

Output dict:
- `stage1`..`stage5`: the encoder stages' outputs (stage5 = the bottleneck map, 1/16);
- `mst_q`, `mst_k`, `mst_v`: the attention's 1x1-conv projections (after the optional positional
  embedding); `mst_attn`: the `msattn` op's output; `mst`: the block's output
  (x + LeakyReLU(BN(conv3x3(mst_attn)))), which feeds the decoder;
- `stage4d`..`stage1d`: the decoder stages' outputs;
- `side1`..`side4`: the side logits (3x3 conv on stage{i}d), bilinearly upsampled to the input size;
- `fuse`: 1x1 conv over cat(side1, side2, side3, side4), the tampering logit at the input size;
- `prob`: sigmoid(fuse), N x 1 x H x W.

Checkpoint keys: U^2-Net's (`stage1.rebnconvin.conv_s1.weight`, `stage1.rebnconvin.bn_s1.*`,
`stage1.rebnconv1..7`, `stage1.rebnconv6d..1d`, ..., `stage5` (RSU-4F), `stage4d`..`stage1d`,
`side1`..`side4`, `outconv`); the transformer's `mst.q`, `mst.k`, `mst.v` (one 1x1 conv each over
all C channels, with bias: head g uses its output channels g*C/G..(g+1)*C/G), `mst.pos` (only when
`pos` is set), `mst.out_conv`, `mst.out_bn`.

    python3 tools/u2net_mst_ref.py --selftest
"""

import dataclasses
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BN_EPS = 1e-5

# The paper's stages at width 1.0: (depth L of the RSU, in, mid, out); L = 0 is RSU-4F. The encoder
# stage i > 1 takes the previous stage's output; the decoder stage i takes cat(upsampled deeper
# output, stage i's output).
ENCODER = [(7, 3, 32, 64), (6, 64, 32, 128), (5, 128, 32, 256), (4, 256, 128, 512), (0, 512, 256, 512)]
DECODER = [(7, 128, 16, 64), (6, 256, 32, 64), (5, 512, 64, 128), (4, 1024, 128, 256)]  # stage1d..stage4d


def make_divisible(v, divisor=8):
    """torchvision's channel rounding for width multipliers."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return new


@dataclasses.dataclass(frozen=True)
class U2netMstConfig:
    width: float = 1.0          # channel multiplier of every stage's mid and out widths (make_divisible(c * width, 8))
    patches: tuple = (16, 8, 4, 2)  # the attention heads' patch sizes (one head per equal channel group); () = no attention
    pos: tuple = ()             # [h, w] of the bottleneck map for a learned positional embedding; () = none (M2TR)
    leaky: float = 0.2          # negative slope of the attention block's output activation (M2TR's LeakyReLU(0.2))

    def ch(self, c):
        return make_divisible(c * self.width) if c != 3 else 3

    def encoder(self):
        """[(L, in, mid, out)] of stage1..stage5 at this width."""
        return [(L, self.ch(i), self.ch(m), self.ch(o)) for L, i, m, o in ENCODER]

    def decoder(self):
        """[(L, in, mid, out)] of stage1d..stage4d at this width; in = deeper out + skip out."""
        enc, out = self.encoder(), []
        dec_out = [self.ch(o) for _, _, _, o in DECODER]
        for i, (L, _, m, _) in enumerate(DECODER):
            deeper = enc[4][3] if i == 3 else dec_out[i + 1]
            out.append((L, deeper + enc[i][3], self.ch(m), dec_out[i]))
        return out

    def bottleneck(self):
        return self.encoder()[4][3]

    def to_json(self):
        d = dataclasses.asdict(self)
        d["patches"], d["pos"] = list(self.patches), list(self.pos)
        return d

    @staticmethod
    def from_json(d):
        kw = {f.name: d[f.name] for f in dataclasses.fields(U2netMstConfig) if f.name in d}
        for k in ("patches", "pos"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return U2netMstConfig(**kw)


# Paper size and the compact, trainable one (docs/models/u2net-mst.md).
FULL = U2netMstConfig()
COMPACT = U2netMstConfig(width=0.375)


class REBNCONV(nn.Module):
    """conv 3x3 (bias, padding = dilation = d) + BN + ReLU; U^2-Net's key names."""

    def __init__(self, cin, cout, d=1):
        super().__init__()
        self.conv_s1 = nn.Conv2d(cin, cout, 3, padding=d, dilation=d)
        self.bn_s1 = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x):
        return F.relu(self.bn_s1(self.conv_s1(x)))


def pool(x):
    return F.max_pool2d(x, 2, 2, ceil_mode=True)


def up_like(x, like):
    return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=False)


class RSU(nn.Module):
    """RSU-L (L = 4..7): rebnconvin, encoder rebnconv1..L (a pool before rebnconv2..L-1, rebnconvL
    dilated 2 without a pool), decoder rebnconv(L-1)d..1d on cat(upsampled deeper, skip); dec1 + hxin."""

    def __init__(self, L, cin, mid, cout):
        super().__init__()
        self.L = L
        self.rebnconvin = REBNCONV(cin, cout)
        self.rebnconv1 = REBNCONV(cout, mid)
        for i in range(2, L):
            setattr(self, f"rebnconv{i}", REBNCONV(mid, mid))
        setattr(self, f"rebnconv{L}", REBNCONV(mid, mid, d=2))
        for i in range(L - 1, 1, -1):
            setattr(self, f"rebnconv{i}d", REBNCONV(2 * mid, mid))
        self.rebnconv1d = REBNCONV(2 * mid, cout)

    def forward(self, x):
        L = self.L
        hxin = self.rebnconvin(x)
        enc = [self.rebnconv1(hxin)]
        for i in range(2, L):
            enc.append(getattr(self, f"rebnconv{i}")(pool(enc[-1])))
        hx = getattr(self, f"rebnconv{L}")(enc[-1])
        hx = getattr(self, f"rebnconv{L - 1}d")(torch.cat([hx, enc[L - 2]], 1))
        for i in range(L - 2, 0, -1):
            hx = getattr(self, f"rebnconv{i}d")(torch.cat([up_like(hx, enc[i - 1]), enc[i - 1]], 1))
        return hx + hxin


class RSU4F(nn.Module):
    """RSU-4F: no pooling; encoder dilations 1, 2, 4, 8, decoder 4, 2, 1; dec1 + hxin."""

    def __init__(self, cin, mid, cout):
        super().__init__()
        self.rebnconvin = REBNCONV(cin, cout)
        self.rebnconv1 = REBNCONV(cout, mid, d=1)
        self.rebnconv2 = REBNCONV(mid, mid, d=2)
        self.rebnconv3 = REBNCONV(mid, mid, d=4)
        self.rebnconv4 = REBNCONV(mid, mid, d=8)
        self.rebnconv3d = REBNCONV(2 * mid, mid, d=4)
        self.rebnconv2d = REBNCONV(2 * mid, mid, d=2)
        self.rebnconv1d = REBNCONV(2 * mid, cout, d=1)

    def forward(self, x):
        hxin = self.rebnconvin(x)
        h1 = self.rebnconv1(hxin)
        h2 = self.rebnconv2(h1)
        h3 = self.rebnconv3(h2)
        h4 = self.rebnconv4(h3)
        h3d = self.rebnconv3d(torch.cat([h4, h3], 1))
        h2d = self.rebnconv2d(torch.cat([h3d, h2], 1))
        return self.rebnconv1d(torch.cat([h2d, h1], 1)) + hxin


def make_stage(L, cin, mid, cout):
    return RSU4F(cin, mid, cout) if L == 0 else RSU(L, cin, mid, cout)


def tokenize(x, p):
    """[N, cg, H, W] -> [N, L, cg*p*p]: token t = ty*(W/p) + tx, element (c*p + dy)*p + dx."""
    n, cg, h, w = x.shape
    return x.reshape(n, cg, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(n, (h // p) * (w // p), cg * p * p)


def untokenize(t, cg, h, w, p):
    n = t.shape[0]
    return t.reshape(n, h // p, w // p, cg, p, p).permute(0, 3, 1, 4, 2, 5).reshape(n, cg, h, w)


def msattn(q, k, v, patches):
    """The engine's `msattn` op: channel group g (C/G channels) is one head whose tokens are the
    p_g x p_g patches; softmax(Q K^T / sqrt(d)) V with d = C/G * p^2, untokenized, heads
    concatenated in group order."""
    n, c, h, w = q.shape
    G = len(patches)
    assert c % G == 0, f"{c} channels do not split into {G} groups"
    cg = c // G
    outs = []
    for g, p in enumerate(patches):
        assert h % p == 0 and w % p == 0, f"H x W = {h} x {w} is not a multiple of group {g}'s patch size {p}"
        sl = slice(g * cg, (g + 1) * cg)
        tq, tk, tv = (tokenize(t[:, sl], p) for t in (q, k, v))
        a = torch.softmax(tq @ tk.transpose(1, 2) / math.sqrt(cg * p * p), dim=-1)
        outs.append(untokenize(a @ tv, cg, h, w, p))
    return torch.cat(outs, 1)


def msattn_naive(q, k, v, patches):
    """Loops over heads, query and key patches in float64, like the Rust op's CPU reference."""
    q, k, v = q.double(), k.double(), v.double()
    n, c, h, w = q.shape
    cg = c // len(patches)
    out = torch.zeros_like(q)
    for b in range(n):
        for g, p in enumerate(patches):
            ch = slice(g * cg, (g + 1) * cg)
            toks = [(ty * p, tx * p) for ty in range(h // p) for tx in range(w // p)]
            for qy, qx in toks:
                qp = q[b, ch, qy:qy + p, qx:qx + p]
                s = torch.stack([(qp * k[b, ch, ky:ky + p, kx:kx + p]).sum() for ky, kx in toks])
                s = torch.softmax(s / math.sqrt(cg * p * p), 0)
                out[b, ch, qy:qy + p, qx:qx + p] = sum(sj * v[b, ch, ky:ky + p, kx:kx + p] for sj, (ky, kx) in zip(s, toks))
    return out


class MST(nn.Module):
    """The multi-scale Transformer block: x (+ pos) -> 1x1-conv q, k, v over all C channels ->
    msattn(patches) -> conv3x3 + BN + LeakyReLU -> + x."""

    def __init__(self, cfg: U2netMstConfig):
        super().__init__()
        c = cfg.bottleneck()
        assert c % len(cfg.patches) == 0, f"bottleneck width {c} does not split into {len(cfg.patches)} heads"
        self.patches, self.leaky = tuple(cfg.patches), cfg.leaky
        self.q, self.k, self.v = nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)
        if cfg.pos:
            self.pos = nn.Parameter(torch.zeros(1, c, *cfg.pos))
            nn.init.trunc_normal_(self.pos, std=0.02)
        else:
            self.pos = None
        self.out_conv = nn.Conv2d(c, c, 3, padding=1)
        self.out_bn = nn.BatchNorm2d(c, eps=BN_EPS)

    def forward(self, x, out):
        xp = x if self.pos is None else x + self.pos
        out["mst_q"], out["mst_k"], out["mst_v"] = q, k, v = self.q(xp), self.k(xp), self.v(xp)
        out["mst_attn"] = a = msattn(q, k, v, self.patches)
        return x + F.leaky_relu(self.out_bn(self.out_conv(a)), self.leaky)


class U2netMst(nn.Module):
    def __init__(self, cfg: U2netMstConfig):
        super().__init__()
        self.cfg = cfg
        for i, (L, cin, mid, cout) in enumerate(cfg.encoder(), 1):
            setattr(self, f"stage{i}", make_stage(L, cin, mid, cout))
        self.mst = MST(cfg) if cfg.patches else None
        for i, (L, cin, mid, cout) in enumerate(cfg.decoder(), 1):
            setattr(self, f"stage{i}d", make_stage(L, cin, mid, cout))
            setattr(self, f"side{i}", nn.Conv2d(cout, 1, 3, padding=1))
        self.outconv = nn.Conv2d(4, 1, 1)

    def forward(self, x):
        out = {}
        hx, skips = x, []
        for i in range(1, 6):
            if i > 1:
                hx = pool(hx)
            out[f"stage{i}"] = hx = getattr(self, f"stage{i}")(hx)
            skips.append(hx)
        if self.mst is not None:
            out["mst"] = hx = self.mst(hx, out)
        for i in range(4, 0, -1):
            skip = skips[i - 1]
            out[f"stage{i}d"] = hx = getattr(self, f"stage{i}d")(torch.cat([up_like(hx, skip), skip], 1))
        for i in range(1, 5):
            s = getattr(self, f"side{i}")(out[f"stage{i}d"])
            out[f"side{i}"] = s if s.shape[2:] == x.shape[2:] else up_like(s, x)
        out["fuse"] = f = self.outconv(torch.cat([out[f"side{i}"] for i in range(1, 5)], 1))
        out["prob"] = torch.sigmoid(f)
        return out


def counts(cfg: U2netMstConfig):
    """(state_dict keys, parameters, values incl. BN running stats), num_batches_tracked excluded."""
    m = U2netMst(cfg)
    sd = m.state_dict()
    keys = [k for k in sd if not k.endswith("num_batches_tracked")]
    return len(keys), sum(p.numel() for p in m.parameters()), sum(sd[k].numel() for k in keys)


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


def selftest():
    torch.manual_seed(0)
    # The attention against the loop reference: patch sizes 1..5, odd channels per group, non-square.
    for c, h, w, patches in [(6, 4, 6, (2, 1)), (9, 6, 12, (3, 1, 2)), (8, 8, 8, (8, 4, 2, 1)), (5, 10, 5, (5,))]:
        q, k, v = (torch.randn(2, c, h, w) * 3 for _ in range(3))
        err = (msattn(q, k, v, patches).double() - msattn_naive(q, k, v, patches)).abs().max().item()
        assert err < 1e-4, (c, h, w, patches, err)
    print("msattn matches the loop reference (4 shapes, 1e-4)")
    # Key names follow U^2-Net's.
    sd = U2netMst(U2netMstConfig(width=0.25)).state_dict()
    for k in ("stage1.rebnconvin.conv_s1.weight", "stage1.rebnconvin.bn_s1.running_var", "stage1.rebnconv7.conv_s1.weight",
              "stage1.rebnconv6d.bn_s1.weight", "stage5.rebnconv4.conv_s1.weight", "stage4d.rebnconv1d.conv_s1.bias",
              "side4.weight", "outconv.weight", "mst.q.weight", "mst.v.bias", "mst.out_conv.weight", "mst.out_bn.running_mean"):
        assert k in sd, k
    for name, cfg in (("full (paper)", FULL), ("compact", COMPACT)):
        n, p, vals = counts(cfg)
        print(f"U2-Net-MST {name}, width {cfg.width}: {n} keys, {p:,} parameters ({vals:,} values with BN "
              f"running stats; f16 ~{vals * 2 / 1e6:.1f} MB); encoder {cfg.encoder()}, decoder {cfg.decoder()}")
    for cfg in (FULL, COMPACT):
        m = U2netMst(cfg).eval()
        randomize_bn(m, 1)
        for h, w in ((256, 256), (250, 500)):
            with torch.no_grad():
                out = m(torch.randn(1, 3, h, w))
            assert out["prob"].shape == (1, 1, h, w) and out["fuse"].shape == (1, 1, h, w)
            assert all(out[f"side{i}"].shape == (1, 1, h, w) for i in range(1, 5))
            assert out["mst"].shape == out["stage5"].shape == out["mst_attn"].shape
            assert torch.all((out["prob"] >= 0) & (out["prob"] <= 1))
            if cfg is COMPACT:
                print(f"compact at {h}x{w}:", {k: tuple(v.shape[1:]) for k, v in out.items()})
    # A size whose bottleneck does not fit patch 16 is refused with a message.
    try:
        U2netMst(COMPACT)(torch.randn(1, 3, 128, 128))
        raise SystemExit("128x128 should be refused (bottleneck 8x8, patch 16)")
    except AssertionError as e:
        print("128x128 refused:", e)
    # With a positional embedding (ties the block to one bottleneck size).
    m = U2netMst(U2netMstConfig(width=0.25, pos=(16, 16))).eval()
    assert "mst.pos" in m.state_dict()
    with torch.no_grad():
        assert m(torch.randn(1, 3, 256, 256))["prob"].shape == (1, 1, 256, 256)
    print("selftest ok")


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--selftest", action="store_true")
    a = ap.parse_args()
    if a.selftest:
        selftest()
