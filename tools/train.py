#!/usr/bin/env python3
"""One training harness for every model: data, augmentation, loss, validation, resumable
checkpoints and export to the checkpoint format `wgpu-forge convert` reads. What differs between
models lives in a small file per model, tools/trainmods/<model>.py (see its `Spec`).

Data: the synthetic forgeries of tools/synth_forgery.py (OUT/<split>/manifest.csv, images and 0/255
masks). Each image is read at its own size; a model's `side` inputs (PMSP's ELA) are computed there,
at the image's own size, exactly as the engine does (tools/ela_ref.py); then image, side inputs and
mask are resized to the model's input with cv2.resize (INTER_LINEAR on uint8; the mask by area, as
a soft target), which is the engine's own resize. Everything is cached as .npy under OUT/cache.
Loss: BCE on the model's tampering logit against the soft mask at the logit's resolution, plus a
soft Dice term on images that have a tampered region. AdamW, linear warm-up, cosine decay (by steps
or by a wall-clock budget). Augmentation: flips, and random crops at multiples of 8 px (the JPEG
grid stays where it was).

Deterministic: fixed seeds, the data order drawn from a seeded generator saved in the checkpoint,
so an interrupted run resumes where it stopped (OUT/last.pt). CPU (`--threads`) or CUDA.

    python3 tools/train.py bench --model pmsp                       # time fwd+bwd
    python3 tools/train.py train --model pmsp --data /work/data/synth --out /work/data/train-pmsp
    python3 tools/train.py eval --model pmsp --ckpt OUT/best.pt [--split val | --folder real-dev]
    python3 tools/train.py export --model pmsp --ckpt OUT/best.pt --to pmsp.pth [--threshold T]

Validation metrics follow /work/shared/specs/evaluation.md: per image, `p > 0.5`, F1 with 1e-8
guards, an image with an empty ground truth scores 0 (`f1`); `f1_forged` is the mean over images
with a tampered region; `iou` likewise; `auc` a tie-aware per-image ROC AUC (forged only).
"""
import argparse
import csv
import importlib
import json
import math
import os
import random
import sys
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


def spec_of(name):
    return importlib.import_module(f"trainmods.{name}").Spec()


def to_input(imgs_u8: np.ndarray, device) -> torch.Tensor:
    """uint8 N x H x W x 3 -> ImageNet-normalized N x 3 x H x W, as the engine's preprocessing."""
    x = (imgs_u8.astype(np.float32) - MEAN) / STD
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().to(device)


def to_levels(side_u8: np.ndarray, device) -> torch.Tensor:
    """uint8 N x H x W x C side inputs -> float levels N x C x H x W."""
    return torch.from_numpy(side_u8.astype(np.float32)).permute(0, 3, 1, 2).contiguous().to(device)


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------


def read_rgb(path):
    im = cv2.imread(path, cv2.IMREAD_COLOR)
    return cv2.cvtColor(im, cv2.COLOR_BGR2RGB)


def prepare_one(spec, cfg, im, size):
    """(image, side, the two at `size`): side inputs are computed at the image's own size first."""
    side = spec.side(cfg, im)
    h, w = im.shape[:2]
    if (h, w) != (size, size):
        im = cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR)
        if side is not None:
            side = cv2.resize(side, (size, size), interpolation=cv2.INTER_LINEAR)
    return im, side


def _prepare_row(job):
    """One manifest row -> (image, side, mask) at `size` (a worker's share of load_split)."""
    model, cfg, root, split, r, size = job
    spec = spec_of(model)
    im = read_rgb(os.path.join(root, split, r["image"]))
    m = cv2.imread(os.path.join(root, split, r["mask"]), cv2.IMREAD_GRAYSCALE)
    img, s = prepare_one(spec, cfg, im, size)
    mask = m if m.shape == (size, size) else cv2.resize(m, (size, size), interpolation=cv2.INTER_AREA)
    return img, s, mask


