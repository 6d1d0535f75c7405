#!/usr/bin/env python3
"""Photo pool for synthetic forgeries: natural photographs with clear licenses from Debian packages.

Fetches the packages with `apt-get download` (the ordinary Debian client; nothing is installed
system-wide), unpacks each .deb with `dpkg-deb -x` under DATA/pkgroot/<package>/, and writes
DATA/pool/manifest.csv with one row per photograph:

    id, path, package, version, license, copyright, width, height, split

Photographs that a package stores inside a container (GCompris' Qt .rcc resources, Enlightenment's
.edj/EET files, jigzo's .pzl puzzles, SciPy's .dat arrays) are written out unchanged (the stored
JPEG/WebP bytes) or losslessly (PNG) under DATA/extract/<package>/, and `path` points there.

Which files are photographs was decided by looking at contact sheets of every image of these
packages (Debian 12 versions): drawings, gradients, vector renders, paintings, logos, screenshots
and heavily processed pictures are left out, and so is every photograph whose license is not
stated for that file (or its directory) or is not free. `--sheet` writes a contact sheet of the
selection (DATA/pool/sheet.png) so the choice can be checked again. New photos must also be at
least MIN_SIDE pixels on their short side (the first 32 are kept as they were).

Licenses are read from each package, per file where it says so:
  mate-backgrounds           debian/copyright stanzas (per file)
  plasma-workspace-wallpapers metadata.json of each wallpaper (KPlugin.License, KPlugin.Authors)
  python3-skimage            skimage/data/_fetchers.py docstrings (quoted in SKIMAGE_PHOTOS)
  gcompris-qt-data           the upstream README next to the images inside each .rcc (one stanza
                             per file: Copyright, License, Source URL on Wikimedia Commons, Comments)
  lomiri-wallpapers-16.04/20.04  debian/copyright stanzas (per file)
  tuxpaint-data              debian/copyright (Files: * GPL-2+) + AUTHORS.txt ("Templates ... Bill
                             Kendrick": his own photographs)
  enlightenment-data         debian/copyright (Files: * BSD-2-clause, Carsten Haitzler and
                             contributors); git history of data/backgrounds: raster's photo set of
                             2021-12 (Mountain is "photo-modified", left out)
  jigzo-data                 debian/copyright stanzas (per puzzle)
  lxqt-themes                wallpapers/License (CC-BY-SA-3.0, credits per file)
  scribus-template           debian/copyright (Riku Leino's templates, public domain)
  palapeli-data              each puzzle's .desktop (X-KDE-PluginInfo-License / -Author)
  libjxl-testdata            debian/copyright (Files: *, external/wesaturate/*) + README.md
  python3-sklearn            sklearn/datasets/images/README.txt
  python-matplotlib-data     debian/copyright (Files: *)
  python3-scipy              debian/copyright (ascent.dat: public domain) + scipy.misc docstrings
  puzzle-jigsaw              debian/copyright (samples/*: CC0-1.0, Pexels photos of 2016-2017)
  sddm-theme-maldives        debian/copyright (background.jpg: CC-BY-3.0, Nevit Dilmen)

Split: by source photograph (every crop of a photo lands in the same split), ~15% validation,
chosen by the SHA-1 of the photo id (deterministic, no RNG). Ids never change, so a photo keeps
its split when the pool grows.

`--v1` writes only the first 32 photos (mate-backgrounds, plasma-workspace-wallpapers,
python3-skimage): the pool that weights/mesorch-compact.safetensors was trained on.
`--permissive-only` leaves out the copyleft licensed photos (GPL, LGPL, CC-BY-SA), keeping
public domain, CC0, CC-BY and BSD-style ones.

No photograph is ever copied into the repository: everything lives under DATA (default
/work/data).

    python3 tools/photo_pool.py [--data /work/data] [--sheet [PNG]] [--v1] [--permissive-only]
"""
import argparse
import bz2
import csv
import glob
import hashlib
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import zlib

VAL_FRACTION = 0.15
MIN_SIDE = 360  # short side of a new photo, in pixels (smaller ones would mostly be upscaled)

