#!/usr/bin/env python3
"""Measurements of a converted hifi file with our PyTorch reference (tools/hifi_ref.py; the engine
matches it within 1e-3 on the shipped file, tests/shipped_weights.rs), for weights/hifi-compact.md.

    python3 tools/hifi_study.py calibrate --weights weights/hifi-compact.safetensors
    python3 tools/hifi_study.py corrupt --weights weights/hifi-compact.safetensors [--every 2]

calibrate: the engine's image score (the map resized bilinearly to the image's size, a box blur 1%
  of the short side wide clipped at the borders, max: ScoreRule::BlurMax 0.01) for both fusions on
  the pristine photos of tools/calibrate.py (WORK/pristine/*; target/calibrate-cm's: 17 photo-pool val
  photos as PNG and 30 synth384 train pristine samples) plus the
  synthetic val set's pristine samples, and on every 2nd forged val sample; thresholds exactly as
  tools/calibrate.py (tampered: <= 5% of pristine above; clean: 5th percentile of forged, capped).
corrupt: the source's robustness claim. On the synthetic val set at its own 384 x 384 (every
  `--every`-th sample), pixel F1 at p > 0.5 (an empty mask scores 0, as the benchmark), best-F1
  over thresholds and pixel AUC (forged only), for both fusions under: clean; the fine branch's map
  replaced by noise (logit ~ N(0, 2^2) per pixel: P_fine uniform-ish); the fine branch's input
  blurred (Gaussian sigma 3) and so its map; the coarse branch's map replaced by noise. The gate
  sees the corrupted logit (as it would in deployment), the fine features stay the fine branch's.
"""
import argparse
import csv
import glob
import json
import math
import os
import sys
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.stats import rankdata

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hifi_ref import up  # noqa: E402
from make_shipped_fixture import load_hifi as load  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], np.float32) * 255
FAR = 0.05