def load_split(model, cfg, root, split, size, cache_dir, workers=1):
    """Images (N,S,S,3) u8, side inputs (N,S,S,C) u8 or None, soft masks (N,S,S) u8 0..255, rows.
    The first run prepares and caches them, in `workers` processes (results do not depend on it)."""
    spec = spec_of(model)
    os.makedirs(cache_dir, exist_ok=True)
    tag = f"{split}_{size}_{spec.side_tag(cfg)}"
    paths = {k: os.path.join(cache_dir, f"{tag}_{k}.npy") for k in ("img", "side", "mask")}
    rows = list(csv.DictReader(open(os.path.join(root, split, "manifest.csv"), newline="")))
    if all(os.path.exists(p) for k, p in paths.items() if k != "side" or spec.has_side):
        imgs = np.load(paths["img"], mmap_mode="r")
        if len(imgs) == len(rows):
            side = np.ascontiguousarray(np.load(paths["side"])) if spec.has_side else None
            return np.ascontiguousarray(imgs), side, np.ascontiguousarray(np.load(paths["mask"])), rows
    imgs = np.zeros((len(rows), size, size, 3), np.uint8)
    side = np.zeros((len(rows), size, size, spec.side_channels), np.uint8) if spec.has_side else None
    masks = np.zeros((len(rows), size, size), np.uint8)
    t = time.time()
    jobs = [(model, cfg, root, split, r, size) for r in rows]
    pool = None
    if workers > 1:
        import multiprocessing
        pool = multiprocessing.get_context("fork").Pool(workers)
        results = pool.imap(_prepare_row, jobs, chunksize=8)
    else:
        results = map(_prepare_row, jobs)
    for i, (img, s, mask) in enumerate(results):
        imgs[i] = img
        if side is not None:
            side[i] = s
        masks[i] = mask
        if i % 500 == 499:
            print(f"  {split}: {i + 1}/{len(rows)} prepared ({time.time() - t:.0f}s)", flush=True)
    if pool is not None:
        pool.close()
    np.save(paths["img"], imgs)
    np.save(paths["mask"], masks)
    if side is not None:
        np.save(paths["side"], side)
    return imgs, side, masks, rows


# ------------------------------------------------------------------------------------------------
# metrics (evaluation.md)
# ------------------------------------------------------------------------------------------------


def auc_tie_aware(p: np.ndarray, y: np.ndarray) -> float:
    pos = int(y.sum())
    neg = y.size - pos
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    ps = p[order]
    ranks = np.empty(p.size, np.float64)
    _, idx, counts = np.unique(ps, return_index=True, return_counts=True)
    ranks[order] = np.repeat(idx + (counts - 1) / 2.0 + 1, counts)
    return float((ranks[y.astype(bool)].sum() - pos * (pos + 1) / 2) / (pos * neg))


THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7)


def f1_at(prob, g, t):
    pred = prob > t
    return 2 * float((pred & g).sum()) / (float(pred.sum()) + float(g.sum()) + 1e-8)


def image_metrics(prob: np.ndarray, gt: np.ndarray) -> dict:
    pred = prob > 0.5
    g = gt.astype(bool)
    tp = float((pred & g).sum())
    fp = float((pred & ~g).sum())
    fn = float((~pred & g).sum())
    prec, rec = tp / (tp + fp + 1e-8), tp / (tp + fn + 1e-8)
    f1 = 2 * prec * rec / (prec + rec + 1e-8)
    return {"f1": f1 if g.any() else 0.0, "iou": tp / (tp + fp + fn + 1e-8) if g.any() else 0.0,
            "auc": auc_tie_aware(prob.ravel(), g.ravel()), "forged": bool(g.any()), "score": float(prob.max()),
            "fp_frac": fp / g.size, "f1_by_t": [f1_at(prob, g, t) if g.any() else 0.0 for t in THRESHOLDS]}


def summarize(ms):
    forged = [m for m in ms if m["forged"]]
    clean = [m for m in ms if not m["forged"]]
    nan = float("nan")
    out = {"n": len(ms), "f1": float(np.mean([m["f1"] for m in ms])),
           "f1_forged": float(np.mean([m["f1"] for m in forged])) if forged else nan,
           "iou_forged": float(np.mean([m["iou"] for m in forged])) if forged else nan,
           "auc_forged": float(np.nanmean([m["auc"] for m in forged])) if forged else nan,
           "clean_fp_frac": float(np.mean([m["fp_frac"] for m in clean])) if clean else nan}
    by_t = np.mean([m["f1_by_t"] for m in ms], axis=0)
    out["f1_best"], out["thr_best"] = float(by_t.max()), float(THRESHOLDS[int(by_t.argmax())])
    if forged and clean:
        s = np.array([m["score"] for m in ms])
        y = np.array([m["forged"] for m in ms], np.uint8)
        out["img_auc"] = auc_tie_aware(s, y)
    return out