# ---------------------------------------------------------------------------------------------
# The first pool (v1, 32 photos). Looked at and rejected then (no photographs):
# gnome-backgrounds (43.1: renders/patterns, svg), ukui-wallpapers (20.04: illustrations),
# lomiri-wallpapers (gradients), sway-backgrounds.
V1_PACKAGES = ["mate-backgrounds", "plasma-workspace-wallpapers", "python3-skimage"]

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

# ---------------------------------------------------------------------------------------------
# Added 2026-11 (v2). Per package: what was taken and what was left out, and why.

# gcompris-qt-data 3.1: photographs of the erase, explore_* and clickgame activities (Wikimedia
# Commons photos, 1024-1920 px, per-file README inside each .rcc). Left out: photos whose README
# says they were retouched locally ("removed a few spots") or warped ("non-linear rescaling"),
# since an "authentic" photo must not already hold local edits; explore_farm_animals/owl (heavy
# glow/vignette effect); explore_monuments/usa/cabrillo (359 px wide); photo_hunter (photo pairs
# edited to differ); details (photos with pieces cut out); categorization (320 px); lang,
# paintings, babyshapes and the fish of clickgame (drawings, paintings). Licenses that are not
# free (NC, ND, FDL) would be refused by GCOMPRIS_LICENSES; none occur in these directories.
GCOMPRIS_RCC = {  # rcc -> (resource dir inside it, id prefix, file name regex)
    "erase": ("gcompris/src/activities/erase/resource", "erase", r"[^/]+\.webp$"),
    "explore_farm_animals": ("gcompris/src/activities/explore_farm_animals/resource", "farm", r"animals/[^/]+\.webp$"),
    "explore_world_animals": ("gcompris/src/activities/explore_world_animals/resource", "animals",
                              r"animals/[^/]+\.webp$"),
    "explore_world_music": ("gcompris/src/activities/explore_world_music/resource", "music", r"music/[^/]+\.webp$"),
    "explore_monuments": ("gcompris/src/activities/explore_monuments/resource", "monuments", r"[a-z]+/[^/]+\.webp$"),
    "clickgame": ("gcompris/src/activities/clickgame/resource", "sea", r"sea\d\.webp$"),
}
GCOMPRIS_SKIP = {"farm-owl": "heavy glow/vignette effect", "monuments-cabrillo": "359 px wide"}
GCOMPRIS_SKIP_COMMENTS = ("removed", "non-linear")  # README "Comments:" that mean local edits
GCOMPRIS_LICENSES = re.compile(r"^(CC0-1\.0|public-domain|CC-BY-[0-9.]+|CC-BY-SA-[0-9.]+|GPL-?v?3\+?)$")

# lomiri-wallpapers-16.04 / -20.04 20.04.0: the Ubuntu Touch wallpaper-contest photos. Left out:
# analogpattern (colour-washed texture), umang (gradient), Fossa (render), Infinite-Sea
# (composite), Painting-Colors (graphic); lomiri-wallpapers itself is one gradient (warty).
LOMIRI_PHOTOS = {
    "lomiri-wallpapers-16.04": ["Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg",
                                "Picture_0B_by_freespace.jpg", "Picture_1A_by_freespace.jpg",
                                "Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg",
                                "free_by_Peter_Nerlich.jpg", "friends_by_Aitzol_Berasategi.jpg",
                                "greentock_by_Peter_Nerlich.jpg", "life_by_Aitzol_Berasategi.jpg",
                                "picosdeeuropa_by_Aitzol_Berasategi.jpg", "seeding_by_Clements_Engelhardt.jpg",
                                "sunset_by_Aitzol_Berasategi.jpg"],
    "lomiri-wallpapers-20.04": ["Kleiber_by_Lukas_Baubkus.jpg"],
}

# tuxpaint-data 0.9.28: the 19 photo templates (all photographs by Bill Kendrick, AUTHORS.txt).
# The starters are drawings; tuxpaint-stamps-default was looked at too: every stamp is a cut-out
# with transparency, not a whole photograph.
TUXPAINT_TEMPLATES = ["burnt_bark", "cliff", "corn_maze", "jellyfish", "lighthouse", "mossy_bark", "mossy_log",
                      "mudstone", "ocean_splash", "ocean_waves", "redwoods_above", "rocks", "sheep", "spiders_web",
                      "sun_behind_clouds", "sun_behind_leaves", "trees_above", "trees_at_dusk", "wool_mill_machine"]

