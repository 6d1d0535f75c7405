"""Error Level Analysis exactly as the engine computes it (`src/ops/ela.rs`), in numpy.

The engine's JPEG round trip follows libjpeg's baseline path with a float DCT (see
docs/detectors.md); this is the same arithmetic in the same order, in float32 where the engine uses
f32 and in integers where it uses integers, so the training data of a model with an ELA stream sees
exactly what `wgpu-forge` feeds it. `tests/fixtures/ela_ref/` (made by `--fixtures`) holds images
and this module's ELA of them; `cargo test` checks the engine against them bit for bit.

    from ela_ref import ela                       # uint8 H x W x 3 RGB -> uint8 H x W x 3 levels
    python3 tools/ela_ref.py --fixtures           # rewrite tests/fixtures/ela_ref/
"""

import argparse
import json
import os

import numpy as np

LUMA_BASE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29,
    51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120,
    101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.int64)
CHROMA_BASE = np.array([17, 18, 24, 47] + [99] * 4 + [18, 21, 26, 66] + [99] * 4 + [24, 26, 56] + [99] * 5
                       + [47, 66] + [99] * 38, dtype=np.int64)
assert CHROMA_BASE.size == 64


def quant_table(base, quality):
    """IJG quality scaling with force_baseline, integer math."""
    q = min(max(int(quality), 1), 100)
    s = 5000 // q if q < 50 else 200 - 2 * q
    return np.clip((base * s + 50) // 100, 1, 255)


def dct8():
    """m[k, n] = c(k)/2 cos((2n+1) k pi / 16), in float64, rounded to float32."""
    k = np.arange(8)[:, None]
    n = np.arange(8)[None, :]
    c = np.where(k == 0, 1 / np.sqrt(2), 1.0)
    return (c / 2 * np.cos((2 * n + 1) * k * np.pi / 16)).astype(np.float32)


def pass8(m, src, inverse):
    """One separable pass over the rows of every block, stored transposed:
    out[b, k, r] = sum_i t(k, i) src[b, r, i], summed in float32 from i = 0."""
    t = m.T if inverse else m
    acc = np.zeros(src.shape, dtype=np.float32)
    for i in range(8):
        acc = acc + t[None, :, i, None] * src[:, None, :, i]
    return acc


def roundtrip_blocks(blocks, m, q):
    """Round trip [nb, 8, 8] float32 blocks of u8 levels."""
    coef = pass8(m, pass8(m, blocks - np.float32(128), False), False)
    recip = (1.0 / q.astype(np.float64)).astype(np.float32).reshape(8, 8)
    qf = q.astype(np.float32).reshape(8, 8)
    deq = np.floor(coef * recip + np.float32(0.5)) * qf
    out = pass8(m, pass8(m, deq.astype(np.float32), True), True)
    return np.clip(np.floor(out + np.float32(128.5)), 0, 255).astype(np.float32)


def roundtrip_plane(p, m, q):
    rows, cols = p.shape
    b = p.reshape(rows // 8, 8, cols // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
    b = roundtrip_blocks(b, m, q)
    return b.reshape(rows // 8, cols // 8, 8, 8).transpose(0, 2, 1, 3).reshape(rows, cols)


def jpeg_roundtrip(rgb, quality=90):
    """uint8 H x W x 3 -> the engine's decoded JPEG, uint8 H x W x 3."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    hp, wp = -(-h // 16) * 16, -(-w // 16) * 16
    hc, wc = hp // 2, wp // 2
    dh, dw = -(-h // 2), -(-w // 2)
    # Pad by repeating the last row and column.
    ys = np.minimum(np.arange(hp), h - 1)
    xs = np.minimum(np.arange(wp), w - 1)
    px = rgb[ys][:, xs].astype(np.int64)
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    y = (19595 * r + 38470 * g + 7471 * b + 32768) >> 16
    cb = (-11059 * r - 21709 * g + 32768 * b + (128 << 16) + 32767) >> 16
    cr = (32768 * r - 27439 * g - 5329 * b + (128 << 16) + 32767) >> 16
    # 4:2:0: chroma rows past the last downsampled row repeat it.
    ri = np.minimum(np.arange(hc), dh - 1)
    bias = 1 + (np.arange(wc) % 2)

    def down(c):
        s = c[2 * ri][:, 0::2] + c[2 * ri][:, 1::2] + c[2 * ri + 1][:, 0::2] + c[2 * ri + 1][:, 1::2]
        return ((s + bias[None, :]) >> 2).astype(np.float32)

    m = dct8()
    ql, qc = quant_table(LUMA_BASE, quality), quant_table(CHROMA_BASE, quality)
    lum = roundtrip_plane(y.astype(np.float32), m, ql)
    chroma = [roundtrip_plane(down(cb), m, qc), roundtrip_plane(down(cr), m, qc)]
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")

    def upsample(c):
        c = c.astype(np.int64)
        i, j = yy // 2, xx // 2
        if dw <= 2:
            return c[i, j]
        other = np.where(yy % 2 == 0, np.maximum(i - 1, 0), np.minimum(i + 1, dh - 1))

        def colsum(jj):
            return 3 * c[i, jj] + c[other, jj]

        even = (3 * colsum(j) + colsum(np.maximum(j - 1, 0)) + 8) >> 4
        odd = (3 * colsum(j) + colsum(np.minimum(j + 1, dw - 1)) + 7) >> 4
        return np.where(xx % 2 == 0, even, odd)

    cbu, cru = upsample(chroma[0]) - 128, upsample(chroma[1]) - 128
    yl = lum[:h, :w].astype(np.int64)
    out_r = yl + ((91881 * cru + 32768) >> 16)
    out_g = yl + ((-22554 * cbu + 32768 - 46802 * cru) >> 16)
    out_b = yl + ((116130 * cbu + 32768) >> 16)
    return np.clip(np.stack([out_r, out_g, out_b], -1), 0, 255).astype(np.uint8)


def ela(rgb, quality=90):
    """|rgb - jpeg(rgb)| per channel, uint8 H x W x 3."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    return np.abs(rgb.astype(np.int16) - jpeg_roundtrip(rgb, quality).astype(np.int16)).astype(np.uint8)


def write_fixtures(out_dir):
    """Random and smooth images of awkward sizes, raw RGB and their ELA, with a manifest."""
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(20261129)
    cases = []
    for i, (h, w, q, kind) in enumerate([(37, 29, 90, "noisy"), (1, 1, 90, "noisy"), (3, 5, 90, "smooth"),
                                         (16, 16, 90, "smooth"), (40, 17, 75, "noisy"), (33, 70, 95, "smooth"),
                                         (64, 48, 90, "splice"), (2, 9, 50, "noisy")]):
        if kind == "noisy":
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        else:
            yy, xx = np.mgrid[0:h, 0:w]
            base = np.stack([40 + 3 * xx + yy, 90 + 2 * yy, 200 - xx - yy], -1).astype(np.float64)
            img = np.clip(base + rng.normal(0, 2 if kind == "smooth" else 1, (h, w, 3)), 0, 255).astype(np.uint8)
            if kind == "splice":
                img[10:40, 8:30] = rng.integers(0, 256, (30, 22, 3), dtype=np.uint8)
        name = f"e{i:02d}_{h}x{w}_q{q}"
        img.tofile(os.path.join(out_dir, name + ".rgb"))
        ela(img, q).tofile(os.path.join(out_dir, name + ".ela"))
        cases.append({"name": name, "h": h, "w": w, "quality": q})
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump({"made_by": "tools/ela_ref.py --fixtures", "numpy": np.__version__, "cases": cases}, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", action="store_true", help="rewrite tests/fixtures/ela_ref/")
    a = ap.parse_args()
    if a.fixtures:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        write_fixtures(os.path.join(root, "tests", "fixtures", "ela_ref"))


if __name__ == "__main__":
    main()
