#!/usr/bin/env python3
"""Region counts and pixel F1 of the cleaned mask for candidate cleaning defaults.

Reads the 8-bit probability images (S.prob.png) that `tools/calibrate.py run` left under
WORK/TAG/{pristine,realdev}/ and cleans them as `wgpu-forge infer` does (p > threshold, opening
with a (2R+1) square, 8-connected regions, regions under the minimum area dropped), for opening
radii R = round(open_frac * short side) and minimum areas min_area_frac * pixels. Prints, per
candidate, the median and maximum region count on the pristine photos and on real-dev, and the mean
pixel F1 on real-dev (the F1 of the mask against the ground truth, 0 for an empty mask, as `eval`).
Real-dev is used to check that F1 does not drop, not to choose.

    python3 tools/cleaning_study.py --tag ela
"""
import argparse
import json
import os

import cv2
import numpy as np


def clean(p, t, open_frac, min_frac):
    h, w = p.shape
    m = (p > t).astype(np.uint8)
    if open_frac > 0:
        r = max(1, round(min(h, w) * open_frac))
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((2 * r + 1,) * 2, np.uint8))
    n, lab, st, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = st[1:, cv2.CC_STAT_AREA] >= max(1, round(min_frac * h * w))
    return keep[lab], int(keep.sum())


def f1(pred, gt):
    tp = (pred & gt).sum()
    fp = (pred & ~gt).sum()
    fn = (~pred & gt).sum()
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="target/calibrate")
    ap.add_argument("--tag", default="ela")
    ap.add_argument("--realdev", default="../shared/data/real-dev")
    ap.add_argument("--threshold", type=float, default=0.5)
    a = ap.parse_args()
    maps = {}
    for s in ("pristine", "realdev"):
        reps = [json.loads(l) for l in open(os.path.join(a.work, a.tag, s + ".jsonl"))]
        maps[s] = [
            (r["file"], cv2.imread(os.path.join(a.work, a.tag, s, r["outputs"]["prob"]), 0).astype(np.float32) / 255)
            for r in reps
        ]
    gts = []
    for f, p in maps["realdev"]:
        stem = os.path.splitext(os.path.basename(f))[0]
        gts.append(cv2.imread(os.path.join(a.realdev, "masks", stem + ".png"), 0) > 127)
    print(f"{a.tag}, threshold {a.threshold}: open_frac min_area_frac | pristine regions median/max | "
          "real-dev regions median/max | real-dev mean pixel F1 | DSC06083 regions")
    for open_frac in (0.0, 0.0025, 0.005, 0.01):
        for min_frac in (0.0, 0.0005, 0.001, 0.002):
            pc = [clean(p, a.threshold, open_frac, min_frac)[1] for _, p in maps["pristine"]]
            rc, fs = [], []
            for (f, p), g in zip(maps["realdev"], gts):
                m, n = clean(p, a.threshold, open_frac, min_frac)
                rc.append(n)
                fs.append(f1(m, g))
            dsc = rc[[os.path.basename(f).startswith("DSC06083") for f, _ in maps["realdev"]].index(True)]
            print(f"{open_frac:>6} {min_frac:>6} | {np.median(pc):>6.0f} {max(pc):>5} | {np.median(rc):>5.0f} "
                  f"{max(rc):>5} | {np.mean(fs):.4f} | {dsc}")


if __name__ == "__main__":
    main()