# enlightenment-data 0.25.4: the largest image of each background .edj (stored as JPEG, 3840 px).
# Left out: Dunes, Flat-Fan, Flat-Stone-Pattern, Paper-Flower, Sunset-Hills, Squiggle* (drawn or
# flat designs), Mountain ("photo-modified" per its commit), Foggy-Trees and Peaks (heavily
# darkened grading).
E_PHOTOS = ["Bamboo", "God-Rays", "Green-Maple", "Lichen-Branches", "Red-Maple", "Sea-of-Lanterns",
            "Snow-Trees", "Spruce-Needles", "Sunset-Clouds", "White-Flower", "Yellow-Flower"]

# jigzo-data 0.6.1: the full picture of each puzzle (the "image" rectangle of its texture atlas).
# Left out: penguin-3x2 (CC-BY-NC-SA-1.0: non-commercial only).
JIGZO_PUZZLES = ["bike-3x4", "bird-2x3", "blackberry-3x3", "castle-6x3", "clouds-4x4", "gorilla2-3x3", "heli-4x3",
                 "horse-4x3", "tobogan-4x3", "train-2x2", "windmill-4x4"]

# lxqt-themes 1.2.0: wallpapers/License says CC-BY-SA-3.0 for the directory and credits
# stefonarch for these eight; Butterfly-Kenneth-Wimer names its photographer. Left out: Valendas and
# cloud (photographs, but nobody is credited for them), the origami/plasma/triangles/waves renders.
# (debian/copyright says LGPL-2.1+ for Files: *; the upstream License file of the directory is
# the more specific statement.)
LXQT_PHOTOS = {"after-the-rain.jpg": "stefonarch", "appleflower.png": "stefonarch", "beam.png": "stefonarch",
               "butterfly.png": "stefonarch", "drop.png": "stefonarch", "flowers.png": "stefonarch",
               "fog.jpg": "stefonarch", "this-is-not-windows.jpg": "stefonarch",
               "Butterfly-Kenneth-Wimer.jpg": "Kenneth Wimer (named in the file name)"}

# scribus-template 1.2.4.1: the photographs of Riku Leino's templates (br2, cal2, menu2, nl1-bw),
# "placed into public domain by their author" (debian/copyright; no per-image credit).
SCRIBUS_PHOTOS = ["br2/brightness.jpg", "br2/halfmoon.jpg", "br2/moon.jpg", "br2/nature.jpg", "br2/sunset.jpg",
                  "cal2/moon.jpg", "menu2/pizza.jpg", "nl1-bw/kites-bw.png"]

# palapeli-data 22.12.3: the three public-domain puzzle photos. Left out: castle-maintenon (FDL)
# and panther-chameleon-female (GNU-FDL): the GFDL is not GPL-compatible; the 512 px textures.
PALAPELI_PHOTOS = ["cincinnati-bridge", "citrus-fruits", "european-honey-bee"]

# libjxl-testdata: flower.png (the JPEG XL project's own photo, BSD-3-clause) and the three
# wesaturate.com photos (CC0). Left out: raw.pixls (64x64 crops), hdr_room (HDR merge), the
# flower's re-encoded copies, wide-gamut test charts, pngsuite.
WESATURATE = ("CC0-1.0 (debian/copyright external/wesaturate/*, its README.md)", "wesaturate.com photo {}")
JXL_PHOTOS = {  # id -> (path under usr/share/libjxl-testdata, license, copyright)
    "jxl-flower": ("jxl/flower/flower.png", "BSD-3-clause (debian/copyright Files: *)", "the JPEG XL Project Authors"),
    "jxl-keong_macan": ("external/wesaturate/500px/cvo9xd_keong_macan_srgb8.png", WESATURATE[0],
                        WESATURATE[1].format("cvo9xd (keong macan)")),
    "jxl-riaphotographs": ("external/wesaturate/500px/tmshre_riaphotographs_srgb8.png", WESATURATE[0],
                           WESATURATE[1].format("tmshre (riaphotographs)")),
    "jxl-bliznaca": ("external/wesaturate/500px/u76c0g_bliznaca_srgb8.png", WESATURATE[0],
                     WESATURATE[1].format("u76c0g (bliznaca)")),
}