def prepare(rgb, size):
    x = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_LINEAR) if rgb.shape[:2] != tuple(size) else rgb
    return torch.from_numpy(((x.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)[None].copy())


def blur_max(p, frac=0.01):
    """ScoreRule::BlurMax: box of odd side max(3, round(frac * short side)) | 1, clipped at the
    borders and averaged over what is inside, then the max (src/report/score.rs)."""
    h, w = p.shape
    side = max(3, round(min(w, h) * frac)) | 1
    r = side // 2
    sat = np.zeros((h + 1, w + 1))
    sat[1:, 1:] = p.astype(np.float64).cumsum(0).cumsum(1)
    y0 = np.clip(np.arange(h) - r, 0, h)
    y1 = np.clip(np.arange(h) + r + 1, 0, h)
    x0 = np.clip(np.arange(w) - r, 0, w)
    x1 = np.clip(np.arange(w) + r + 1, 0, w)
    s = sat[y1][:, x1] - sat[y0][:, x1] - sat[y1][:, x0] + sat[y0][:, x0]
    return float((s / np.outer(y1 - y0, x1 - x0)).max())


def scores(model, cfg, path):
    rgb = np.array(Image.open(path).convert("RGB"))
    with torch.no_grad():
        out = model(prepare(rgb, cfg.input))
    h, w = rgb.shape[:2]
    res = {}
    for f in ("learned", "product"):
        full = F.interpolate(out[f"prob_{f}"], size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()
        res[f] = blur_max(full)
    return res


def thresholds(pristine, forged):
    p = sorted(pristine)
    k = math.ceil((1 - FAR) * len(p))
    hi = math.ceil(p[k - 1] * 1000 + 1e-9) / 1000
    lo = math.floor(np.percentile(forged, 100 * FAR) * 1000) / 1000
    return min(lo, hi), hi


def auc(neg, pos):
    neg, pos = np.asarray(neg), np.asarray(pos)
    return float(((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg)))


def manifest(synth):
    with open(os.path.join(synth, "manifest.csv"), newline="") as f:
        return list(csv.DictReader(f))


def calibrate(a):
    model, cfg = load(a.weights)
    rows = manifest(a.synth)
    sets = {
        "pristine": sorted(glob.glob(os.path.join(a.work, "pristine", "*")))
        + [os.path.join(a.synth, r["image"]) for r in rows if r["kind"] == "pristine"],
        "forged": [os.path.join(a.synth, r["image"]) for r in rows if r["kind"] != "pristine"][::2],
        "realdev": sorted(glob.glob(os.path.join(a.realdev, "images", "*"))),
    }
    sc, t0 = {}, time.time()
    for name, files in sets.items():
        sc[name] = [scores(model, cfg, p) for p in files]
        print(f"{name}: {len(files)} images ({time.time() - t0:.0f} s)", flush=True)
    result = {}
    for f in ("learned", "product"):
        pr = [s[f] for s in sc["pristine"]]
        fo = [s[f] for s in sc["forged"]]
        rd = [s[f] for s in sc["realdev"]]
        lo, hi = thresholds(pr, fo)
        result[f] = {"tampered_above": hi, "clean_at_or_below": lo, "n_pristine": len(pr), "n_forged": len(fo),
                     "pristine_far": sum(v > hi for v in pr) / len(pr),
                     "forged_tampered": sum(v > hi for v in fo) / len(fo),
                     "realdev_tampered": f"{sum(v > hi for v in rd)}/{len(rd)}", "auc_synth": auc(pr, fo),
                     "realdev_scores": [round(v, 4) for v in rd]}
        print(f, json.dumps(result[f]))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(result, fh, indent=1)


def forward_corrupt(model, x, mode, g):
    """(prob_learned, prob_product) with one scale corrupted (see the module documentation)."""
    out = {}
    size = tuple(x.shape[2:])
    lc = up(model.coarse(x, out), size)
    lm = up(model.mid(x, out), size)
    xf = x
    if mode == "fine_blur":
        xf = torch.from_numpy(cv2.GaussianBlur(x[0].numpy().transpose(1, 2, 0), (0, 0), 3).transpose(2, 0, 1)[None].copy())
    lf = model.fine(xf, out)
    if mode == "fine_noise":
        lf = 2 * torch.randn(lf.shape, generator=g)
    if mode == "coarse_noise":
        lc = 2 * torch.randn(lc.shape, generator=g)
    logits = torch.cat([lc, lm, lf], 1)
    gin = torch.cat([logits, out["fine_feat"]], 1) if model.cfg.gate_fine_feats else logits
    w = torch.softmax(model.gate(gin, out), 1)
    ps = torch.sigmoid(logits)
    return (w * ps).sum(1)[0].numpy(), ps.prod(1)[0].numpy(), w.mean((2, 3))[0].numpy()


def pixel_metrics(p, m):
    pred = p > 0.5
    tp = float((pred & m).sum())
    f1 = 2 * tp / (pred.sum() + m.sum()) if m.any() else 0.0
    if not m.any():
        return f1, None, None
    order = np.argsort(-p.ravel(), kind="stable")
    mm = m.ravel()[order]
    tps = np.cumsum(mm)
    k = np.arange(1, len(mm) + 1)
    best = float((2 * tps / (k + mm.sum())).max())
    return f1, best, rank_auc(p.ravel(), m.ravel())


def rank_auc(p, m):
    """Pixel ROC AUC, ties counted half (Mann-Whitney with average ranks)."""
    r = rankdata(p)
    npos, nneg = m.sum(), (~m).sum()
    return float((r[m].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def corrupt(a):
    model, cfg = load(a.weights)
    rows = manifest(a.synth)[:: a.every]
    modes = ["clean", "fine_noise", "fine_blur", "coarse_noise"]
    acc = {(m, f): [] for m in modes for f in ("learned", "product")}
    gates = {m: [] for m in modes}
    g = torch.Generator().manual_seed(0)
    t0 = time.time()
    for i, r in enumerate(rows):
        rgb = np.array(Image.open(os.path.join(a.synth, r["image"])).convert("RGB"))
        mask = np.array(Image.open(os.path.join(a.synth, r["mask"])).convert("L")) > 127
        if rgb.shape[:2] != tuple(cfg.input):
            continue
        x = prepare(rgb, cfg.input)
        with torch.no_grad():
            for m in modes:
                pl, pp, gw = forward_corrupt(model, x, m, g)
                acc[(m, "learned")].append(pixel_metrics(pl, mask))
                acc[(m, "product")].append(pixel_metrics(pp, mask))
                gates[m].append(gw)
        if i % 25 == 0:
            print(f"{i}/{len(rows)} ({time.time() - t0:.0f} s)", flush=True)
    res = {}
    for (m, f), v in acc.items():
        f1 = np.mean([x[0] for x in v])
        best = np.mean([x[1] for x in v if x[1] is not None])
        au = np.mean([x[2] for x in v if x[2] is not None])
        res[f"{m}/{f}"] = {"f1": round(float(f1), 4), "best_f1": round(float(best), 4), "auc": round(float(au), 4),
                           "n": len(v)}
    for m in modes:
        res[f"{m}/gate_mean"] = [round(float(v), 3) for v in np.mean(gates[m], 0)]
    for k, v in res.items():
        print(k, v)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(res, fh, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["calibrate", "corrupt"])
    ap.add_argument("--weights", default="weights/hifi-compact.safetensors")
    ap.add_argument("--synth", default="/work/data/synth384/val")
    ap.add_argument("--work", default="target/calibrate-cm", help="tools/calibrate.py's WORK (its pristine/)")
    ap.add_argument("--realdev", default="../shared/data/real-dev")
    ap.add_argument("--every", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    {"calibrate": calibrate, "corrupt": corrupt}[a.cmd](a)


if __name__ == "__main__":
    main()
