#!/usr/bin/env python3
"""ELA fixtures: small RGB images and PIL's (libjpeg-turbo's) JPEG round trip of each, to check the
CPU reference of our round trip (`src/ops/ela.rs`, `jpeg_roundtrip`) against a real libjpeg.

Files in tests/fixtures/ela/: `<name>.png` (the original, lossless) and `<name>_q<Q>.png` (PIL's
decode of the image saved as JPEG at quality Q, subsampling 4:2:0, default DCT = islow, default
fancy upsampling), plus manifest.txt (`# versions`, then `<name> <width> <height> <quality>`).
Usage: python3 tools/make_ela_fixtures.py [out_dir]   (needs pillow, numpy)
"""
import io
import os
import sys

import numpy as np
import PIL
from PIL import Image, features


def image(w: int, h: int, seed: int, noise: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([x / max(w, 1) * 220 + 20, y / max(h, 1) * 200 + 30, (x + y) / (w + h) * 255], axis=-1)
    base[h // 3 : h // 2 + 1, w // 4 : w // 2 + 1] = [250, 30, 60]  # a sharp-edged block
    noise = rng.normal(0, noise, size=base.shape)
    return np.clip(base + noise, 0, 255).round().astype(np.uint8)  # RGB, HWC


# (name, width, height, quality, noise sigma). 37 x 29: odd sizes, fancy upsampling; "odd" has
# strong per-channel noise (many non-zero coefficients, so islow-vs-float flips show), "smooth"
# only mild noise; 3 x 5: downsampled width 2, where libjpeg-turbo replicates instead.
CASES = [
    ("odd37x29", 37, 29, 90, 10.0),
    ("odd37x29", 37, 29, 75, 10.0),
    ("smooth37x29", 37, 29, 90, 1.5),
    ("tiny3x5", 3, 5, 90, 10.0),
]


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "fixtures", "ela")
    os.makedirs(out, exist_ok=True)
    turbo = features.version("libjpeg_turbo") if features.check_feature("libjpeg_turbo") else "no"
    lines = [f"# Pillow {PIL.__version__} libjpeg-turbo {turbo} numpy {np.__version__}: save(JPEG, quality=Q, subsampling=2), reopen, RGB"]
    for name, w, h, q, sigma in CASES:
        rgb = image(w, h, sum(map(ord, name)), sigma)  # same original for every quality of a name
        Image.fromarray(rgb, "RGB").save(os.path.join(out, f"{name}.png"))
        buf = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(buf, "JPEG", quality=q, subsampling=2)
        dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        Image.fromarray(dec, "RGB").save(os.path.join(out, f"{name}_q{q}.png"))
        lines.append(f"{name} {w} {h} {q}")
    with open(os.path.join(out, "manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(CASES)} ELA cases to {out}")


if __name__ == "__main__":
    main()