# Single files. Looked at and rejected altogether (no photographs, or none with a clear license):
# desktop-base, xfdesktop4-data, lxde-common, fvwm-crystal, debian-edu-artwork (renders);
# gnome-backgrounds, ukui-wallpapers (renders, illustrations); sddm-theme-elarun/-maui/-maya
# (renders, screenshots); kdeplasma-addons-data, kdegames-mahjongg-data-kf5, tetzle, cheese-common
# (no photos >= 300 px); fotoxx-common (screenshots, edit demos); ulcc, pysiogame (drawings);
# kalzium-data (lab-tool photos, mostly < 300 px, license only the blanket GPL of the code);
# digikam-data (body-background.jpg: no author or license for the image); afterstep-data
# (rose512.jpg: blanket GPL of the code, no author); krita-data (brush textures); python3-pywt
# (no photos); puzzle-jigsaw's cat portrait (heavily processed) and table.png (texture);
# opencv sample data (USC-SIPI and press photos of unknown license: not fetched).
SINGLE_PHOTOS = [
    # (id, package, path inside the package, license, copyright)
    ("sklearn-china", "python3-sklearn", "usr/lib/python3/dist-packages/sklearn/datasets/images/china.jpg",
     "CC-BY-2.0 (sklearn/datasets/images/README.txt)", "danielbuechele (Flickr 6061409035), retrieved by Robert Layton"),
    ("sklearn-flower", "python3-sklearn", "usr/lib/python3/dist-packages/sklearn/datasets/images/flower.jpg",
     "CC-BY-2.0 (sklearn/datasets/images/README.txt)",
     "vultilion (Flickr 6056698931; the README's attribution line repeats danielbuechele by mistake)"),
    ("mpl-grace_hopper", "python-matplotlib-data", "usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg",
     "matplotlib license (PSF-based, BSD-compatible; debian/copyright Files: *); a U.S. Navy official photograph "
     "(public domain)", "U.S. Navy; the matplotlib development team"),
    ("puzzlejigsaw-tiger", "puzzle-jigsaw", "usr/share/puzzle-jigsaw/samples/pexels-photo-302304.jpeg",
     "CC0-1.0 (debian/copyright samples/*)", "2016-2017 Pexels (pexels.com/photo/302304)"),
    ("sddm-maldives", "sddm-theme-maldives", "usr/share/sddm/themes/maldives/background.jpg",
     "CC-BY-3.0 (debian/copyright)", "2008, Nevit Dilmen (commons.wikimedia.org/wiki/User:Nevit)"),
]

PACKAGES = V1_PACKAGES + ["gcompris-qt-data", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "tuxpaint-data",
                          "enlightenment-data", "jigzo-data", "lxqt-themes", "scribus-template", "palapeli-data",
                          "libjxl-testdata", "python3-sklearn", "python-matplotlib-data", "python3-scipy",
                          "puzzle-jigsaw", "sddm-theme-maldives"]


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def fetch(data: str, packages) -> dict:
    """apt-get download + dpkg-deb -x; returns {package: version}."""
    debs = os.path.join(data, "debs")
    os.makedirs(debs, exist_ok=True)
    versions = {}
    for p in packages:
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


def write_once(path: str, blob: bytes) -> str:
    if not (os.path.isfile(path) and os.path.getsize(path) == len(blob)):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(blob)
    return path


def dep5(path: str) -> list:
    """debian/copyright (DEP-5) stanzas: [(files, {field: text})], continuation lines joined."""
    text = open(path, encoding="utf-8").read()
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields, key = {}, None
        for line in stanza.splitlines():
            m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
            if m:
                key = m.group(1)
                fields[key] = m.group(2).strip()
            elif key in ("Files", "Copyright") and line.strip():  # not a License's full text
                fields[key] += " " + line.strip()
        if "Files" in fields:
            out.append((fields["Files"].split(), fields))
    return out


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


# ---------------------------------------------------------------------------------------------
# Containers

