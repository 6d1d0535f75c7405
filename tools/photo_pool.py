#!/usr/bin/env python3
"""Photo pool for synthetic forgeries: natural photographs with clear licenses from Debian packages.

Fetches the packages with `apt-get download` (the ordinary Debian client; nothing is installed
system-wide), unpacks each .deb with `dpkg-deb -x` under DATA/pkgroot/<package>/, and writes
DATA/pool/manifest.csv with one row per photograph:

    id, path, package, version, license, copyright, width, height, split

Which files are photographs was decided by looking at a contact sheet of every image in these
packages (2026-11-21, Debian 12 versions below): the drawings, gradients, vector renders and
logos of the same packages are left out (gnome-backgrounds 43 and ukui-wallpapers carry no
photographs at all; lomiri-wallpapers is two gradients). `--sheet` writes such a contact sheet of
the selected photos so the choice can be checked again.

Licenses are read from each package: mate-backgrounds' debian/copyright (per file),
plasma-workspace-wallpapers' per-wallpaper metadata.json (`KPlugin.License`, `KPlugin.Authors`),
python3-skimage's data docstrings (skimage/data/_fetchers.py, quoted below).

Split: by source photograph (every crop of a photo lands in the same split), ~15% validation,
chosen by the SHA-1 of the photo id (deterministic, no RNG).

No photograph is ever copied into the repository: everything lives under DATA (default
/work/data).

    python3 tools/photo_pool.py [--data /work/data] [--sheet]
"""
import argparse
import csv
import glob
import hashlib
import json
import os
import re
import subprocess
import sys

PACKAGES = ["mate-backgrounds", "plasma-workspace-wallpapers", "python3-skimage"]
# Looked at and rejected (no photographs): gnome-backgrounds (43.1: renders/patterns, svg),
# ukui-wallpapers (20.04: illustrations), lomiri-wallpapers (gradients), sway-backgrounds.

MATE_PHOTOS = ["nature/Aqua.jpg", "nature/Blinds.jpg", "nature/Dune.jpg", "nature/FreshFlower.jpg",
               "nature/Garden.jpg", "nature/GreenMeadow.jpg", "nature/LadyBird.jpg", "nature/RainDrops.jpg",
               "nature/Storm.jpg", "nature/TwoWings.jpg", "nature/Wood.jpg", "nature/YellowFlower.jpg"]
# plasma wallpapers that are photographs (the rest are renders / paintings, e.g. Autumn, Altai)
PLASMA_PHOTOS = ["BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
                 "Grey", "Kite", "OneStandsOut", "Path", "summer_1am"]
# skimage data images that are photographs with a stated license (docstring of skimage.data.<name>)
SKIMAGE_PHOTOS = {
    "astronaut.png": "public domain (NASA Great Images database; 'No known copyright restrictions, released "
                     "into the public domain')",
    "brick.png": "CC0 (CC0Textures Bricks25)",
    "camera.png": "CC0 (photographer Lav Varshney)",
    "chelsea.png": "CC0 (photographer Stefan van der Walt)",
    "coffee.png": "CC0 (photographer Rachel Michetti, courtesy of Pikolo Espresso Bar)",
    "coins.png": "no known copyright restrictions (Walters Art Museum)",
    "grass.png": "CC0 (CC0Textures)",
    "gravel.png": "CC0 (CC0Textures Gravel04)",
    "rocket.jpg": "public domain (SpaceX, released into the public domain)",
}
VAL_FRACTION = 0.15


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def fetch(data: str) -> dict:
    """apt-get download + dpkg-deb -x; returns {package: version}."""
    debs = os.path.join(data, "debs")
    os.makedirs(debs, exist_ok=True)
    versions = {}
    for p in PACKAGES:
        have = glob.glob(os.path.join(debs, f"{p}_*.deb"))
        if not have:
            sh(["apt-get", "download", p], cwd=debs)
            have = glob.glob(os.path.join(debs, f"{p}_*.deb"))
        deb = sorted(have)[-1]
        versions[p] = sh(["dpkg-deb", "-f", deb, "Version"]).strip()
        root = os.path.join(data, "pkgroot", p)
        if not os.path.isdir(os.path.join(root, "usr")):
            os.makedirs(root, exist_ok=True)
            sh(["dpkg-deb", "-x", deb, root])
    return versions