@torch.no_grad()
def evaluate(spec, model, imgs, side, masks, device, bs=16) -> dict:
    model.eval()
    ms = []
    for i in range(0, len(imgs), bs):
        prob = spec.prob(model, spec.forward(model, imgs[i:i + bs], None if side is None else side[i:i + bs], device))
        prob = prob[:, 0].float().cpu().numpy()
        for j in range(prob.shape[0]):
            ms.append(image_metrics(prob[j], masks[i + j] > 127))
    model.train()
    return summarize(ms)


# ------------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------------


def loss_fn(logit, mask_soft, pos_weight=1.0):
    """BCE on a tampering logit [N, h, w] against the soft mask at that size, + 0.5 soft Dice on
    images with a tampered region."""
    pw = None if pos_weight == 1.0 else torch.tensor(pos_weight, device=logit.device)
    bce = F.binary_cross_entropy_with_logits(logit, mask_soft, pos_weight=pw)
    p = torch.sigmoid(logit)
    has = mask_soft.flatten(1).sum(1) > 0
    if has.any():
        pi, ti = p[has].flatten(1), mask_soft[has].flatten(1)
        dice = (1 - (2 * (pi * ti).sum(1) + 1) / (pi.sum(1) + ti.sum(1) + 1)).mean()
    else:
        dice = logit.new_zeros(())
    return bce + 0.5 * dice, bce.detach(), dice.detach()


def lr_at(step, total, base, warm, floor=0.02, time_frac=0.0):
    if step < warm:
        return base * (step + 1) / warm
    t = max((step - warm) / max(1, total - warm), time_frac)
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def log(path, msg):
    line = time.strftime("%Y-%m-%d %H:%M:%S ") + msg
    print(line, flush=True)
    with open(path, "a") as f:
        f.write(line + "\n")