def rcc_files(buf: bytes) -> dict:
    """Qt resource (.rcc) file -> {path: bytes}. Format: 'qres', version, tree/data/names offsets;
    tree nodes of 14 (v1) or 22 bytes; data blocks with a u32 size, zlib-compressed when flag 1."""
    if buf[:4] != b"qres":
        raise ValueError("not a Qt rcc file")
    ver, tree, data, names = struct.unpack(">IIII", buf[4:20])
    nsz = 14 if ver == 1 else 22
    out = {}

    def name(off):
        (ln,) = struct.unpack(">H", buf[names + off:names + off + 2])
        return buf[names + off + 6:names + off + 6 + 2 * ln].decode("utf-16-be")

    def walk(i, prefix):
        o = tree + i * nsz
        noff, flags = struct.unpack(">IH", buf[o:o + 6])
        nm = name(noff) if i else ""
        if flags & 2:  # directory
            cnt, first = struct.unpack(">II", buf[o + 6:o + 14])
            for c in range(first, first + cnt):
                walk(c, prefix + nm + "/" if i else "")
        else:
            (doff,) = struct.unpack(">I", buf[o + 10:o + 14])
            p = data + doff
            (sz,) = struct.unpack(">I", buf[p:p + 4])
            raw = buf[p + 4:p + 4 + sz]
            if flags & 1:
                raw = zlib.decompress(raw[4:])
            elif flags & 4:
                raise ValueError("zstd-compressed rcc entry")
            out[prefix + nm] = raw

    walk(0, "")
    return out


def eet_images(buf: bytes) -> dict:
    """EET file (Enlightenment .edj) -> {'edje/images/N': bytes} for entries stored as plain JPEG/PNG."""
    magic, nd, _ = struct.unpack(">III", buf[:12])
    if magic != 0x1EE70F42:
        raise ValueError("not an EET file")
    out = {}
    for i in range(nd):
        off, size, _dsize, noff, nsz, flag = struct.unpack(">6I", buf[12 + 24 * i:36 + 24 * i])
        nm = buf[noff:noff + nsz].rstrip(b"\0").decode()
        blob = buf[off:off + size]
        if nm.startswith("edje/images/") and flag == 0 and (blob[:3] == b"\xff\xd8\xff" or blob[:4] == b"\x89PNG"):
            out[nm] = blob
    return out


def readme_stanzas(text: str) -> dict:
    """GCompris resource README (Copyright/License/Source/Comments/Files stanzas) -> {file: fields}."""
    out = {}
    for block in re.split(r"\n\s*\n", text):
        fields, files, key = {}, [], None
        for line in block.splitlines():
            m = re.match(r"^(Copyright|License|Source|Comments?|Files):\s*(.*)$", line)
            if m:
                key = m.group(1)
                if key == "Files":
                    files += m.group(2).split()
                else:
                    fields[key] = m.group(2).strip()
            elif key == "Files":
                files += line.split()
            elif key and line.strip():
                fields[key] += " " + line.strip()
        for f in files:
            out[f] = fields
    return out


def norm_license(s: str) -> str:
    s = s.strip()
    if s.lower().startswith("public domain"):
        return "public-domain"
    return re.sub(r"\s+", "-", s)


# ---------------------------------------------------------------------------------------------
# Sources: each returns [(id, path, package, license, copyright)]

def src_v1(data):
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
    return rows


def src_gcompris(data):
    pkg = "gcompris-qt-data"
    rcc_dir = os.path.join(data, "pkgroot", pkg, "usr/share/gcompris-qt/rcc")
    rows = []
    for rcc, (resdir, prefix, pattern) in GCOMPRIS_RCC.items():
        files = rcc_files(open(os.path.join(rcc_dir, rcc + ".rcc"), "rb").read())
        res = {k[len(resdir) + 1:]: v for k, v in files.items() if k.startswith(resdir + "/")}
        readmes = {os.path.dirname(k): readme_stanzas(v.decode("utf-8")) for k, v in res.items()
                   if os.path.basename(k) == "README"}
        for rel in sorted(k for k in res if re.search(pattern, k)):
            pid = f"gcompris-{prefix}-{os.path.splitext(os.path.basename(rel))[0]}"
            if pid[len("gcompris-"):] in GCOMPRIS_SKIP:
                continue
            info = None  # README of the file's directory, else of a parent (paths relative to it)
            d = os.path.dirname(rel)
            while info is None:
                r = readmes.get(d, {})
                info = r.get(os.path.relpath(rel, d) if d else rel)
                if d == "":
                    break
                d = os.path.dirname(d)
            if info is None:
                print(f"  skip {pid}: no README entry", file=sys.stderr)
                continue
            lic = norm_license(info.get("License", ""))
            if not GCOMPRIS_LICENSES.match(lic):
                print(f"  skip {pid}: license {lic!r}", file=sys.stderr)
                continue
            comments = info.get("Comments", info.get("Comment", ""))
            if any(w in comments.lower() for w in GCOMPRIS_SKIP_COMMENTS):
                continue
            path = write_once(os.path.join(data, "extract", pkg, rcc, rel), res[rel])
            cr = info.get("Copyright", "")
            if info.get("Source"):
                cr += f" <{info['Source']}>"
            if comments:
                cr += f" (upstream: {comments})"
            rows.append((pid, path, pkg, lic + " (upstream README)", cr))
    return rows


