#!/usr/bin/env python3
"""Synthetic image forgeries with pixel masks, from the photo pool of tools/photo_pool.py.

Deterministic: sample i of split s is drawn from numpy's PCG64 seeded with (seed, s, i), so any
sample can be regenerated alone and the worker count does not matter. Hosts and donors of a split
come only from that split's photos (split by source photo in the pool manifest).

Kinds (weights in KINDS):
- splice    a region of another photo pasted into the host (optionally colour-matched to the host)
- copymove  a region of the host itself, scaled (0.7-1.3x), rotated (+-35 deg) and moved
- inpaint   a region removed with OpenCV inpainting (Telea or Navier-Stokes)
- pristine  no manipulation, empty mask (same JPEG/resampling history as the forgeries)
Masks: random polygons, smooth random blobs, ellipses/rectangles, or object-like shapes cut from a
third photo (the largest component of an Otsu threshold of a blurred crop).
Region post-processing (each with some probability): blur, resampling (down then up), additive
noise, brightness/contrast change, and boundary feathering (soft alpha; the mask is alpha > 0.5).
Compression history: the host is optionally a JPEG already (camera, q 65-98, 4:2:0 or 4:4:4);
after the manipulation the image is saved as PNG (lossless), or as a JPEG once more at another
quality, on the same 8x8 grid or on a grid shifted by a crop of 1-7 pixels. Some samples are made
at a larger size and resized to the output size at the end with cv2 INTER_LINEAR, as the inference
pipeline does with any image that is not at the model's input size.

Output (a folder any tool can read):
    OUT/<split>/images/<split>_<i:06d>.{jpg,png}   RGB image, OUT_SIZE x OUT_SIZE
    OUT/<split>/masks/<split>_<i:06d>.png          8-bit mask, 0 = authentic, 255 = tampered
    OUT/<split>/masks-both/<split>_<i:06d>.png     the same plus a copy-move's source region
    OUT/<split>/manifest.csv                       id, image, mask, kind, host, donor, mask_shape,
                                                   tampered_fraction, final (png|jpeg), params (JSON)

    python3 tools/synth_forgery.py --pool /work/data/pool/manifest.csv --out /work/data/synth \
        --train 8000 --val 300 --size 256 --seed 1 --workers 2
"""
import argparse
import csv
import json
import math
import os
import sys
from multiprocessing import Pool

import cv2
import numpy as np

KINDS = (("splice", 0.36), ("copymove", 0.28), ("inpaint", 0.19), ("pristine", 0.17))
SPLITS = {"train": 0, "val": 1}
MAX_SIDE = 1600  # photos are downscaled (INTER_AREA) to at most this long side when loaded

_PHOTOS = {}  # split -> list of (id, uint8 RGB array); filled per worker


def load_pool(manifest: str, split: str):
    out = []
    with open(manifest, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["split"] != split:
                continue
            im = cv2.imread(r["path"], cv2.IMREAD_COLOR)
            im = cv2.cvtColor(im, cv2.COLOR_BGR2RGB)
            h, w = im.shape[:2]
            s = MAX_SIDE / max(h, w)
            if s < 1:
                im = cv2.resize(im, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
            out.append((r["id"], im))
    out.sort(key=lambda t: t[0])
    return out


# ------------------------------------------------------------------------------------------------
# pieces
# ------------------------------------------------------------------------------------------------


def jpeg(img: np.ndarray, q: int, s444: bool) -> np.ndarray:
    params = [cv2.IMWRITE_JPEG_QUALITY, int(q)]
    if s444:
        params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], params)
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].copy()


def random_crop(rng, photo: np.ndarray, size: int) -> tuple:
    """A square window of the photo (random scale) resized to size x size."""
    h, w = photo.shape[:2]
    m = min(h, w)
    lo = min(size, m)
    win = int(round(math.exp(rng.uniform(math.log(lo), math.log(max(lo, min(m, 4 * size)))))))
    y = int(rng.integers(0, h - win + 1))
    x = int(rng.integers(0, w - win + 1))
    crop = photo[y:y + win, x:x + win]
    if win != size:
        interp = cv2.INTER_AREA if win > size else cv2.INTER_CUBIC
        crop = cv2.resize(crop, (size, size), interpolation=interp)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop), {"win": win, "y": y, "x": x}


def mask_polygon(rng, s):
    m = np.zeros((s, s), np.uint8)
    n = int(rng.integers(3, 12))
    cx, cy = rng.uniform(0.2, 0.8, 2) * s
    r = rng.uniform(0.06, 0.3) * s
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = r * rng.uniform(0.4, 1.0, n)
    pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1).astype(np.int32)
    cv2.fillPoly(m, [pts], 1)
    return m


