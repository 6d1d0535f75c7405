#!/usr/bin/env python3
"""Calibrate the image score and verdict thresholds of each model on held-out pristine photos.

Sets (nothing here reads /work/shared/heldout; real-dev is only reported, never tuned on):
- pristine: the photo pool's validation photos (split == val in --pool), downscaled (INTER_AREA)
  to at most 1600 px on the long side as tools/synth_forgery.py does, saved as PNG and as JPEG at
  qualities 95, 85 and 75 (PIL, 4:2:0); plus the `pristine` samples of the synthetic validation
  set (--synth, manifest kind == pristine), which carry single/double JPEG and resampling histories;
- forged: the other samples of the synthetic validation set (splice, copymove, inpaint): they set
  the lower ("clean") threshold;
- real-dev: the 7 real forgeries of --realdev, reported only.

For each model it runs the built binary, `wgpu-forge infer --json`, over every set and reads the
`score` of each report (the calibrated score the model's calibration names). Thresholds:
- tampered: the smallest value that at most 5% of the pristine photos exceed (score > t is
  `tampered`): the ceil(0.95 N)-th smallest pristine score, rounded up to 3 decimals;
- clean: the largest value at or below which at most 5% of the synthetic forgeries fall (the
  5th percentile of their scores, rounded down to 3 decimals), capped at the tampered threshold.

    nice python3 tools/calibrate.py prepare            # writes WORK/pristine/*.png|jpg
    nice python3 tools/calibrate.py run --model ela    # or --weights weights/pmsp-mobilenet.safetensors
    python3 tools/calibrate.py table                   # the table for docs/detectors.md

`run --explore` also reads each S.prob.png and prints candidate score definitions (for choosing
one; the binary's own score is what the thresholds come from).
"""
import argparse
import csv
import glob
import json
import math
import os
import subprocess
import sys

import numpy as np

BIN = "target/release/wgpu-forge"
QUALITIES = (95, 85, 75)
MAX_SIDE = 1600
FAR = 0.05


