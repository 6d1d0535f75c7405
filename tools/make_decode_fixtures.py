#!/usr/bin/env python3
"""JPEG decode fixtures: small JPEGs written by OpenCV and their RGB pixels as decoded by
OpenCV's libjpeg-turbo (the same library PIL uses), to measure how close our decoder comes.

Files in tests/fixtures/decode/: `<name>.jpg` and `<name>.rgb` (raw HWC uint8 RGB), plus
manifest.txt (`# versions`, then `<name> <width> <height>` per line).
Usage: python3 tools/make_decode_fixtures.py [out_dir]   (needs opencv-python-headless, numpy)
"""
import os
import sys

import cv2
import numpy as np


def image(w: int, h: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([x / w * 255, y / h * 255, (x + y) / (w + h) * 255], axis=-1)
    base[h // 3 : h // 2, w // 4 : w // 2] = [250, 30, 60]  # a sharp-edged block
    noise = rng.normal(0, 12, size=base.shape)
    return np.clip(base + noise, 0, 255).astype(np.uint8)  # RGB


CASES = [
    ("q95_420", 64, 48, [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420]),
    ("q75_420_odd", 61, 37, [cv2.IMWRITE_JPEG_QUALITY, 75, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420]),
    ("q90_444", 40, 40, [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]),
    ("q90_422", 50, 30, [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422]),
]


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "fixtures", "decode")
    os.makedirs(out, exist_ok=True)
    lines = [f"# cv2 {cv2.__version__} numpy {np.__version__}: cv2.imencode, then cv2.imdecode(IMREAD_COLOR) -> RGB"]
    for k, (name, w, h, params) in enumerate(CASES):
        rgb = image(w, h, k)
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
        assert ok
        dec = cv2.cvtColor(cv2.imdecode(jpg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        jpg.tofile(os.path.join(out, name + ".jpg"))
        np.ascontiguousarray(dec).tofile(os.path.join(out, name + ".rgb"))
        lines.append(f"{name} {w} {h}")
    with open(os.path.join(out, "manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(CASES)} JPEG cases to {out}")


if __name__ == "__main__":
    main()