def crops(gen, a, imgs, masks, idx):
    """Crop offsets (multiples of 8 px), some centred on a tampered pixel (`--focus`)."""
    size = imgs.shape[1]
    lim = (size - a.crop) // 8
    cy, cx = gen.integers(0, lim + 1, len(idx)) * 8, gen.integers(0, lim + 1, len(idx)) * 8
    for j, k in enumerate(idx):
        if a.focus and gen.random() < a.focus:
            ys, xs = np.nonzero(masks[k] > 127)
            if len(ys):
                t = gen.integers(len(ys))
                cy[j] = min(max(0, (ys[t] - a.crop // 2) // 8), lim) * 8
                cx[j] = min(max(0, (xs[t] - a.crop // 2) // 8), lim) * 8
    return cy, cx


def train(a):
    spec = spec_of(a.model)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    random.seed(a.seed)
    torch.set_num_threads(a.threads)
    device = torch.device("cuda" if torch.cuda.is_available() and not a.cpu else "cpu")
    if device.type == "cuda":
        # TF32 convolutions and matmuls, and cuDNN's autotuner: the crops have one fixed size.
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    os.makedirs(a.out, exist_ok=True)
    logp = os.path.join(a.out, "log.txt")
    cfg = spec.config(json.loads(a.config) if a.config else {}, a.size)
    model = spec.build(cfg).to(device)
    spec.init(model, a)
    if a.init:
        model.load_state_dict(torch.load(a.init, map_location="cpu", weights_only=False)["model"])
    nparam = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.999))
    t0 = time.time()
    cache = os.path.join(a.data, "cache")
    imgs, side, masks, rows = load_split(a.model, cfg, a.data, "train", a.size, cache, a.workers)
    if a.skip_plain_copymove:
        # A copy-move with no resampling leaves no local trace: for a model that only sees local
        # traces its mask is label noise.
        def plain(r):
            q = json.loads(r["params"] or "{}")
            return r["kind"] == "copymove" and float(q.get("scale", 1.0)) == 1.0 and float(q.get("rot", 0.0)) == 0.0
        keep = np.array([not plain(r) for r in rows])
        imgs, masks = imgs[keep], masks[keep]
        side = None if side is None else side[keep]
        log(logp, f"skipping {int((~keep).sum())} plain copy-moves")
    vimgs, vside, vmasks, _ = load_split(a.model, cfg, a.data, "val", a.size, cache, a.workers)
    if a.val_n:
        vimgs, vmasks = vimgs[:a.val_n], vmasks[:a.val_n]
        vside = None if vside is None else vside[:a.val_n]
    log(logp, f"{a.model}: train {len(imgs)} val {len(vimgs)} ({time.time() - t0:.1f}s); device {device}, "
              f"threads {a.threads}; params {nparam:,}; config {json.dumps(spec.config_json(cfg))}")
    gen = np.random.default_rng(a.seed)
    step, best, train_seconds, ck = 0, {"f1": -1.0, "step": -1}, 0.0, None
    last = os.path.join(a.out, "last.pt")
    if os.path.exists(last) and not a.fresh:
        ck = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step, best, train_seconds = ck["step"], ck["best"], float(ck.get("train_seconds", 0.0))
        gen.bit_generator.state = ck["data_rng"]
        torch.set_rng_state(ck["torch_rng"])
        log(logp, f"resumed from {last} at step {step}")
    model.train()
    n = len(imgs)
    perm, pos = gen.permutation(n), 0
    if ck is not None and ck.get("perm") is not None:
        perm, pos = np.asarray(ck["perm"]), int(ck["pos"])
    tl, tb, td, tn, tt = 0.0, 0.0, 0.0, 0, time.time()
    last_save = time.time()
    budget = a.time_budget_min * 60
    seg_start, seg_base = time.time(), train_seconds

    def used():
        return seg_base + (time.time() - seg_start)

    # --deadline: a wall-clock end (validation included) for runs on a lent machine; the cosine
    # then runs over the time left.
    loop_start = time.time()

    def frac():
        if a.deadline:
            return (time.time() - loop_start) / max(1.0, a.deadline - loop_start)
        return used() / budget if budget else 0.0

    def out_of_time():
        return bool(budget and used() >= budget) or bool(a.deadline and time.time() >= a.deadline)

    while step < a.steps and not out_of_time():
        if pos + a.batch > n:
            perm, pos = gen.permutation(n), 0
        idx = np.sort(perm[pos:pos + a.batch])
        pos += a.batch
        if a.crop and a.crop < imgs.shape[1]:
            cy, cx = crops(gen, a, imgs, masks, idx)
            cut = lambda arr: np.stack([arr[k, y:y + a.crop, x:x + a.crop] for k, y, x in zip(idx, cy, cx)])  # noqa
            bi, bm = cut(imgs), cut(masks)
            bs = None if side is None else cut(side)
        else:
            bi, bm = imgs[idx].copy(), masks[idx].copy()
            bs = None if side is None else side[idx].copy()
        flips = gen.integers(0, 2, (len(idx), 2))  # len(idx) < batch only when the data is smaller
        for j in range(len(idx)):
            for ax, f in ((1, flips[j, 0]), (0, flips[j, 1])):
                if f:
                    bi[j], bm[j] = np.flip(bi[j], ax), np.flip(bm[j], ax)
                    if bs is not None:
                        bs[j] = np.flip(bs[j], ax)
        y = torch.from_numpy(bm.astype(np.float32) / 255.0)[:, None].to(device)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.steps, a.lr, a.warmup, time_frac=frac())
        out = spec.forward(model, bi, bs, device)
        logit = spec.logit(out)
        ys = F.adaptive_avg_pool2d(y, logit.shape[2:])[:, 0] if logit.shape[2:] != y.shape[2:] else y[:, 0]
        loss, bce, dice = loss_fn(logit[:, 0], ys, a.pos_weight)
        loss = loss + spec.extra_loss(out, y, a)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tl, tb, td, tn = tl + loss.item(), tb + float(bce), td + float(dice), tn + 1
        if step % a.log_every == 0:
            dt = (time.time() - tt) / tn
            log(logp, f"step {step} loss {tl / tn:.4f} bce {tb / tn:.4f} dice {td / tn:.4f} gnorm {float(gn):.2f} "
                      f"lr {opt.param_groups[0]['lr']:.2e} {dt:.2f}s/step")
            tl, tb, td, tn, tt = 0.0, 0.0, 0.0, 0, time.time()
        done = step == a.steps or out_of_time()
        if step % a.val_every == 0 or done:
            tv = time.time()
            m = evaluate(spec, model, vimgs, vside, vmasks, device)
            log(logp, f"val step {step} " + " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                                      for k, v in m.items()) + f" ({time.time() - tv:.0f}s)")
            if m[a.select] > best["f1"]:
                best = {"f1": m[a.select], "step": step, "metrics": m}
                torch.save({"model": model.state_dict(), "step": step, "config": spec.config_json(cfg),
                            "metrics": m, "train_args": vars(a)}, os.path.join(a.out, "best.pt"))
                log(logp, f"new best val {a.select} {m[a.select]:.4f} at step {step} -> best.pt")
            tt = time.time()
            seg_start += time.time() - tv  # validation time does not count against the budget
        if time.time() - last_save > a.save_minutes * 60 or done:
            tmp = last + ".tmp"
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                        "data_rng": gen.bit_generator.state, "perm": perm, "pos": pos, "train_seconds": used(),
                        "torch_rng": torch.get_rng_state(), "config": spec.config_json(cfg),
                        "train_args": vars(a), "best": best}, tmp)
            os.replace(tmp, last)
            last_save = time.time()
    log(logp, f"done: {step} steps, {used() / 60:.1f} min of training; best val {a.select} {best['f1']:.4f} "
              f"at step {best['step']}")


def load_ckpt(spec, path):
    ck = torch.load(path, map_location="cpu", weights_only=False)
    cfg = spec.config_from_json(ck["config"] if "config" in ck else ck["forge"]["config"])
    model = spec.build(cfg)
    model.load_state_dict(ck["model"])
    return ck, cfg, model.eval()


def export(a):
    spec = spec_of(a.model)
    ck, cfg, model = load_ckpt(spec, a.ckpt)
    calib = None
    if a.threshold:
        # The global threshold that maximized validation F1 becomes 0.5: the model shifts its
        # tampering logit by -logit(t) in its final biases.
        t = a.threshold
        shift = -math.log(t / (1 - t))
        with torch.no_grad():
            spec.shift_logit(model, cfg, shift)
        calib = {"threshold_moved_to_0.5": t, "logit_shift": shift}
        print(f"calibrated: p > {t} is now p > 0.5 (logit shift {shift:+.4f})")
    sd = model.state_dict()
    targs = ck.get("train_args", {})
    size = int(targs.get("size", a.size))
    forge = {"input_size": [size, size], "config": spec.config_json(cfg), "step": int(ck.get("step", 0)),
             "val_metrics": ck.get("metrics"), "calibration": calib, "trained_by": "wgpu-forge tools/train.py",
             "train_args": {k: v for k, v in targs.items() if isinstance(v, (int, float, str, bool))}}
    torch.save(spec.export_dict(sd, forge, ck), a.to)
    print(f"wrote {a.to}: {len(sd)} keys, {sum(v.numel() for v in sd.values()):,} values, input {size}x{size}")


@torch.no_grad()
def eval_folder(spec, cfg, model, folder, size, ela_after_resize=False):
    """A folder with manifest.csv (columns image/mask or image_file/mask_file, e.g. real-dev), as
    the engine does it: side inputs at the image's own size, resized with the image; the map
    resized back to the image's size (bilinear, align_corners=False) and scored there."""
    rows = list(csv.DictReader(open(os.path.join(folder, "manifest.csv"), newline="")))
    per = []
    for r in rows:
        ip, mp = r.get("image") or r["image_file"], r.get("mask") or r["mask_file"]
        im = read_rgb(os.path.join(folder, ip))
        gt = cv2.imread(os.path.join(folder, mp), cv2.IMREAD_GRAYSCALE) > 127
        h, w = im.shape[:2]
        if ela_after_resize:
            x = cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR)
            s = spec.side(cfg, x)
        else:
            x, s = prepare_one(spec, cfg, im, size)
        prob = spec.prob(model, spec.forward(model, x[None], None if s is None else s[None], torch.device("cpu")))
        prob = F.interpolate(prob, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()
        m = image_metrics(prob, gt)
        m["id"] = r.get("id") or r.get("stem") or ip
        per.append(m)
    out = summarize(per)
    out["per_image"] = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items() if k != "f1_by_t"}
                        for m in per]
    return out