def prepare(a):
    import cv2
    from PIL import Image

    out = os.path.join(a.work, "pristine")
    os.makedirs(out, exist_ok=True)
    n = 0
    with open(a.pool, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["split"] != "val":
                continue
            im = cv2.imread(r["path"], cv2.IMREAD_COLOR)
            im = cv2.cvtColor(im, cv2.COLOR_BGR2RGB)
            h, w = im.shape[:2]
            s = MAX_SIDE / max(h, w)
            if s < 1:
                im = cv2.resize(im, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
            pil = Image.fromarray(im)
            pil.save(os.path.join(out, f"{r['id']}.png"))
            for q in QUALITIES:
                pil.save(os.path.join(out, f"{r['id']}.q{q}.jpg"), quality=q)
            n += 1
    print(f"{n} pool val photos x {1 + len(QUALITIES)} versions in {out}")


def synth_files(synth, pristine, kinds=None):
    with open(os.path.join(synth, "manifest.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    return [os.path.join(synth, r["image"]) for r in rows
            if (r["kind"] == "pristine") == pristine and (pristine or not kinds or r["kind"] in kinds)]


def infer(a, name, files):
    """Reports of `infer --json` over files (cached in WORK/NAME/SET.jsonl)."""
    cache = os.path.join(a.work, a.tag, name + ".jsonl")
    if os.path.exists(cache) and not a.force:
        with open(cache) as f:
            return [json.loads(l) for l in f]
    out = os.path.join(a.work, a.tag, name)
    cmd = ["nice", BIN, "infer", "--json", "--out", out] + model_args(a) + files
    p = subprocess.run(cmd, capture_output=True, text=True)
    reps = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    if len(reps) != len(files):
        sys.exit(f"{name}: {len(reps)} reports for {len(files)} files\n{p.stderr[-3000:]}")
    with open(cache, "w") as f:
        for r in reps:
            f.write(json.dumps(r) + "\n")
    return reps


def model_args(a):
    return (["--model", a.model] if a.model else []) + (["--weights", a.weights] if a.weights else []) + a.extra


def sets(a):
    pristine = sorted(glob.glob(os.path.join(a.work, "pristine", "*")))
    return {
        "pristine": pristine + synth_files(a.synth, True),
        "forged": synth_files(a.synth, False, a.forged_kinds.split(",") if a.forged_kinds else None)[:: a.forged_every],
        "realdev": sorted(glob.glob(os.path.join(a.realdev, "images", "*"))),
    }


def thresholds(pristine, forged):
    p = sorted(pristine)
    k = math.ceil((1 - FAR) * len(p))  # scores above the k-th smallest: at most FAR * N
    hi = math.ceil(p[k - 1] * 1000 + 1e-9) / 1000
    lo = math.floor(np.percentile(forged, 100 * FAR) * 1000) / 1000
    return min(lo, hi), hi


def explore(reps, out):
    """Candidate scores from the 8-bit probability image of each report."""
    import cv2

    rows = []
    for r in reps:
        stem = os.path.splitext(r["outputs"]["prob"])[0][: -len(".prob")]
        p = cv2.imread(os.path.join(out, r["outputs"]["prob"]), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        h, w = p.shape
        c = {"score": r["score"]}
        for frac in (0.01, 0.05, 0.1):
            k = max(3, round(min(h, w) * frac)) | 1
            c[f"blurmax{frac}"] = float(cv2.blur(p, (k, k), borderType=cv2.BORDER_REPLICATE).max())
        for t in (0.5, 0.9):
            c[f"frac>{t}"] = float((p > t).mean())
            m = (p > t).astype(np.uint8)
            rad = max(1, round(min(h, w) / 200))
            m = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((2 * rad + 1,) * 2, np.uint8))
            n, lab, st, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
            c[f"largest>{t}"] = float(st[1:, cv2.CC_STAT_AREA].max() / (h * w)) if n > 1 else 0.0
        c["p99"] = float(np.percentile(p, 99))
        c["mean"] = float(p.mean())
        rows.append(c)
    return rows


def auc(neg, pos):
    neg, pos = np.asarray(neg), np.asarray(pos)
    return float(((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()))


def run(a):
    a.tag = a.tag or (a.model or os.path.splitext(os.path.basename(a.weights))[0])
    s = sets(a)
    reps = {k: infer(a, k, v) for k, v in s.items()}
    sc = {k: [r["score"] for r in v] for k, v in reps.items()}
    lo, hi = thresholds(sc["pristine"], sc["forged"])
    res = {
        "model": a.tag,
        "score_definition": reps["pristine"][0].get("calibration", {}).get("score"),
        "n_pristine": len(sc["pristine"]),
        "n_forged": len(sc["forged"]),
        "tampered": hi,
        "clean": lo,
        "pristine_far": sum(v > hi for v in sc["pristine"]) / len(sc["pristine"]),
        "pristine_clean": sum(v <= lo for v in sc["pristine"]) / len(sc["pristine"]),
        "forged_detected": sum(v > hi for v in sc["forged"]) / len(sc["forged"]),
        "realdev_detected": sum(v > hi for v in sc["realdev"]),
        "realdev_clean": sum(v <= lo for v in sc["realdev"]),
        "realdev_scores": {os.path.basename(r["file"]): round(r["score"], 4) for r in reps["realdev"]},
        "verdicts_now": {
            k: {w: sum(r.get("verdict") == w for r in v) for w in ("tampered", "inconclusive", "clean")}
            for k, v in reps.items()
        },
        "regions_summary": {k: [len(r["regions"]) for r in v] for k, v in reps.items()},
        "auc_synth": auc(sc["pristine"], sc["forged"]),
    }
    print(json.dumps(res, indent=1))
    with open(os.path.join(a.work, a.tag, "calibration.json"), "w") as f:
        json.dump(res, f, indent=1)
    if a.explore:
        cand = {k: explore(v, os.path.join(a.work, a.tag, k)) for k, v in reps.items()}
        for key in cand["pristine"][0]:
            p = [c[key] for c in cand["pristine"]]
            f = [c[key] for c in cand["forged"]]
            d = [c[key] for c in cand["realdev"]]
            lo, hi = thresholds(p, f)
            print(
                f"{key:>14}: AUC synth {auc(p, f):.3f}, t@5% {hi:.4f}: synth forged {np.mean(np.array(f) > hi):.2f}, "
                f"real-dev {sum(v > hi for v in d)}/7 ({' '.join(f'{v:.3f}' for v in d)}); pristine median {np.median(p):.4f}"
            )


def table(a):
    for path in sorted(glob.glob(os.path.join(a.work, "*", "calibration.json"))):
        r = json.load(open(path))
        print(
            f"| `{r['model']}` | {r['score_definition']} | {r['tampered']} | {r['clean']} | "
            f"{100 * r['pristine_far']:.1f}% of {r['n_pristine']} | {100 * r['pristine_clean']:.1f}% | "
            f"{100 * r['forged_detected']:.1f}% of {r['n_forged']} | {r['realdev_detected']}/7 ({r['realdev_clean']} clean) |"
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["prepare", "run", "table"])
    ap.add_argument("--work", default="target/calibrate")
    ap.add_argument("--pool", default="/work/data/pool/permissive.csv")
    ap.add_argument("--synth", default="/work/data/synth384/val")
    ap.add_argument("--realdev", default="../shared/data/real-dev")
    ap.add_argument("--model")
    ap.add_argument("--weights")
    ap.add_argument("--tag", help="name of the result folder (default: the model or the weights' stem)")
    ap.add_argument("--force", action="store_true", help="rerun infer even if reports are cached")
    ap.add_argument("--explore", action="store_true")
    ap.add_argument("--forged-kinds", default="", help="only these synthetic kinds count as forged (copymove: "
                    "a clone detector is not asked to find splices)")
    ap.add_argument("--forged-every", type=int, default=1,
                    help="use every N-th synthetic forgery only (for slow models; they set the clean threshold)")
    ap.add_argument("extra", nargs="*", help="more infer options, after --")
    a = ap.parse_args()
    {"prepare": prepare, "run": run, "table": table}[a.cmd](a)


if __name__ == "__main__":
    main()
