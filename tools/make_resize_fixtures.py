#!/usr/bin/env python3
"""Generate the bit-exactness fixtures for `preprocess::resize_bilinear_u8_cv`.

Each case is a deterministic pseudo-random uint8 image (the generator below is re-implemented in
the Rust test, so inputs are never stored), resized with cv2.resize(..., INTER_LINEAR). Outputs are
stored either in full (raw bytes, HWC order) or, for large outputs, as one 64-bit FNV-1a hash per
output row, so a mismatch still says how many rows differ.

Files written to tests/fixtures/resize/:
  manifest.txt   header lines starting with '#' (cv2 and numpy versions), then one line per case:
                 `<name> <sw> <sh> <cn> <dw> <dh> <seed> <full|rowhash> <file>`
  <name>.bin     `full`: dh*dw*cn output bytes; `rowhash`: dh little-endian u64 row hashes

Usage: python3 tools/make_resize_fixtures.py [out_dir]   (needs opencv-python-headless, numpy)
"""
import os
import sys

import cv2
import numpy as np

M64 = (1 << 64) - 1


def gen_bytes(seed: int, n: int) -> np.ndarray:
    """Counter-based generator: byte i = mix((seed << 40) ^ i). Same in the Rust test."""
    x = (np.uint64(seed) << np.uint64(40)) ^ np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = x * np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(29)
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(32)
    return ((x >> np.uint64(24)) & np.uint64(0xFF)).astype(np.uint8)


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def row_hashes(out: np.ndarray) -> bytes:
    # FNV over each row; vectorised over rows to keep generation fast.
    rows = out.reshape(out.shape[0], -1).astype(np.uint64)
    h = np.full(rows.shape[0], 0xCBF29CE484222325, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(rows.shape[1]):
            h = (h ^ rows[:, j]) * np.uint64(0x100000001B3)
    return h.astype("<u8").tobytes()


# (sw, sh, cn, dw, dh); sizes are width x height.
CASES = [
    # the model path: anything -> 512x512 RGB
    (1, 1, 3, 512, 512),
    (3, 2, 3, 512, 512),
    (5, 7, 3, 512, 512),
    (17, 13, 3, 512, 512),
    (37, 100, 3, 512, 512),
    (384, 256, 3, 512, 512),
    (1024, 1024, 3, 512, 512),  # exact 2x: area path
    (700, 1000, 3, 512, 512),
    (1000, 700, 3, 512, 512),
    (511, 513, 3, 512, 512),
    (513, 511, 3, 512, 512),
    (1200, 300, 3, 512, 512),
    (512, 512, 3, 512, 512),  # identity
    (1024, 1000, 3, 512, 512),  # 2x on one axis only: bilinear path
    (1025, 1024, 3, 512, 512),
    (1536, 1536, 3, 512, 512),  # 3x
    (2048, 1536, 3, 512, 512),  # 4x / 3x
    (3000, 2000, 3, 512, 512),
    (1024, 1024, 1, 512, 512),
    (640, 480, 4, 512, 512),
    # other targets
    (100, 37, 3, 5, 7),
    (100, 37, 3, 3, 1),
    (20, 20, 3, 7, 3),
    (20, 20, 3, 9, 2),
    (50, 50, 3, 11, 13),
    (640, 480, 3, 320, 241),
    (640, 480, 3, 224, 224),
    (13, 17, 3, 100, 200),
    (10, 10, 3, 1, 1),
    (9, 9, 3, 6, 6),
    (8, 8, 3, 5, 5),
    (8, 8, 3, 4, 4),  # exact 2x
    (8, 6, 3, 4, 3),  # exact 2x
    (9, 8, 3, 4, 4),  # not 2x in x
    (3, 3, 3, 4, 4),
    (1, 1, 3, 5, 3),
    (7, 1, 3, 3, 3),
    (1, 7, 3, 3, 5),
    (2, 2, 1, 4, 4),
    (33, 33, 1, 3, 5),
    (31, 29, 4, 17, 11),
    (256, 256, 3, 1024, 768),
    (300, 200, 1, 150, 99),
]

FULL_LIMIT = 64 * 1024
ALWAYS_FULL = {(1000, 700, 3, 512, 512), (1024, 1024, 3, 512, 512)}


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "fixtures", "resize")
    os.makedirs(out_dir, exist_ok=True)
    lines = [
        f"# cv2 {cv2.__version__} numpy {np.__version__}: cv2.resize(src, (dw, dh), interpolation=cv2.INTER_LINEAR)",
        "# generator: byte i = mix((seed << 40) ^ i), see tools/make_resize_fixtures.py",
        "# name sw sh cn dw dh seed kind file",
    ]
    for k, (sw, sh, cn, dw, dh) in enumerate(CASES):
        seed = 1000 + k
        src = gen_bytes(seed, sh * sw * cn).reshape(sh, sw, cn)
        img = src[:, :, 0] if cn == 1 else src
        out = cv2.resize(img, (dw, dh), interpolation=cv2.INTER_LINEAR)
        out = np.ascontiguousarray(out).reshape(dh, dw, cn)
        name = f"c{k:02d}_{sw}x{sh}x{cn}_to_{dw}x{dh}"
        full = out.nbytes <= FULL_LIMIT or (sw, sh, cn, dw, dh) in ALWAYS_FULL
        kind = "full" if full else "rowhash"
        payload = out.tobytes() if full else row_hashes(out)
        with open(os.path.join(out_dir, name + ".bin"), "wb") as f:
            f.write(payload)
        lines.append(f"{name} {sw} {sh} {cn} {dw} {dh} {seed} {kind} {name}.bin")
    with open(os.path.join(out_dir, "manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    # self-check of the row hash against the plain definition on one small output
    probe = cv2.resize(gen_bytes(7, 5 * 4 * 3).reshape(4, 5, 3), (3, 2), interpolation=cv2.INTER_LINEAR)
    assert row_hashes(probe)[:8] == fnv1a64(probe[0].tobytes()).to_bytes(8, "little")
    print(f"wrote {len(CASES)} cases to {out_dir} with cv2 {cv2.__version__}")


if __name__ == "__main__":
    main()
