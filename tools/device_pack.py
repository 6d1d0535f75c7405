#!/usr/bin/env python3
"""Packs what a training run on a lent GPU machine needs and cannot find there into `.gpu/` (a
folder `.git/info/exclude` ignores, named in the device call's `carry`): the permissive photo pool,
downscaled and re-encoded so that it fits the 64 MiB the call may carry together with the
repository, its manifest with paths relative to the repository root, and optional checkpoints to
start from. tools/device_train.sh reads it there.

    python3 tools/device_pack.py --pool /work/data/pool/permissive.csv \
        --init pmsp1=/work/data/train-pmsp1/best.pt

Photos: at most MAX_SIDE px on the long side (INTER_AREA, the downscale tools/synth_forgery.py
makes anyway when it loads a photo, there to 1600 px), JPEG quality QUALITY 4:4:4. That leaves
every host a faint q92 trace on its own 8x8 grid (most pool photos are JPEGs already); the
synthetic generator's random rescale and its own compression histories come on top, as with the
original files.
"""
import argparse
import csv
import os
import shutil
import sys

import cv2

MAX_SIDE = 1024
QUALITY = 92


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", default="/work/data/pool/permissive.csv")
    ap.add_argument("--out", default=".gpu")
    ap.add_argument("--init", action="append", default=[], help="NAME=PATH: a checkpoint copied to OUT/init/NAME.pt")
    a = ap.parse_args(argv)
    photos = os.path.join(a.out, "photos")
    shutil.rmtree(a.out, ignore_errors=True)
    os.makedirs(photos)
    rows = list(csv.DictReader(open(a.pool, newline="", encoding="utf-8")))
    total = 0
    for r in rows:
        im = cv2.imread(r["path"], cv2.IMREAD_COLOR)
        if im is None:
            print(f"{r['path']}: unreadable", file=sys.stderr)
            return 1
        h, w = im.shape[:2]
        s = MAX_SIDE / max(h, w)
        if s < 1:
            im = cv2.resize(im, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        path = os.path.join(photos, r["id"] + ".jpg")
        ok, buf = cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, QUALITY,
                                            cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
        buf.tofile(path)
        total += len(buf)
        r["path"] = path
        r["width"], r["height"] = im.shape[1], im.shape[0]
    with open(os.path.join(a.out, "pool.csv"), "w", newline="", encoding="utf-8") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        wr.writeheader()
        wr.writerows(rows)
    for spec in a.init:
        name, path = spec.split("=", 1)
        os.makedirs(os.path.join(a.out, "init"), exist_ok=True)
        shutil.copy(path, os.path.join(a.out, "init", name + ".pt"))
    print(f"{a.out}: {len(rows)} photos, {total / 2**20:.1f} MiB; init {[s.split('=')[0] for s in a.init]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