def mask_blob(rng, s):
    g = rng.standard_normal((s // 8 + 2, s // 8 + 2)).astype(np.float32)
    g = cv2.resize(g, (s, s), interpolation=cv2.INTER_CUBIC)
    g = cv2.GaussianBlur(g, (0, 0), s / 24)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    cx, cy = rng.uniform(0.25, 0.75, 2) * s
    r = rng.uniform(0.08, 0.28) * s
    env = np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))
    v = env + 0.5 * g / (g.std() + 1e-6) * env
    return (v > rng.uniform(0.35, 0.6)).astype(np.uint8)


def mask_shape(rng, s):
    m = np.zeros((s, s), np.uint8)
    cx, cy = (rng.uniform(0.2, 0.8, 2) * s).astype(int)
    a, b = (rng.uniform(0.04, 0.25, 2) * s).astype(int) + 3
    if rng.random() < 0.5:
        cv2.ellipse(m, (int(cx), int(cy)), (int(a), int(b)), float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:
        box = cv2.boxPoints(((float(cx), float(cy)), (float(2 * a), float(2 * b)), float(rng.uniform(0, 90))))
        cv2.fillPoly(m, [box.astype(np.int32)], 1)
    return m


def mask_object(rng, s, photos):
    """An object-like shape cut from another photo: largest component of an Otsu split."""
    for _ in range(4):
        _, ph = photos[int(rng.integers(len(photos)))]
        crop, _ = random_crop(rng, ph, s)
        g = cv2.GaussianBlur(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (0, 0), 2)
        _, t = cv2.threshold(g, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        if rng.random() < 0.5:
            t = 1 - t
        t = cv2.morphologyEx(t, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
        n, lab, stats, _ = cv2.connectedComponentsWithStats(t, connectivity=8)
        best = None
        for k in range(1, n):
            a = stats[k, cv2.CC_STAT_AREA] / (s * s)
            if 0.01 <= a <= 0.3 and (best is None or a > best[1]):
                best = (k, a)
        if best is not None:
            return (lab == best[0]).astype(np.uint8)
    return mask_blob(rng, s)


def make_mask(rng, s, photos):
    kind = ["polygon", "blob", "shape", "object"][int(rng.choice(4, p=[0.25, 0.25, 0.2, 0.3]))]
    for _ in range(10):
        m = {"polygon": mask_polygon, "blob": mask_blob, "shape": mask_shape}.get(kind)
        m = m(rng, s) if m else mask_object(rng, s, photos)
        frac = m.mean()
        if 0.008 <= frac <= 0.35:
            return m, kind
    return mask_shape(rng, s), "shape"


def degrade_region(rng, img, params):
    """Post-processing a forger applies to the pasted content."""
    out = img.astype(np.float32)
    if rng.random() < 0.3:
        sig = float(rng.uniform(0.4, 1.6))
        out = cv2.GaussianBlur(out, (0, 0), sig)
        params["blur"] = round(sig, 2)
    if rng.random() < 0.3:
        f = float(rng.uniform(0.5, 0.9))
        h, w = out.shape[:2]
        small = cv2.resize(out, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_LINEAR)
        out = cv2.resize(small, (w, h), interpolation=[cv2.INTER_LINEAR, cv2.INTER_CUBIC][int(rng.integers(2))])
        params["resample"] = round(f, 2)
    if rng.random() < 0.3:
        a, b = float(rng.uniform(0.85, 1.15)), float(rng.uniform(-15, 15))
        out = out * a + b
        params["gain_bias"] = [round(a, 2), round(b, 1)]
    if rng.random() < 0.25:
        sig = float(rng.uniform(1.0, 6.0))
        out = out + rng.standard_normal(out.shape).astype(np.float32) * sig
        params["noise"] = round(sig, 2)
    return np.clip(out, 0, 255)


def color_match(src, dst, m, amount):
    """Move the mean/std of src inside the mask towards dst's (so colour alone does not give it away)."""
    src = src.astype(np.float32)
    sel = m > 0
    for c in range(3):
        a, b = src[..., c][sel], dst[..., c].astype(np.float32)
        if a.size < 10:
            continue
        t = (src[..., c] - a.mean()) / (a.std() + 1e-3) * (b.std() + 1e-3) + b.mean()
        src[..., c] = (1 - amount) * src[..., c] + amount * t
    return np.clip(src, 0, 255)


def composite(rng, host, region, m, params):
    alpha = m.astype(np.float32)
    if rng.random() < 0.6:
        sig = float(rng.uniform(0.6, 3.0))
        alpha = cv2.GaussianBlur(alpha, (0, 0), sig)
        params["feather"] = round(sig, 2)
    out = host.astype(np.float32) * (1 - alpha[..., None]) + region * alpha[..., None]
    gt = (alpha > 0.5).astype(np.uint8)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), gt


# ------------------------------------------------------------------------------------------------
# one sample
# ------------------------------------------------------------------------------------------------


def make_sample(seed: int, split: str, i: int, size: int, only=None):
    photos = _PHOTOS[split]
    rng = np.random.default_rng([seed, SPLITS[split], i])
    kind = KINDS[int(rng.choice(len(KINDS), p=[w for _, w in KINDS]))][0]
    if only:
        # The draw above still happens, so the rest of the sample's stream is the same as without --kinds.
        kind = only[i % len(only)]
    params = {}
    # working size: mostly the output size; sometimes larger, resized to size at the very end
    work = size if rng.random() < 0.7 else int(rng.integers(size + 32, 2 * size + 1))
    hi = int(rng.integers(len(photos)))
    host_id, host_photo = photos[hi]
    pad = 8  # room for a misaligned second JPEG grid
    host, _ = random_crop(rng, host_photo, work + pad)
    # camera JPEG (aligned with the host's grid)
    if rng.random() < 0.75:
        q1 = int(rng.integers(65, 99))
        s444 = bool(rng.random() < 0.3)
        host = jpeg(host, q1, s444)
        params["q1"], params["q1_444"] = q1, s444
    off = (0, 0)
    if rng.random() < 0.5:
        off = (int(rng.integers(0, pad)), int(rng.integers(0, pad)))
    host = np.ascontiguousarray(host[off[0]:off[0] + work, off[1]:off[1] + work])
    params["grid_offset"] = list(off)

    donor_id, shape = "", ""
    gt = np.zeros((work, work), np.uint8)
    src = gt  # a copy-move's source region (left untouched in the image), for masks-both/
    img = host
    if kind != "pristine":
        m, shape = make_mask(rng, work, photos)
        if kind == "splice":
            di = int(rng.integers(len(photos) - 1))
            di = di + 1 if di >= hi else di
            donor_id, donor_photo = photos[di]
            donor, _ = random_crop(rng, donor_photo, work)
            if rng.random() < 0.5:
                q = int(rng.integers(50, 99))
                donor = jpeg(donor, q, False)
                params["donor_q"] = q
            region = donor.astype(np.float32)
            if rng.random() < 0.6:
                amt = float(rng.uniform(0.3, 1.0))
                region = color_match(region, host, m, amt)
                params["color_match"] = round(amt, 2)
            region = degrade_region(rng, region, params)
            img, gt = composite(rng, host, region, m, params)
        elif kind == "copymove":
            # source region = m; the moved copy is the tampered area
            ys, xs = np.nonzero(m)
            cy, cx = ys.mean(), xs.mean()
            sc = float(rng.uniform(0.7, 1.3)) if rng.random() < 0.6 else 1.0
            rot = float(rng.uniform(-35, 35)) if rng.random() < 0.5 else 0.0
            for _ in range(20):
                tx, ty = rng.uniform(0.15, 0.85, 2) * work
                M = cv2.getRotationMatrix2D((float(cx), float(cy)), rot, sc)
                M[:, 2] += (tx - cx, ty - cy)
                m2 = cv2.warpAffine(m, M, (work, work), flags=cv2.INTER_NEAREST)
                if m2.sum() > 0.7 * m.sum() * sc * sc and (m2 & m).sum() < 0.2 * m2.sum():
                    break
            interp = [cv2.INTER_LINEAR, cv2.INTER_CUBIC][int(rng.integers(2))]
            region = cv2.warpAffine(host, M, (work, work), flags=interp, borderMode=cv2.BORDER_REFLECT)
            region = degrade_region(rng, region.astype(np.float32), params)
            params.update(scale=round(sc, 3), rot=round(rot, 1), to=[round(float(tx)), round(float(ty))])
            img, gt = composite(rng, host, region, m2, params)
            src = ((m > 0) & (gt == 0)).astype(np.uint8)
        else:  # inpaint
            flag = cv2.INPAINT_TELEA if rng.random() < 0.5 else cv2.INPAINT_NS
            r = int(rng.integers(3, 8))
            mi = cv2.dilate(m, np.ones((3, 3), np.uint8))
            region = cv2.inpaint(host, mi, r, flag).astype(np.float32)
            if rng.random() < 0.3:
                sig = float(rng.uniform(1.0, 4.0))
                region = np.clip(region + rng.standard_normal(region.shape).astype(np.float32) * sig, 0, 255)
                params["noise"] = round(sig, 2)
            params.update(method="telea" if flag == cv2.INPAINT_TELEA else "ns", radius=r)
            img, gt = composite(rng, host, region, mi, params)
        if gt.sum() == 0:
            kind, shape = "pristine", ""
    # whole-image history after the edit
    if rng.random() < 0.15:
        sig = float(rng.uniform(0.3, 0.9))
        img = np.clip(np.rint(cv2.GaussianBlur(img.astype(np.float32), (0, 0), sig)), 0, 255).astype(np.uint8)
        params["global_blur"] = round(sig, 2)
    if work != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
        gt = (cv2.resize(gt.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR) > 0.5).astype(np.uint8)
        src = (cv2.resize(src.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR) > 0.5).astype(np.uint8)
        params["resize_from"] = work
    final = "png"
    if rng.random() < 0.7:
        # final JPEG: a second compression when the host was a JPEG, at a misaligned grid when offset
        if rng.random() < 0.5:
            q2 = int(rng.integers(70, 101))
        else:
            q2 = int(rng.integers(50, 96))
        final = "jpeg"
        params["q2"] = q2
    return kind, img, gt, src, final, params, host_id, donor_id, shape


def worker(args):
    seed, split, i, size, out, only = args
    kind, img, gt, src, final, params, host_id, donor_id, shape = make_sample(seed, split, i, size, only)
    stem = f"{split}_{i:06d}"
    d = os.path.join(out, split)
    if final == "jpeg":
        fn = f"images/{stem}.jpg"
        ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, params["q2"]])
        buf.tofile(os.path.join(d, fn))
    else:
        fn = f"images/{stem}.png"
        cv2.imwrite(os.path.join(d, fn), img[:, :, ::-1])
    cv2.imwrite(os.path.join(d, f"masks/{stem}.png"), gt * 255)
    # Copy-move detectors mark the source too (it is one half of the evidence): this mask adds it.
    cv2.imwrite(os.path.join(d, f"masks-both/{stem}.png"), (gt | src) * 255)
    return {"id": stem, "image": fn, "mask": f"masks/{stem}.png", "kind": kind, "host": host_id,
            "donor": donor_id, "mask_shape": shape, "tampered_fraction": round(float(gt.mean()), 5),
            "final": final, "params": json.dumps(params, sort_keys=True)}