def src_lomiri(data):
    rows = []
    for pkg, names in LOMIRI_PHOTOS.items():
        root = os.path.join(data, "pkgroot", pkg)
        lic = {os.path.basename(f): st for files, st in dep5(os.path.join(root, "usr/share/doc", pkg, "copyright"))
               for f in files}
        for fn in names:
            st = lic[fn]
            rows.append(("lomiri-" + fn.split("_by_")[0], os.path.join(root, "usr/share/backgrounds", fn), pkg,
                         st["License"] + " (debian/copyright)", st["Copyright"]))
    return rows


def src_tuxpaint(data):
    root = os.path.join(data, "pkgroot", "tuxpaint-data")
    st = dict(dep5(os.path.join(root, "usr/share/doc/tuxpaint-data/copyright"))[0][1])
    assert st["Files"] == "*" and st["License"] == "GPL-2+", st
    return [("tuxpaint-" + n, os.path.join(root, "usr/share/tuxpaint/templates", n + ".jpg"), "tuxpaint-data",
             "GPL-2+ (debian/copyright Files: *)", "Bill Kendrick (AUTHORS.txt: Templates)")
            for n in TUXPAINT_TEMPLATES]


def src_enlightenment(data):
    pkg = "enlightenment-data"
    root = os.path.join(data, "pkgroot", pkg)
    rows = []
    for n in E_PHOTOS:
        imgs = eet_images(open(os.path.join(root, "usr/share/enlightenment/data/backgrounds", n + ".edj"), "rb").read())
        blob = max(imgs.values(), key=len)  # images/0 .. /7 are the same photo at falling sizes
        ext = ".jpg" if blob[:2] == b"\xff\xd8" else ".png"
        path = write_once(os.path.join(data, "extract", pkg, n + ext), blob)
        rows.append(("e-" + n, path, pkg, "BSD-2-clause (debian/copyright Files: *)",
                     "2000-2020 Carsten Haitzler and contributors (Enlightenment backgrounds, 2021)"))
    return rows


def src_jigzo(data):
    import cv2
    import numpy as np
    pkg = "jigzo-data"
    root = os.path.join(data, "pkgroot", pkg)
    stanzas = dep5(os.path.join(root, "usr/share/doc", pkg, "copyright"))
    default = next(st for files, st in stanzas if files == ["*"])
    rows = []
    for n in JIGZO_PUZZLES:
        rel = f"puzzles/00_default/{n}.pzl"
        st = next((st for files, st in stanzas if rel in files), default)
        b = open(os.path.join(root, "usr/share/games/jigzo", rel), "rb").read()
        hdr = b[:b.find(b"\xff\xd8\xff")].decode("latin-1")
        x, y, w, h = map(int, re.search(r"^image (\d+) (\d+) (\d+) (\d+)", hdr, re.M).groups())
        atlas = None  # the 1024x1024 RGB JPEG texture that holds the picture and its pieces
        for m in re.finditer(b"\xff\xd8\xff", b):
            im = cv2.imdecode(np.frombuffer(b[m.start():], np.uint8), cv2.IMREAD_COLOR)
            if im is not None and min(im.shape[:2]) >= max(x + w, y + h):
                atlas = im
        pic = atlas[y + 2:y + h - 2, x + 2:x + w - 2]  # 2 px off each side: the rim of the picture
        out = os.path.join(data, "extract", pkg, n + ".png")
        if not os.path.isfile(out):
            os.makedirs(os.path.dirname(out), exist_ok=True)
            cv2.imwrite(out, pic)
        rows.append(("jigzo-" + n.split("-")[0], out, pkg, st["License"] + " (debian/copyright)", st["Copyright"]))
    return rows


