#!/usr/bin/env python3
"""Where should a model's ELA input be computed: at the image's own size and then resized with the
image (what the engine does), or on the image already resized to the model's input?

For each image of a folder (a synthetic split, or real-dev), at a model input of S x S, both ELA
images are made (tools/ela_ref.py, the engine's ELA), and each is scored as a detector by itself:
the channel maximum, a 5 x 5 box mean, against the ground truth resized to S x S (area > 0.5):
per-image tie-aware ROC AUC and the best-threshold F1, averaged over images with a tampered
region. More signal in the input a network sees is what the choice is about.

    python3 tools/ela_resize_study.py --data /work/data/synth384/val --size 256
    python3 tools/ela_resize_study.py --data ../shared/data/real-dev --size 256
"""
import argparse
import csv
import json
import os
import sys

import cv2
import numpy as np

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ela_ref import ela  # noqa: E402
from train import auc_tie_aware  # noqa: E402


def score(e):
    return cv2.blur(e.max(axis=2).astype(np.float32), (5, 5))


def best_f1(s, g):
    qs = np.unique(np.quantile(s, np.linspace(0.5, 0.999, 40)))
    best = 0.0
    for t in qs:
        p = s > t
        best = max(best, 2 * float((p & g).sum()) / (float(p.sum()) + float(g.sum()) + 1e-8))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a folder with manifest.csv (image/mask or image_file/mask_file)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--n", type=int, default=0, help="first N images (0 = all)")
    ap.add_argument("--quality", type=int, default=90)
    a = ap.parse_args()
    rows = list(csv.DictReader(open(os.path.join(a.data, "manifest.csv"), newline="")))
    if a.n:
        rows = rows[:a.n]
    res = {"native_then_resize": [], "resize_then_ela": []}
    scale = []
    for r in rows:
        ip, mp = r.get("image") or r["image_file"], r.get("mask") or r["mask_file"]
        im = cv2.cvtColor(cv2.imread(os.path.join(a.data, ip), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        m = cv2.imread(os.path.join(a.data, mp), cv2.IMREAD_GRAYSCALE)
        s = a.size
        g = cv2.resize((m > 127).astype(np.float32), (s, s), interpolation=cv2.INTER_AREA) > 0.5
        if not g.any() or g.all():
            continue
        scale.append(s / max(im.shape[:2]))
        small = cv2.resize(im, (s, s), interpolation=cv2.INTER_LINEAR)
        a_ = cv2.resize(ela(im, a.quality), (s, s), interpolation=cv2.INTER_LINEAR)
        b_ = ela(small, a.quality)
        for k, e in (("native_then_resize", a_), ("resize_then_ela", b_)):
            sc = score(e)
            res[k].append((auc_tie_aware(sc.ravel(), g.ravel()), best_f1(sc, g)))
    out = {"data": a.data, "size": a.size, "images": len(res["native_then_resize"]),
           "mean_downscale": float(np.mean(scale))}
    for k, v in res.items():
        v = np.array(v)
        out[k] = {"auc": round(float(np.nanmean(v[:, 0])), 4), "best_f1": round(float(v[:, 1].mean()), 4)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