def init_worker(pool_manifest):
    for s in SPLITS:
        _PHOTOS[s] = load_pool(pool_manifest, s)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", default="/work/data/pool/manifest.csv")
    ap.add_argument("--out", default="/work/data/synth")
    ap.add_argument("--train", type=int, default=8000)
    ap.add_argument("--val", type=int, default=300)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kinds", default="", help="comma-separated kinds to make in turn (e.g. copymove,pristine); "
                    "default: drawn with the weights of KINDS")
    a = ap.parse_args(argv)
    only = [k for k in a.kinds.split(",") if k]
    bad = [k for k in only if k not in dict(KINDS)]
    if bad:
        ap.error(f"unknown kinds {bad}; known: {[k for k, _ in KINDS]}")
    cv2.setNumThreads(1)
    for split, n in (("val", a.val), ("train", a.train)):
        os.makedirs(os.path.join(a.out, split, "images"), exist_ok=True)
        os.makedirs(os.path.join(a.out, split, "masks"), exist_ok=True)
        os.makedirs(os.path.join(a.out, split, "masks-both"), exist_ok=True)
        jobs = [(a.seed, split, i, a.size, a.out, only) for i in range(n)]
        if n == 0:
            continue
        with Pool(a.workers, initializer=init_worker, initargs=(a.pool,)) as p:
            rows = p.map(worker, jobs, chunksize=16)
        with open(os.path.join(a.out, split, "manifest.csv"), "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)
        kinds = {}
        for r in rows:
            kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
        fr = [r["tampered_fraction"] for r in rows if r["kind"] != "pristine"]
        print(f"{split}: {n} images {kinds}, tampered fraction mean {np.mean(fr):.3f} median {np.median(fr):.3f}")
    with open(os.path.join(a.out, "README.txt"), "w") as f:
        f.write(f"Generated by tools/synth_forgery.py {' '.join(argv or sys.argv[1:])}\n"
                f"seed {a.seed}, size {a.size}, pool {a.pool}. Masks: 0 authentic, 255 tampered.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
