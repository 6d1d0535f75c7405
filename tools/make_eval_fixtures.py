#!/usr/bin/env python3
"""Golden fixtures for `src/eval` from implementations that are not ours.

- metrics: probability maps (float32, many with ties: values quantized to a few levels) and binary
  masks of awkward sizes, with the expected values of each metric computed here twice:
  `brute`: by brute force under our definitions (docs/eval.md): AUC as the fraction of
  (tampered, authentic) pixel pairs where the tampered one scores higher, ties counting 1/2;
  F1 / IoU with IMDL-BenCo's 1e-8 guards at `p > 0.5`; best F1 / best MCC as the maximum over
  every binarization `p > t` (t = each distinct value of the map, and below the minimum);
  `sklearn`: scikit-learn's roc_auc_score, f1_score, jaccard_score and matthews_corrcoef on the
  same inputs (best F1 / MCC: those scorers maximized over the same binarizations).
- blur: cv2.GaussianBlur(img, (k, k), 0) on uint8 RGB images, the call IMDL-BenCo's robustness
  test makes (albumentations 1.3.0 GaussianBlur with sigma_limit=0), k = 3, 5, ..., 23 and a few
  more; default border (BORDER_REFLECT_101).
- nearest: cv2.resize(mask, (W, H), interpolation=cv2.INTER_NEAREST), how the benchmark resizes
  masks to the model's input size (albumentations Resize -> INTER_NEAREST for masks). As source
  index per output index for many (src, dst) lengths, and as whole 2-D masks.

Image and mask inputs of blur / nearest come from the counter-based generator of
tools/make_resize_fixtures.py (re-implemented in the Rust tests), so they are not stored; the
metric inputs are stored (they are the point of those cases).

Files written to tests/fixtures/eval/ (see tools/README.md):
  manifest.json          versions, conventions and every case with its expected values
  metrics/<name>.bin     w*h float32 LE probabilities (row-major), then w*h uint8 labels (0/1)
  blur/<name>.bin        `full`: h*w*3 output bytes; `rowhash`: h little-endian u64 FNV-1a row hashes
  nearest/index.txt      `src dst i_0 ... i_(dst-1)`: OpenCV's source index of each output index
  nearest/<name>.bin     `full`: H*W output bytes (0/255); `rowhash`: H u64 row hashes

Usage: python3 tools/make_eval_fixtures.py [out_dir]
       (needs numpy, scikit-learn, opencv-python-headless). Deterministic: two runs with the same
       versions write identical files.
"""
import json
import math
import os
import sys
import warnings

import cv2
import numpy as np
import sklearn
from sklearn.metrics import f1_score, jaccard_score, matthews_corrcoef, roc_auc_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_resize_fixtures import gen_bytes, row_hashes  # noqa: E402  (same generator and hash)

THRESHOLD = np.float32(0.5)
EPS = 1e-8


# ---------------------------------------------------------------------------------------------
# metrics


def counts(pred: np.ndarray, gt: np.ndarray):
    tp = int(np.sum(pred & gt))
    fp = int(np.sum(pred & ~gt))
    fn = int(np.sum(~pred & gt))
    tn = int(np.sum(~pred & ~gt))
    return tp, fp, fn, tn


def f1_bench(tp, fp, fn):
    """IMDL-BenCo's F1 (our definition), float64."""
    p = tp / (tp + fp + EPS)
    r = tp / (tp + fn + EPS)
    return 2.0 * p * r / (p + r + EPS)


def iou_bench(tp, fp, fn):
    return tp / (tp + fp + fn + EPS)


def mcc_plain(tp, fp, fn, tn):
    den = math.sqrt(float(tp + fp) * float(tp + fn) * float(tn + fp) * float(tn + fn))
    return 0.0 if den == 0.0 else (tp * tn - fp * fn) / den