def eval_cmd(a):
    spec = spec_of(a.model)
    torch.set_num_threads(a.threads)
    _, cfg, model = load_ckpt(spec, a.ckpt)
    if a.folder:
        print(json.dumps(eval_folder(spec, cfg, model, a.folder, a.size, a.ela_after_resize), indent=1))
        return
    imgs, side, masks, _ = load_split(a.model, cfg, a.data, a.split, a.size, os.path.join(a.data, "cache"))
    print(json.dumps(evaluate(spec, model, imgs, side, masks, torch.device("cpu")), indent=1))


def bench(a):
    spec = spec_of(a.model)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = spec.config(json.loads(a.config) if a.config else {}, a.size)
    m = spec.build(cfg)
    spec.init(m, a)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    s = a.crop or a.size
    bi = np.random.randint(0, 256, (a.batch, s, s, 3), dtype=np.uint8)
    bs = np.random.randint(0, 30, (a.batch, s, s, spec.side_channels), dtype=np.uint8) if spec.has_side else None
    ts = []
    for _ in range(4):
        t = time.time()
        logit = spec.logit(spec.forward(m, bi, bs, torch.device("cpu")))
        loss, _, _ = loss_fn(logit[:, 0], torch.zeros_like(logit[:, 0]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        ts.append(time.time() - t)
    npar = sum(p.numel() for p in m.parameters())
    print(f"{a.model} {json.dumps(spec.config_json(cfg))}: {npar:,} params, batch {a.batch} @ {s}: "
          f"{np.median(ts[1:]):.3f} s/step ({np.median(ts[1:]) / a.batch * 1000:.0f} ms/img)", flush=True)


def prep(a):
    """Build the train and val caches once (e.g. before several runs start side by side)."""
    spec = spec_of(a.model)
    cfg = spec.config(json.loads(a.config) if a.config else {}, a.size)
    for split in ("train", "val"):
        imgs, _, _, _ = load_split(a.model, cfg, a.data, split, a.size, os.path.join(a.data, "cache"), a.workers)
        print(f"{a.model}: {split} cache ready ({len(imgs)} images at {a.size})", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["train", "bench", "export", "eval", "prep"])
    ap.add_argument("--model", required=True, help="a module of tools/trainmods/ (mesorch, pmsp, u2net_mst, hifi)")
    ap.add_argument("--data", default="/work/data/synth")
    ap.add_argument("--out", default="/work/data/train")
    ap.add_argument("--size", type=int, default=256, help="the model's input side")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="processes that prepare the data cache on a first run")
    ap.add_argument("--config", default="", help="JSON overrides of the model's default (compact) config")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--val-every", type=int, default=500)
    ap.add_argument("--val-n", type=int, default=0, help="validate on the first N val images (0 = all)")
    ap.add_argument("--time-budget-min", type=float, default=0.0,
                    help="stop after this many minutes of training (validation excluded; summed over resumes)")
    ap.add_argument("--deadline", type=float, default=0.0,
                    help="stop training at this Unix time (wall clock, validation included)")
    ap.add_argument("--crop", type=int, default=0, help="train on random CROPxCROP crops (multiple of 32; 0 = whole)")
    ap.add_argument("--pos-weight", type=float, default=1.0, help="BCE weight of tampered pixels")
    ap.add_argument("--focus", type=float, default=0.0, help="share of crops centred on a tampered pixel")
    ap.add_argument("--skip-plain-copymove", action="store_true")
    ap.add_argument("--layer-scale", type=float, default=1e-6, help="Mesorch: initial ConvNeXt layer scale")
    ap.add_argument("--select", default="f1", choices=["f1", "f1_best", "auc_forged"])
    ap.add_argument("--init", default="", help="initial model weights (a last.pt/best.pt of another run)")
    ap.add_argument("--pretrained", default="", help="pretrained backbone weights, as the model's spec reads them "
                    "(pmsp: an EfficientNet-Lite0 ImageNet state_dict for both streams)")
    ap.add_argument("--save-minutes", type=float, default=4.0)
    ap.add_argument("--fresh", action="store_true", help="ignore OUT/last.pt")
    ap.add_argument("--cpu", action="store_true")
    ap.add_argument("--ckpt", default="")
    ap.add_argument("--to", default="")
    ap.add_argument("--split", default="val")
    ap.add_argument("--threshold", type=float, default=0.0,
                    help="export: fold this validation threshold into the biases so that it becomes 0.5")
    ap.add_argument("--folder", default="", help="eval: a folder with manifest.csv (e.g. real-dev)")
    ap.add_argument("--ela-after-resize", action="store_true",
                    help="eval --folder: compute side inputs after resizing (the alternative to measure)")
    a = ap.parse_args(argv)
    {"train": train, "bench": bench, "export": export, "eval": eval_cmd, "prep": prep}[a.cmd](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