def src_lxqt(data):
    root = os.path.join(data, "pkgroot", "lxqt-themes", "usr/share/lxqt/wallpapers")
    text = open(os.path.join(root, "License"), encoding="utf-8").read()
    assert "creativecommons.org/licenses/by-sa/3.0" in text
    return [("lxqt-" + os.path.splitext(fn)[0], os.path.join(root, fn), "lxqt-themes",
             "CC-BY-SA-3.0 (wallpapers/License)", f"{who}; 2022 LXQt Project Team")
            for fn, who in LXQT_PHOTOS.items()]


def src_scribus(data):
    root = os.path.join(data, "pkgroot", "scribus-template")
    text = open(os.path.join(root, "usr/share/doc/scribus-template/copyright"), encoding="utf-8").read()
    assert "placed into public domain by their author" in text
    return [("scribus-" + rel.replace("/", "-").rsplit(".", 1)[0],
             os.path.join(root, "usr/share/scribus/templates", rel), "scribus-template",
             "public-domain (debian/copyright: Riku Leino's templates)", "2004 Riku Leino") for rel in SCRIBUS_PHOTOS]


def src_palapeli(data):
    root = os.path.join(data, "pkgroot", "palapeli-data", "usr/share/palapeli/collection")
    rows = []
    for n in PALAPELI_PHOTOS:
        desk = open(os.path.join(root, n + ".desktop"), encoding="utf-8").read()
        lic = re.search(r"^X-KDE-PluginInfo-License=(.*)$", desk, re.M).group(1).strip()
        author = re.search(r"^X-KDE-PluginInfo-Author=(.*)$", desk, re.M).group(1).strip()
        if lic.lower() != "public domain":
            raise RuntimeError(f"palapeli {n}: license {lic!r}")
        rows.append(("palapeli-" + n, os.path.join(root, n + ".jpg"), "palapeli-data",
                     "public-domain (" + n + ".desktop)", author))
    return rows


def src_jxl(data):
    root = os.path.join(data, "pkgroot", "libjxl-testdata", "usr/share/libjxl-testdata")
    return [(pid, os.path.join(root, rel), "libjxl-testdata", l, c) for pid, (rel, l, c) in JXL_PHOTOS.items()]


def src_scipy(data):
    import cv2
    import numpy as np
    pkg = "python3-scipy"
    misc = os.path.join(data, "pkgroot", pkg, "usr/lib/python3/dist-packages/scipy/misc")
    out = os.path.join(data, "extract", pkg)
    os.makedirs(out, exist_ok=True)
    face = os.path.join(out, "face.png")
    if not os.path.isfile(face):  # scipy.misc.face(): bz2 of 768x1024x3 uint8 RGB
        rgb = np.frombuffer(bz2.decompress(open(os.path.join(misc, "face.dat"), "rb").read()), np.uint8)
        cv2.imwrite(face, rgb.reshape(768, 1024, 3)[:, :, ::-1])
    ascent = os.path.join(out, "ascent.png")
    if not os.path.isfile(ascent):  # scipy.misc.ascent(): a pickled 512x512 array, 0..255
        with open(os.path.join(misc, "ascent.dat"), "rb") as f:
            a = np.array(pickle.load(f))  # a data file of the Debian package itself
        cv2.imwrite(ascent, np.clip(a, 0, 255).astype(np.uint8))
    return [("scipy-face", face, pkg, "BSD-3-clause (debian/copyright Files: *); scipy.misc.face docstring: "
             "raccoon-procyon-lotor.jpg from public-domain-image.com", "SciPy developers; public-domain-image.com"),
            ("scipy-ascent", ascent, pkg, "public-domain (debian/copyright scipy/misc/ascent.dat)",
             "public-domain-image.com accent-to-the-top.jpg (scipy.misc.ascent docstring)")]


def src_single(data):
    return [(pid, os.path.join(data, "pkgroot", pkg, rel), pkg, l, c) for pid, pkg, rel, l, c in SINGLE_PHOTOS]


