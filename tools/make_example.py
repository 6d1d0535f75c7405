#!/usr/bin/env python3
"""Make the shipped example, examples/spliced.jpg (+ its ground-truth mask), from two CC0 photos in
scikit-image's data folder (Debian package python3-skimage):
- host: coffee.png (CC0, photographer Rachel Michetti, courtesy of Pikolo Espresso Bar);
- donor: chelsea.png (CC0, photographer Stefan van der Walt): the cat's head, scaled, pasted
  through a feathered elliptical mask onto the table, colour-matched a little;
The host is first JPEG-compressed at quality 80 (the camera's JPEG); the edited result is saved at
quality 95 (4:2:0), as editing software does, so the pasted region has been compressed once and
the rest twice: the common case that error level analysis catches. Deterministic.

    python3 tools/make_example.py [--skimage-data DIR]
"""
import argparse
import os

import cv2
import numpy as np

DEFAULT_DATA = "/usr/lib/python3/dist-packages/skimage/data"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skimage-data", default=DEFAULT_DATA)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "examples"))
    a = ap.parse_args()
    host = cv2.imread(os.path.join(a.skimage_data, "coffee.png"), cv2.IMREAD_COLOR)  # 400x600
    # The host starts as a camera JPEG (quality 80), as most photos do.
    ok, buf = cv2.imencode(".jpg", host, [cv2.IMWRITE_JPEG_QUALITY, 80])
    host = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    donor = cv2.imread(os.path.join(a.skimage_data, "chelsea.png"), cv2.IMREAD_COLOR)  # 300x451
    head = donor[20:200, 120:330]  # the cat's head
    head = cv2.resize(head, (126, 108), interpolation=cv2.INTER_AREA)
    h, w = head.shape[:2]
    y0, x0 = 262, 440
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (w // 2, h // 2), (w // 2 - 6, h // 2 - 6), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 3.0)
    region = host[y0:y0 + h, x0:x0 + w].astype(np.float32)
    src = head.astype(np.float32)
    # Nudge the donor's mean colour 30% toward the host's, as splicers do.
    src += 0.3 * (region.mean((0, 1)) - src.mean((0, 1)))
    out = host.copy()
    out[y0:y0 + h, x0:x0 + w] = np.clip(region * (1 - mask[..., None]) + src * mask[..., None] + 0.5, 0, 255).astype(np.uint8)
    gt = np.zeros(host.shape[:2], np.uint8)
    gt[y0:y0 + h, x0:x0 + w] = (mask > 0.5) * 255
    os.makedirs(a.out, exist_ok=True)
    cv2.imwrite(os.path.join(a.out, "spliced.jpg"), out, [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(os.path.join(a.out, "spliced_gt.png"), gt)
    print("wrote", os.path.join(a.out, "spliced.jpg"), "and spliced_gt.png;", int((gt > 0).sum()), "tampered pixels")
    make_cloned(a)
    return 0


def make_cloned(a):
    """examples/cloned.jpg: a copy-move in coffee.png (camera JPEG q80): the spoon's bowl and the
    saucer's rim around it (a disk of radius 48 centred at (300, 270)) copied onto the table at
    the lower left, rotated by 15 degrees, feathered, saved at quality 90. cloned_gt.png marks both
    the source and the copy (255), as a copy-move detector marks them."""
    host = cv2.imread(os.path.join(a.skimage_data, "coffee.png"), cv2.IMREAD_COLOR)  # 400x600
    ok, buf = cv2.imencode(".jpg", host, [cv2.IMWRITE_JPEG_QUALITY, 80])
    host = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    h, w = host.shape[:2]
    (sx, sy), (dx, dy), r, angle = (300, 270), (95, 330), 48, 15.0
    rot = cv2.getRotationMatrix2D((float(sx), float(sy)), angle, 1.0)
    rot[:, 2] += (dx - sx, dy - sy)
    moved = cv2.warpAffine(host, rot, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    disk = np.zeros((h, w), np.float32)
    cv2.circle(disk, (dx, dy), r, 1.0, -1)
    alpha = cv2.GaussianBlur(disk, (0, 0), 1.5)
    out = np.clip(host * (1 - alpha[..., None]) + moved * alpha[..., None] + 0.5, 0, 255).astype(np.uint8)
    gt = np.zeros((h, w), np.uint8)
    cv2.circle(gt, (sx, sy), r, 255, -1)
    gt[alpha > 0.5] = 255
    cv2.imwrite(os.path.join(a.out, "cloned.jpg"), out, [cv2.IMWRITE_JPEG_QUALITY, 90])
    cv2.imwrite(os.path.join(a.out, "cloned_gt.png"), gt)
    print("wrote", os.path.join(a.out, "cloned.jpg"), "and cloned_gt.png;", int((gt > 0).sum()), "marked pixels")


if __name__ == "__main__":
    raise SystemExit(main())