def mate_licenses(root: str) -> dict:
    """debian/copyright stanzas: {relative file: (license, copyright)}."""
    text = open(os.path.join(root, "usr/share/doc/mate-backgrounds/copyright"), encoding="utf-8").read()
    out = {}
    for stanza in text.split("\n\n"):
        m = re.search(r"^Files:(.*?)^Copyright:(.*?)^License:\s*(\S+)", stanza, re.S | re.M)
        if not m:
            continue
        files = m.group(1).split()
        cr = " ".join(m.group(2).split())
        for f in files:
            out[f] = (m.group(3), cr)
    return out


def rows_for(data: str, versions: dict) -> list:
    import cv2
    rows = []
    root = os.path.join(data, "pkgroot", "mate-backgrounds")
    lic = mate_licenses(root)
    for rel in MATE_PHOTOS:
        l, c = lic[rel]
        rows.append(("mate-" + os.path.splitext(os.path.basename(rel))[0],
                     os.path.join(root, "usr/share/backgrounds/mate", rel), "mate-backgrounds", l, c))
    root = os.path.join(data, "pkgroot", "plasma-workspace-wallpapers")
    for name in PLASMA_PHOTOS:
        d = os.path.join(root, "usr/share/wallpapers", name)
        meta = json.load(open(os.path.join(d, "metadata.json"), encoding="utf-8"))["KPlugin"]
        authors = ", ".join(a.get("Name", "") for a in meta.get("Authors", []))
        imgs = [p for p in glob.glob(os.path.join(d, "contents/images/*")) if not os.path.islink(p)]
        imgs.sort(key=lambda p: (os.path.getsize(p), p))  # the largest file = the full-size photo
        rows.append(("plasma-" + name, imgs[-1], "plasma-workspace-wallpapers",
                     meta.get("License", "GPL-2+ (debian/copyright)"), authors))
    root = os.path.join(data, "pkgroot", "python3-skimage")
    for fn, l in SKIMAGE_PHOTOS.items():
        rows.append(("skimage-" + os.path.splitext(fn)[0],
                     os.path.join(root, "usr/lib/python3/dist-packages/skimage/data", fn), "python3-skimage", l,
                     "see skimage.data." + os.path.splitext(fn)[0] + " docstring"))
    out = []
    for pid, path, pkg, l, c in rows:
        im = cv2.imread(path, cv2.IMREAD_COLOR)
        if im is None:
            raise RuntimeError(f"cannot decode {path}")
        h, w = im.shape[:2]
        v = int(hashlib.sha1(pid.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        out.append({"id": pid, "path": path, "package": pkg, "version": versions[pkg], "license": l,
                    "copyright": c, "width": w, "height": h, "split": "val" if v < VAL_FRACTION else "train"})
    return out


def contact_sheet(rows, path):
    import cv2
    import numpy as np
    tiles = []
    for r in rows:
        im = cv2.imread(r["path"], cv2.IMREAD_COLOR)
        t = cv2.resize(im, (240, 150), interpolation=cv2.INTER_AREA)
        cv2.putText(t, r["id"][:24] + (" V" if r["split"] == "val" else ""), (3, 18), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, (0, 0, 255), 1)
        tiles.append(t)
    while len(tiles) % 8:
        tiles.append(np.zeros_like(tiles[0]))
    cv2.imwrite(path, np.vstack([np.hstack(tiles[i:i + 8]) for i in range(0, len(tiles), 8)]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/work/data")
    ap.add_argument("--sheet", action="store_true", help="also write DATA/pool/contact_sheet.png")
    a = ap.parse_args(argv)
    versions = fetch(a.data)
    rows = rows_for(a.data, versions)
    os.makedirs(os.path.join(a.data, "pool"), exist_ok=True)
    man = os.path.join(a.data, "pool", "manifest.csv")
    with open(man, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    if a.sheet:
        contact_sheet(rows, os.path.join(a.data, "pool", "contact_sheet.png"))
    n_val = sum(r["split"] == "val" for r in rows)
    print(f"{len(rows)} photos ({len(rows) - n_val} train, {n_val} val) -> {man}")
    for p, v in versions.items():
        print(f"  {p} {v}: {sum(r['package'] == p for r in rows)} photos")
    print("  val:", ", ".join(r["id"] for r in rows if r["split"] == "val"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