SOURCES_V2 = [src_gcompris, src_lomiri, src_tuxpaint, src_enlightenment, src_jigzo, src_lxqt, src_scribus,
              src_palapeli, src_jxl, src_scipy, src_single]


def is_permissive(lic: str) -> bool:
    l = lic.lower()
    if "gpl" in l or "by-sa" in l or "share" in l:
        return False
    return l.startswith(("cc0", "public", "cc-by-", "bsd", "no known copyright", "matplotlib", "mit", "apache"))


def rows_for(data: str, versions: dict, v1: bool = False) -> list:
    import cv2
    rows = src_v1(data)
    n_v1 = len(rows)
    if not v1:
        for src in SOURCES_V2:
            rows += src(data)
    ids = [r[0] for r in rows]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise RuntimeError(f"duplicate ids: {sorted(dup)}")
    out = []
    for k, (pid, path, pkg, l, c) in enumerate(rows):
        im = cv2.imread(path, cv2.IMREAD_COLOR)
        if im is None:
            raise RuntimeError(f"cannot decode {path}")
        h, w = im.shape[:2]
        if k >= n_v1 and min(w, h) < MIN_SIDE:
            print(f"  skip {pid}: {w}x{h} < {MIN_SIDE} px", file=sys.stderr)
            continue
        v = int(hashlib.sha1(pid.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        out.append({"id": pid, "path": path, "package": pkg, "version": versions[pkg], "license": l,
                    "copyright": c, "width": w, "height": h, "split": "val" if v < VAL_FRACTION else "train"})
    return out


def contact_sheet(rows, path, cols=12, tw=160, th=108):
    import cv2
    import numpy as np
    tiles = []
    for r in rows:
        im = cv2.imread(r["path"], cv2.IMREAD_REDUCED_COLOR_4 if min(r["width"], r["height"]) >= 1600
                        else cv2.IMREAD_COLOR)
        t = cv2.resize(im, (tw, th), interpolation=cv2.INTER_AREA)
        cv2.rectangle(t, (0, 0), (tw, 13), (0, 0, 0), -1)
        cv2.putText(t, r["id"][:26] + (" V" if r["split"] == "val" else ""), (2, 10), cv2.FONT_HERSHEY_SIMPLEX,
                    0.32, (0, 255, 255) if r["split"] == "val" else (255, 255, 255), 1)
        tiles.append(t)
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    cv2.imwrite(path, np.vstack([np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/work/data")
    ap.add_argument("--sheet", nargs="?", const="", default=None, metavar="PNG",
                    help="also write a contact sheet of the selection (default DATA/pool/sheet.png)")
    ap.add_argument("--v1", action="store_true", help="only the first 32 photos (the shipped weights' pool)")
    ap.add_argument("--permissive-only", action="store_true",
                    help="leave out GPL/LGPL/CC-BY-SA photos (keep public domain, CC0, CC-BY, BSD-style)")
    a = ap.parse_args(argv)
    versions = fetch(a.data, V1_PACKAGES if a.v1 else PACKAGES)
    rows = rows_for(a.data, versions, v1=a.v1)
    if a.permissive_only:
        rows = [r for r in rows if is_permissive(r["license"])]
    os.makedirs(os.path.join(a.data, "pool"), exist_ok=True)
    man = os.path.join(a.data, "pool", "manifest.csv")
    with open(man, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    if a.sheet is not None:
        contact_sheet(rows, a.sheet or os.path.join(a.data, "pool", "sheet.png"))
    n_val = sum(r["split"] == "val" for r in rows)
    print(f"{len(rows)} photos ({len(rows) - n_val} train, {n_val} val) -> {man}")
    for p, v in versions.items():
        print(f"  {p} {v}: {sum(r['package'] == p for r in rows)} photos")
    kinds = {}
    for r in rows:
        k = r["license"].split(" (")[0].split(";")[0]
        kinds[k] = kinds.get(k, 0) + 1
    print("  licenses:", ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])))
    print("  permissive (public domain, CC0, CC-BY, BSD-style):", sum(is_permissive(r["license"]) for r in rows))
    print("  val:", ", ".join(r["id"] for r in rows if r["split"] == "val"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