def auc_pairs(prob: np.ndarray, gt: np.ndarray):
    """Brute-force Mann-Whitney: every (positive, negative) pair, wins 1, ties 1/2."""
    pos, neg = prob[gt].astype(np.float64), prob[~gt].astype(np.float64)
    if len(pos) == 0 or len(neg) == 0:
        return None
    wins = ties = 0
    for chunk in np.array_split(pos, max(1, len(pos) // 256)):
        d = chunk[:, None] - neg[None, :]
        wins += int(np.sum(d > 0))
        ties += int(np.sum(d == 0))
    # exact rational (2 wins + ties) / (2 P N), rounded once
    return (2 * wins + ties) / (2 * len(pos) * len(neg))


def cuts(prob: np.ndarray):
    """Every binarization `p > t` a threshold can make: t = each distinct value, and -inf."""
    values = np.unique(prob)
    return [prob > np.float32(-np.inf)] + [prob > v for v in values]


def sk_f1(gt, pred):
    return float(f1_score(gt, pred, zero_division=0.0))


def sk_mcc(gt, pred):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "invalid value" on one-class inputs: sklearn returns 0
        return float(matthews_corrcoef(gt, pred))


def metric_case(name, w, h, seed, desc, prob, gt, out_dir):
    prob = np.ascontiguousarray(prob, dtype=np.float32).reshape(-1)
    gt = np.ascontiguousarray(gt, dtype=bool).reshape(-1)
    assert prob.size == w * h == gt.size
    with open(os.path.join(out_dir, "metrics", name + ".bin"), "wb") as f:
        f.write(prob.astype("<f4").tobytes())
        f.write(gt.astype(np.uint8).tobytes())

    marked = prob > THRESHOLD
    marked_inv = (np.float32(1.0) - prob) > THRESHOLD  # float32 arithmetic, as ours
    tp, fp, fn, tn = counts(marked, gt)
    itp, ifp, ifn, itn = counts(marked_inv, gt)
    all_cuts = cuts(prob)
    cut_counts = [counts(c, gt) for c in all_cuts]
    brute = {
        "auc": auc_pairs(prob, gt),
        "f1": f1_bench(tp, fp, fn),
        "f1_permuted": max(f1_bench(tp, fp, fn), f1_bench(itp, ifp, ifn)),
        "iou": iou_bench(tp, fp, fn),
        "best_f1": max(f1_bench(a, b, c) for a, b, c, _ in cut_counts),
        "best_mcc": max(mcc_plain(*c) for c in cut_counts),
        "confusion": [tp, fp, fn, tn],
        "confusion_inverted": [itp, ifp, ifn, itn],
        "cuts": len(all_cuts),
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # UndefinedMetricWarning on one class (newer sklearn: nan)
            sk_auc = float(roc_auc_score(gt, prob.astype(np.float64)))
    except ValueError:  # only one class present (older sklearn raises)
        sk_auc = float("nan")
    sk_auc = None if math.isnan(sk_auc) else sk_auc
    sk = {
        "roc_auc": sk_auc,
        "f1": sk_f1(gt, marked),
        "f1_permuted": max(sk_f1(gt, marked), sk_f1(gt, marked_inv)),
        "jaccard": float(jaccard_score(gt, marked, zero_division=0.0)),
        "mcc": sk_mcc(gt, marked),
        "best_f1": max(sk_f1(gt, c) for c in all_cuts),
        "best_mcc": max(sk_mcc(gt, c) for c in all_cuts),
    }
    # The two computations agree within the tolerances the Rust test states (docs/eval.md).
    if brute["auc"] is None:
        assert sk["roc_auc"] is None, name
    else:
        assert abs(brute["auc"] - sk["roc_auc"]) <= 1e-12, (name, brute["auc"], sk["roc_auc"])
    for ours, theirs in [("f1", "f1"), ("f1_permuted", "f1_permuted"), ("iou", "jaccard"), ("best_f1", "best_f1")]:
        assert abs(brute[ours] - sk[theirs]) <= 1e-7, (name, ours, brute[ours], sk[theirs])
    assert abs(brute["best_mcc"] - sk["best_mcc"]) <= 1e-12, (name, brute["best_mcc"], sk["best_mcc"])
    assert abs(mcc_plain(tp, fp, fn, tn) - sk["mcc"]) <= 1e-12, name
    return {
        "name": name,
        "width": w,
        "height": h,
        "seed": seed,
        "description": desc,
        "file": f"metrics/{name}.bin",
        "positives": int(gt.sum()),
        "distinct_values": int(np.unique(prob).size),
        "brute": brute,
        "sklearn": sk,
    }


def levels(rng, n, k):
    """Values i / (k - 1), i uniform in 0..k-1, as float32 (0.5 is one of them when k is odd)."""
    return (rng.integers(0, k, n) / (k - 1)).astype(np.float32)


def labels_following(rng, prob, lo, hi):
    """Labels that agree with the map more often than not: P(tampered) = lo + (hi - lo) p."""
    return rng.random(prob.size) < lo + (hi - lo) * prob.astype(np.float64)


def metric_cases(out_dir):
    os.makedirs(os.path.join(out_dir, "metrics"), exist_ok=True)
    cases = []

    def add(name, w, h, seed, desc, make):
        rng = np.random.default_rng(seed)
        prob, gt = make(rng, w * h)
        cases.append(metric_case(name, w, h, seed, desc, prob, gt, out_dir))

    add("levels3_37x23", 37, 23, 11, "3 levels {0, .5, 1}, labels following the map",
        lambda r, n: (lambda p: (p, labels_following(r, p, 0.1, 0.8)))(levels(r, n, 3)))
    add("levels5_61x45", 61, 45, 12, "5 levels, labels following the map",
        lambda r, n: (lambda p: (p, labels_following(r, p, 0.05, 0.9)))(levels(r, n, 5)))
    add("levels17_29x31", 29, 31, 13, "17 levels, labels following the map",
        lambda r, n: (lambda p: (p, labels_following(r, p, 0.2, 0.7)))(levels(r, n, 17)))
    add("levels4_101x3", 101, 3, 14, "4 levels (no 0.5), independent labels (AUC near 1/2)",
        lambda r, n: (levels(r, n, 4), r.random(n) < 0.3))
    add("levels7_13x11_inverted", 13, 11, 15, "7 levels, labels following 1 - p (permuted F1 wins)",
        lambda r, n: (lambda p: (p, labels_following(r, 1 - p, 0.05, 0.95)))(levels(r, n, 7)))
    add("continuous_41x27", 41, 27, 16, "continuous values in [0, 1), few or no ties",
        lambda r, n: (lambda p: (p, labels_following(r, p, 0.0, 1.0)))(r.random(n).astype(np.float32)))
    add("saturated_33x19", 33, 19, 17, "a model's map: mostly exactly 0 or 1, some values between",
        lambda r, n: saturated(r, n))
    add("one_positive_23x7", 23, 7, 18, "one tampered pixel among 5 levels",
        lambda r, n: (levels(r, n, 5), one_hot(n, 100)))
    add("one_negative_9x5", 9, 5, 19, "one authentic pixel among 5 levels",
        lambda r, n: (levels(r, n, 5), ~one_hot(n, 7)))
    add("all_ties_11x7", 11, 7, 20, "every value 0.3 (all ties), random labels",
        lambda r, n: (np.full(n, 0.3, np.float32), r.random(n) < 0.4))
    add("all_ties_at_threshold_8x8", 8, 8, 21, "every value exactly 0.5 (= threshold: nothing marked)",
        lambda r, n: (np.full(n, 0.5, np.float32), r.random(n) < 0.5))
    add("empty_mask_17x13", 17, 13, 22, "empty ground truth (authentic image), 5 levels",
        lambda r, n: (levels(r, n, 5), np.zeros(n, bool)))
    add("empty_mask_all_zero_map_6x4", 6, 4, 23, "empty ground truth and an all-zero map",
        lambda r, n: (np.zeros(n, np.float32), np.zeros(n, bool)))
    add("full_mask_15x9", 15, 9, 24, "every pixel tampered, 3 levels",
        lambda r, n: (levels(r, n, 3), np.ones(n, bool)))
    add("single_pixel_1x1", 1, 1, 25, "one pixel, tampered, p = 0.7",
        lambda r, n: (np.array([0.7], np.float32), np.array([True])))
    add("column_1x13", 1, 13, 26, "a 1-pixel-wide map, 3 levels",
        lambda r, n: (lambda p: (p, labels_following(r, p, 0.2, 0.8)))(levels(r, n, 3)))
    add("threshold_edges_19x5", 19, 5, 27,
        "values at and next to the threshold: 0.5, its float32 neighbours, 0, 1, and 1 - p rounding",
        lambda r, n: threshold_edges(r, n))
    add("perfect_12x10", 12, 10, 28, "perfect separation, tampered pixels all 0.9, the rest 0.1",
        lambda r, n: (lambda g: (np.where(g, 0.9, 0.1).astype(np.float32), g))(r.random(n) < 0.3))
    return cases


def one_hot(n, i):
    g = np.zeros(n, bool)
    g[i % n] = True
    return g


def saturated(rng, n):
    gt = rng.random(n) < 0.25
    p = np.where(gt, rng.random(n) < 0.7, rng.random(n) < 0.1).astype(np.float32)
    mid = rng.random(n) < 0.15
    p[mid] = rng.random(int(mid.sum())).astype(np.float32)
    return p, gt


def threshold_edges(rng, n):
    half = np.float32(0.5)
    vals = np.array(
        [0.0, 1.0, half, np.nextafter(half, np.float32(0)), np.nextafter(half, np.float32(1)),
         0.3, 0.7, np.float32(0.1), np.float32(0.9), np.float32(0.49999), np.float32(0.50001)],
        dtype=np.float32,
    )
    p = vals[rng.integers(0, len(vals), n)]
    return p, rng.random(n) < 0.5


def metric_means(cases):
    b = [c["brute"] for c in cases]
    aucs = [x["auc"] for x in b if x["auc"] is not None]
    return {
        "images": len(b),
        "f1": float(np.mean([x["f1"] for x in b])),
        "f1_permuted": float(np.mean([x["f1_permuted"] for x in b])),
        "iou": float(np.mean([x["iou"] for x in b])),
        "best_f1": float(np.mean([x["best_f1"] for x in b])),
        "best_mcc": float(np.mean([x["best_mcc"] for x in b])),
        "auc": float(np.mean(aucs)),
        "auc_images": len(aucs),
    }


# ---------------------------------------------------------------------------------------------
# blur

BLUR_SIZES_FULL = [(1, 1), (1, 6), (5, 1), (2, 3), (4, 9), (11, 7), (23, 17), (45, 31)]  # (w, h)
BLUR_SIZES_HASH = [(203, 117)]
BLUR_KERNELS = list(range(3, 24, 2))  # the protocol's 3, 7, ..., 23 and the even steps between
BLUR_EXTRA = [((45, 31), [1, 25, 31, 51, 99])]  # beyond the protocol, within --perturb's range


def blur_cases(out_dir):
    os.makedirs(os.path.join(out_dir, "blur"), exist_ok=True)
    plan = [(s, k, "full") for s in BLUR_SIZES_FULL for k in BLUR_KERNELS]
    plan += [(s, k, "rowhash") for s in BLUR_SIZES_HASH for k in BLUR_KERNELS]
    plan += [(s, k, "full") for s, ks in BLUR_EXTRA for k in ks]
    cases = []
    for i, ((w, h), k, kind) in enumerate(plan):
        seed = 2000 + i
        img = gen_bytes(seed, h * w * 3).reshape(h, w, 3)
        out = cv2.GaussianBlur(img, (k, k), 0)
        assert out.shape == img.shape and out.dtype == np.uint8
        name = f"b{i:03d}_{w}x{h}_k{k}"
        payload = out.tobytes() if kind == "full" else row_hashes(out)
        with open(os.path.join(out_dir, "blur", name + ".bin"), "wb") as f:
            f.write(payload)
        cases.append({"name": name, "width": w, "height": h, "kernel": k, "seed": seed, "kind": kind,
                      "file": f"blur/{name}.bin"})
    return cases


# ---------------------------------------------------------------------------------------------
# nearest


def integer_rule(s, d):
    return np.minimum(np.arange(d) * s // d, s - 1)


def cv_index(s, d):
    """OpenCV's source index of each output index, read off cv2.resize itself: resize a 1-row
    uint16 image whose pixels are their own column index."""
    src = np.arange(s, dtype=np.uint16)[None, :]
    return cv2.resize(src, (d, 1), interpolation=cv2.INTER_NEAREST).reshape(-1).astype(np.int64)


def nearest_cases(out_dir):
    os.makedirs(os.path.join(out_dir, "nearest"), exist_ok=True)
    pairs = []
    # every (src, dst) up to 64 where floor(dst_i * src / dst) in integers is not OpenCV's rule
    for s in range(1, 65):
        for d in range(1, 65):
            if (integer_rule(s, d) != cv_index(s, d)).any():
                pairs.append((s, d))
    differing_small = len(pairs)
    # controls where both rules agree, and the benchmark's resize to 512 from common sizes
    pairs += [(1, 1), (1, 7), (7, 1), (2, 5), (5, 2), (8, 3), (3, 8), (100, 37), (37, 100)]
    pairs += [(s, 512) for s in (186, 256, 372, 384, 480, 500, 511, 513, 640, 744, 1000, 1024, 1080, 1488, 1920, 3000)]
    pairs += [(1920, d) for d in (26, 85, 111, 224, 320)]
    lines = []
    for s, d in pairs:
        idx = cv_index(s, d)
        lines.append(f"{s} {d} " + " ".join(str(int(i)) for i in idx))
    with open(os.path.join(out_dir, "nearest", "index.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    index_info = {
        "file": "nearest/index.txt",
        "pairs": len(pairs),
        "pairs_where_integer_floor_differs": sum(1 for s, d in pairs if (integer_rule(s, d) != cv_index(s, d)).any()),
        "differing_pairs_up_to_64": differing_small,
    }

    masks = []
    plan = [
        ((14, 6), (18, 34), "full"),  # up, both axes differ from the integer rule
        ((22, 26), (18, 10), "full"),  # down, both axes differ
        ((5, 3), (2, 1), "full"),
        ((37, 23), (61, 45), "full"),
        ((9, 12), (51, 34), "full"),
        ((744, 186), (512, 512), "rowhash"),  # the model's input size from sizes that differ
        ((700, 500), (512, 512), "rowhash"),
        ((1920, 1080), (512, 512), "rowhash"),
        ((37, 23), (512, 512), "rowhash"),
    ]
    for i, ((sw, sh), (dw, dh), kind) in enumerate(plan):
        seed = 3000 + i
        mask = np.where(gen_bytes(seed, sh * sw).reshape(sh, sw) > 127, 255, 0).astype(np.uint8)
        out = cv2.resize(mask, (dw, dh), interpolation=cv2.INTER_NEAREST)
        assert out.shape == (dh, dw)
        name = f"m{i:02d}_{sw}x{sh}_to_{dw}x{dh}"
        payload = out.tobytes() if kind == "full" else row_hashes(out)
        with open(os.path.join(out_dir, "nearest", name + ".bin"), "wb") as f:
            f.write(payload)
        masks.append({"name": name, "src": [sw, sh], "dst": [dw, dh], "seed": seed, "kind": kind,
                      "file": f"nearest/{name}.bin",
                      "integer_rule_differs": bool((out != mask[integer_rule(sh, dh)][:, integer_rule(sw, dw)]).any())})
    return index_info, masks


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "fixtures", "eval")
    os.makedirs(out_dir, exist_ok=True)
    metrics = metric_cases(out_dir)
    blur = blur_cases(out_dir)
    index_info, masks = nearest_cases(out_dir)
    manifest = {
        "made_by": "tools/make_eval_fixtures.py",
        "versions": {"numpy": np.__version__, "scikit-learn": sklearn.__version__, "opencv": cv2.__version__,
                     "python": sys.version.split()[0]},
        "generator": "blur/nearest inputs: byte i = mix((seed << 40) ^ i), tools/make_resize_fixtures.py gen_bytes; "
                     "masks: 255 where that byte > 127, else 0",
        "row_hash": "FNV-1a 64 over the bytes of each output row, little-endian u64 per row",
        "metrics": {
            "threshold": float(THRESHOLD),
            "conventions": "brute: our definitions (docs/eval.md), computed by brute force; sklearn: "
                           "roc_auc_score, f1_score(zero_division=0), jaccard_score(zero_division=0), "
                           "matthews_corrcoef; best_*: maximum over every binarization p > t; "
                           "null: undefined (one class)",
            "cases": metrics,
            "mean": metric_means(metrics),
        },
        "blur": {"call": "cv2.GaussianBlur(img, (k, k), 0)  # border BORDER_REFLECT_101", "cases": blur},
        "nearest": {"call": "cv2.resize(src, (dw, dh), interpolation=cv2.INTER_NEAREST)", "index": index_info,
                    "masks": masks},
    }
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"wrote {len(metrics)} metric cases, {len(blur)} blur cases, {index_info['pairs']} index pairs, "
          f"{len(masks)} masks to {out_dir} (cv2 {cv2.__version__}, sklearn {sklearn.__version__}, numpy {np.__version__})")


if __name__ == "__main__":
    main()
