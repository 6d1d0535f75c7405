#!/usr/bin/env python3
"""Train a (compact) Mesorch on the synthetic forgeries of tools/synth_forgery.py.

The model is our reference `tools/mesorch_ref.py` (official key names), so the exported file is an
official-format checkpoint that goes through `wgpu-forge convert` like a user's checkpoint.

Preprocessing is the official one: RGB, the image at the model's input size (the synthetic images
are made at that size; anything else is resized with cv2 INTER_LINEAR on uint8), ImageNet
mean/std normalization `(x - mean*255) / (std*255)`.
Loss: BCE on the fused logit at H/4 x W/4 against the area-downsampled mask (soft targets), plus a
soft Dice term on the images that have a tampered region. AdamW, linear warm-up, cosine decay.
Augmentation: horizontal/vertical flips (the input is a multiple of 8, so flips keep the JPEG grid).

Deterministic: fixed seeds, data order drawn from a seeded generator saved in the checkpoint, so an
interrupted run resumes where it stopped (`--resume`, the default when OUT/last.pt exists).
Runs on CPU (`--threads`) or on a CUDA GPU when one is available.

    python3 tools/train_mesorch.py bench                      # time fwd+bwd of candidate configs
    python3 tools/train_mesorch.py train --out /work/data/train --steps 6000
    python3 tools/train_mesorch.py eval --ckpt /work/data/train/best.pt [--split val]
    python3 tools/train_mesorch.py export --ckpt /work/data/train/best.pt --to mesorch-compact.pth

Validation metrics follow /work/shared/specs/evaluation.md: per image, `p > 0.5`, F1 with 1e-8
guards, an image with an empty ground truth scores 0 (`f1`); `f1_forged` is the mean over images
with a tampered region only; `iou` likewise; `auc` is a tie-aware per-image ROC AUC (forged only).
"""
import argparse
import csv
import json
import math
import os
import random
import sys
import time

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mesorch_ref import Mesorch, MesorchConfig  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], np.float32) * 255

COMPACT = dict(variant="mesorch", cnx_dims=(32, 64, 128, 256), cnx_depths=(1, 1, 2, 1), cnx_head_classes=0,
               mit_dims=(64, 128, 192, 256), mit_heads=(1, 2, 3, 4), mit_depths=(1, 1, 2, 1), mit_sr=(8, 4, 2, 1),
               gate_dim=64, gate_hidden=256)


def make_config(over: dict = None) -> MesorchConfig:
    d = dict(COMPACT)
    d.update(over or {})
    return MesorchConfig(**d)


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------


def load_split(root: str, split: str, size: int, cache_dir: str):
    """All images and masks of a split as uint8 arrays (N,H,W,3) and (N,H,W); cached as .npy."""
    os.makedirs(cache_dir, exist_ok=True)
    ci, cm = os.path.join(cache_dir, f"{split}_{size}_img.npy"), os.path.join(cache_dir, f"{split}_{size}_mask.npy")
    rows = list(csv.DictReader(open(os.path.join(root, split, "manifest.csv"), newline="")))
    if os.path.exists(ci) and os.path.exists(cm):
        imgs, masks = np.load(ci, mmap_mode="r"), np.load(cm, mmap_mode="r")
        if len(imgs) == len(rows):
            return np.ascontiguousarray(imgs), np.ascontiguousarray(masks), rows
    imgs = np.zeros((len(rows), size, size, 3), np.uint8)
    masks = np.zeros((len(rows), size, size), np.uint8)
    for i, r in enumerate(rows):
        imgs[i] = read_image(os.path.join(root, split, r["image"]), size)
        m = cv2.imread(os.path.join(root, split, r["mask"]), cv2.IMREAD_GRAYSCALE)
        if m.shape != (size, size):
            m = cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST)
        masks[i] = (m > 127).astype(np.uint8)
    np.save(ci, imgs)
    np.save(cm, masks)
    return imgs, masks, rows


def read_image(path: str, size: int) -> np.ndarray:
    im = cv2.imread(path, cv2.IMREAD_COLOR)
    im = cv2.cvtColor(im, cv2.COLOR_BGR2RGB)
    if im.shape[:2] != (size, size):
        im = cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR)  # the official test path
    return im


def to_input(imgs_u8: np.ndarray, device) -> torch.Tensor:
    x = (imgs_u8.astype(np.float32) - MEAN) / STD
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().to(device)


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
    # average ranks over ties
    _, idx, counts = np.unique(ps, return_index=True, return_counts=True)
    avg = idx + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y.astype(bool)].sum() - pos * (pos + 1) / 2) / (pos * neg))


THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7)


def f1_at(prob: np.ndarray, g: np.ndarray, t: float) -> float:
    pred = prob > t
    tp = float((pred & g).sum())
    return 2 * tp / (float(pred.sum()) + float(g.sum()) + 1e-8)


def image_metrics(prob: np.ndarray, gt: np.ndarray) -> dict:
    pred = prob > 0.5
    g = gt.astype(bool)
    f1_by_t = [f1_at(prob, g, t) if g.any() else 0.0 for t in THRESHOLDS]
    tp = float((pred & g).sum())
    fp = float((pred & ~g).sum())
    fn = float((~pred & g).sum())
    prec = tp / (tp + fp + 1e-8)
    rec = tp / (tp + fn + 1e-8)
    f1 = 2 * prec * rec / (prec + rec + 1e-8)
    iou = tp / (tp + fp + fn + 1e-8)
    return {"f1": f1 if g.any() else 0.0, "iou": iou if g.any() else 0.0,
            "auc": auc_tie_aware(prob.ravel(), g.ravel()), "forged": bool(g.any()),
            "score": float(prob.max()), "fp_frac": fp / g.size, "f1_by_t": f1_by_t}


@torch.no_grad()
def evaluate(model, imgs, masks, device, bs=16) -> dict:
    model.eval()
    ms = []
    for i in range(0, len(imgs), bs):
        x = to_input(imgs[i:i + bs], device)
        prob = model(x)["prob"][:, 0].float().cpu().numpy()
        for j in range(prob.shape[0]):
            ms.append(image_metrics(prob[j], masks[i + j]))
    model.train()
    forged = [m for m in ms if m["forged"]]
    clean = [m for m in ms if not m["forged"]]
    out = {"n": len(ms), "f1": float(np.mean([m["f1"] for m in ms])),
           "f1_forged": float(np.mean([m["f1"] for m in forged])) if forged else float("nan"),
           "iou_forged": float(np.mean([m["iou"] for m in forged])) if forged else float("nan"),
           "auc_forged": float(np.nanmean([m["auc"] for m in forged])) if forged else float("nan"),
           "clean_fp_frac": float(np.mean([m["fp_frac"] for m in clean])) if clean else float("nan")}
    # the one global threshold that maximizes mean F1 (calibration: `export --threshold` moves it to 0.5)
    by_t = np.mean([m["f1_by_t"] for m in ms], axis=0)
    out["f1_best"], out["thr_best"] = float(by_t.max()), float(THRESHOLDS[int(by_t.argmax())])
    # image-level: max probability as the score, AUC forged vs pristine
    if forged and clean:
        s = np.array([m["score"] for m in ms])
        y = np.array([m["forged"] for m in ms], np.uint8)
        out["img_auc"] = auc_tie_aware(s, y)
    return out


# ------------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------------


def init_weights(model: nn.Module, layer_scale: float = 1e-6):
    """timm's init for linear layers; ConvNeXt layer scale at `layer_scale`. timm's 1e-6 suits long
    runs; for short CPU runs it scales the blocks' gradients below Adam's epsilon, so they barely move."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for n, p in model.named_parameters():
        if n.endswith(".gamma"):
            nn.init.constant_(p, layer_scale)


def loss_fn(out, mask_small, pos_weight: float = 1.0):
    logit = out["logit"][:, 0]
    pw = None if pos_weight == 1.0 else torch.tensor(pos_weight, device=logit.device)
    bce = F.binary_cross_entropy_with_logits(logit, mask_small, pos_weight=pw)
    p = torch.sigmoid(logit)
    has = mask_small.flatten(1).sum(1) > 0
    if has.any():
        pi, ti = p[has].flatten(1), mask_small[has].flatten(1)
        dice = 1 - (2 * (pi * ti).sum(1) + 1) / (pi.sum(1) + ti.sum(1) + 1)
        dice = dice.mean()
    else:
        dice = logit.new_zeros(())
    return bce + 0.5 * dice, bce.detach(), dice.detach()


def lr_at(step, total, base, warm, floor=0.02, time_frac=0.0):
    """Warm-up over `warm` steps, then cosine over the rest; progress is the larger of the step
    fraction and `time_frac` (the share of the wall-clock budget used, 0 without a budget)."""
    if step < warm:
        return base * (step + 1) / warm
    t = max((step - warm) / max(1, total - warm), time_frac)
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def log(path, msg):
    line = time.strftime("%Y-%m-%d %H:%M:%S ") + msg
    print(line, flush=True)
    with open(path, "a") as f:
        f.write(line + "\n")


def save_ckpt(path, model, opt, step, gen_state, cfg, args, best, perm=None, pos=0, train_seconds=0.0):
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "data_rng": gen_state, "perm": perm, "pos": pos, "train_seconds": train_seconds, "torch_rng": torch.get_rng_state(), "config": cfg.to_json(),
                "train_args": vars(args), "best": best}, tmp)
    os.replace(tmp, path)


def train(a):
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    random.seed(a.seed)
    torch.set_num_threads(a.threads)
    device = torch.device("cuda" if torch.cuda.is_available() and not a.cpu else "cpu")
    os.makedirs(a.out, exist_ok=True)
    logp = os.path.join(a.out, "log.txt")
    cfg = make_config(json.loads(a.config) if a.config else None)
    model = Mesorch(cfg).to(device)
    init_weights(model, a.layer_scale)
    if a.init:  # start from another run's weights (model only; new optimizer and schedule)
        model.load_state_dict(torch.load(a.init, map_location="cpu", weights_only=False)["model"])
    nparam = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.999))
    t0 = time.time()
    imgs, masks, rows = load_split(a.data, "train", a.size, os.path.join(a.out, "cache"))
    if a.skip_plain_copymove:
        # A copy-move with no resampling leaves no local trace (same photo, same noise, same grid):
        # for a model that only sees local traces its mask is label noise.
        def plain(r):
            if r["kind"] != "copymove":
                return False
            q = json.loads(r["params"] or "{}")
            return float(q.get("scale", 1.0)) == 1.0 and float(q.get("rot", 0.0)) == 0.0
        keep = np.array([not plain(r) for r in rows])
        imgs, masks = imgs[keep], masks[keep]
        log(logp, f"skipping {int((~keep).sum())} plain copy-moves")
    vimgs, vmasks, _ = load_split(a.data, "val", a.size, os.path.join(a.out, "cache"))
    if a.val_n:
        vimgs, vmasks = vimgs[:a.val_n], vmasks[:a.val_n]
    log(logp, f"data: train {len(imgs)} val {len(vimgs)} ({time.time() - t0:.1f}s); device {device}, "
              f"threads {a.threads}; params {nparam:,}; config {json.dumps(cfg.to_json())}")
    gen = np.random.default_rng(a.seed)
    step, best, train_seconds = 0, {"f1": -1.0, "step": -1}, 0.0
    last = os.path.join(a.out, "last.pt")
    if os.path.exists(last) and not a.fresh:
        ck = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step, best = ck["step"], ck["best"]
        train_seconds = float(ck.get("train_seconds", 0.0))
        gen.bit_generator.state = ck["data_rng"]
        torch.set_rng_state(ck["torch_rng"])
        log(logp, f"resumed from {last} at step {step}")
    model.train()
    n = len(imgs)
    perm, pos = gen.permutation(n), 0
    if step:
        if ck.get("perm") is not None:  # the epoch order in use and the position in it
            perm, pos = np.asarray(ck["perm"]), int(ck["pos"])
        else:  # older checkpoints: a fresh order, from the saved generator
            pos = (step * a.batch) % n
    tl, tb, td, tn, tt = 0.0, 0.0, 0.0, 0, time.time()
    last_save = time.time()
    budget = a.time_budget_min * 60
    seg_start, seg_base = time.time(), train_seconds  # training time excludes validation

    def used():
        return seg_base + (time.time() - seg_start)

    while step < a.steps and not (budget and used() >= budget):
        if pos + a.batch > n:
            perm, pos = gen.permutation(n), 0
        idx = np.sort(perm[pos:pos + a.batch])
        pos += a.batch
        if a.crop and a.crop < imgs.shape[1]:
            # random crops at multiples of 8 px, so a JPEG's 8x8 grid stays where it was
            cy = gen.integers(0, (imgs.shape[1] - a.crop) // 8 + 1, a.batch) * 8
            cx = gen.integers(0, (imgs.shape[2] - a.crop) // 8 + 1, a.batch) * 8
            for j, k in enumerate(idx):
                # with probability --focus, centre the crop on a random tampered pixel (more
                # boundary and positive pixels per step than uniform crops of a 10% region)
                if a.focus and gen.random() < a.focus:
                    ys, xs = np.nonzero(masks[k])
                    if len(ys):
                        t = gen.integers(len(ys))
                        lim_y, lim_x = (imgs.shape[1] - a.crop) // 8, (imgs.shape[2] - a.crop) // 8
                        cy[j] = min(max(0, (ys[t] - a.crop // 2) // 8), lim_y) * 8
                        cx[j] = min(max(0, (xs[t] - a.crop // 2) // 8), lim_x) * 8
            bi = np.stack([imgs[k, y:y + a.crop, x:x + a.crop] for k, y, x in zip(idx, cy, cx)])
            bm = np.stack([masks[k, y:y + a.crop, x:x + a.crop] for k, y, x in zip(idx, cy, cx)])
        else:
            bi = imgs[idx].copy()
            bm = masks[idx].copy()
        flips = gen.integers(0, 2, (a.batch, 2))
        for j in range(a.batch):
            if flips[j, 0]:
                bi[j], bm[j] = bi[j][:, ::-1], bm[j][:, ::-1]
            if flips[j, 1]:
                bi[j], bm[j] = bi[j][::-1], bm[j][::-1]
        x = to_input(bi, device)
        y = torch.from_numpy(bm.astype(np.float32))[:, None].to(device)
        y4 = F.avg_pool2d(y, 4)[:, 0]
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.steps, a.lr, a.warmup, time_frac=used() / budget if budget else 0.0)
        out = model(x)
        loss, bce, dice = loss_fn(out, y4, a.pos_weight)
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
        done = step == a.steps or (budget and used() >= budget)
        if step % a.val_every == 0 or done:
            tv = time.time()
            m = evaluate(model, vimgs, vmasks, device)
            log(logp, f"val step {step} " + " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                                      for k, v in m.items()) + f" ({time.time() - tv:.0f}s)")
            if m[a.select] > best["f1"]:
                best = {"f1": m[a.select], "step": step, "metrics": m}
                torch.save({"model": model.state_dict(), "step": step, "config": cfg.to_json(), "metrics": m,
                            "train_args": vars(a)}, os.path.join(a.out, "best.pt"))
                log(logp, f"new best val {a.select} {m[a.select]:.4f} at step {step} -> best.pt")
            tt = time.time()
            seg_start += time.time() - tv  # validation time does not count against the budget
        if time.time() - last_save > a.save_minutes * 60 or done:
            save_ckpt(last, model, opt, step, gen.bit_generator.state, cfg, a, best, perm, pos, used())
            last_save = time.time()
    log(logp, f"done: {step} steps, {used() / 60:.1f} min of training; best val f1 {best['f1']:.4f} at step {best['step']}")


# ------------------------------------------------------------------------------------------------
# export to the official checkpoint layout (+ `forge`)
# ------------------------------------------------------------------------------------------------


def export(a):
    ck = torch.load(a.ckpt, map_location="cpu", weights_only=False)
    cfg = MesorchConfig.from_json(ck["config"])
    model = Mesorch(cfg)
    model.load_state_dict(ck["model"], strict=True)  # also checks the key set
    calib = None
    if a.threshold:
        # Calibration: the global threshold that maximized validation F1 becomes 0.5. The fused
        # logit is a gate-weighted (softmax: weights sum to 1) or plain sum of the per-scale logits,
        # so moving every per-scale bias moves the fused logit, and p > t becomes p' > 0.5.
        t = a.threshold
        shift = -math.log(t / (1 - t))
        per_scale = shift / len(model.inverse) if cfg.is_p else shift
        with torch.no_grad():
            for conv in model.inverse:
                conv.bias += per_scale
        calib = {"threshold_moved_to_0.5": t, "logit_shift": shift}
        print(f"calibrated: p > {t} is now p > 0.5 (logit shift {shift:+.4f})")
    sd = model.state_dict()
    targs = ck.get("train_args", {})
    size = int(targs.get("size", a.size))
    args = argparse.Namespace(model="Mesorch", image_size=size, if_resizing=True, batch_size=targs.get("batch"),
                              lr=targs.get("lr"), weight_decay=targs.get("wd"), seed=targs.get("seed"),
                              steps=ck.get("step"), trained_by="wgpu-forge tools/train_mesorch.py",
                              data="tools/synth_forgery.py (synthetic forgeries of Debian-packaged photos)")
    obj = {"model": sd, "epoch": int(ck.get("step", 0)), "args": args,
           "forge": {"input_size": [size, size], "config": cfg.to_json(), "step": int(ck.get("step", 0)),
                     "val_metrics": ck.get("metrics"), "calibration": calib}}
    torch.save(obj, a.to)
    print(f"wrote {a.to}: {len(sd)} keys, {sum(v.numel() for v in sd.values()):,} params, input {size}x{size}")


@torch.no_grad()
def eval_folder(model, folder: str, size: int) -> dict:
    """A folder with manifest.csv (columns image/mask or image_file/mask_file, e.g. real-dev): each
    image resized to the input size (cv2 INTER_LINEAR, uint8), the probability map resized back to
    the image's own size (bilinear, align_corners=False) and scored there."""
    model.eval()
    rows = list(csv.DictReader(open(os.path.join(folder, "manifest.csv"), newline="")))
    per = []
    for r in rows:
        ip, mp = r.get("image") or r["image_file"], r.get("mask") or r["mask_file"]
        im = cv2.cvtColor(cv2.imread(os.path.join(folder, ip), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        gt = cv2.imread(os.path.join(folder, mp), cv2.IMREAD_GRAYSCALE) > 127
        h, w = im.shape[:2]
        x = cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR) if (h, w) != (size, size) else im
        prob = model(to_input(x[None], torch.device("cpu")))["prob"]
        prob = F.interpolate(prob, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()
        m = image_metrics(prob, gt)
        m["id"] = r.get("id") or r.get("stem") or ip
        per.append(m)
    out = {"n": len(per), "f1": float(np.mean([m["f1"] for m in per])),
           "iou": float(np.mean([m["iou"] for m in per])),
           "auc": float(np.nanmean([m["auc"] for m in per])),
           "per_image": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()} for m in per]}
    return out


def eval_cmd(a):
    torch.set_num_threads(a.threads)
    ck = torch.load(a.ckpt, map_location="cpu", weights_only=False)
    cfg = MesorchConfig.from_json(ck["config"] if "config" in ck else ck["forge"]["config"])
    model = Mesorch(cfg)
    model.load_state_dict(ck["model"])
    if a.folder:
        print(json.dumps(eval_folder(model, a.folder, a.size), indent=1))
        return
    imgs, masks, _ = load_split(a.data, a.split, a.size, os.path.join(a.out, "cache"))
    print(json.dumps(evaluate(model, imgs, masks, torch.device("cpu")), indent=1))


# ------------------------------------------------------------------------------------------------
# bench
# ------------------------------------------------------------------------------------------------


def bench(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cands = {
        "compact": {},
        "compact-d1": dict(cnx_depths=(1, 1, 1, 1), mit_depths=(1, 1, 1, 1)),
        "compact-narrow": dict(cnx_dims=(32, 64, 96, 128), mit_dims=(64, 128, 128, 192), mit_heads=(1, 2, 2, 3),
                               cnx_depths=(1, 1, 1, 1), mit_depths=(1, 1, 1, 1), gate_dim=32, gate_hidden=128),
    }
    if a.config:
        cands = {"custom": json.loads(a.config)}
    for name, over in cands.items():
        cfg = make_config(over)
        m = Mesorch(cfg)
        init_weights(m)
        opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
        x = torch.randn(a.batch, 3, a.size, a.size)
        y = (torch.rand(a.batch, a.size // 4, a.size // 4) > 0.9).float()
        ts = []
        for it in range(4):
            t = time.time()
            loss, _, _ = loss_fn(m(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            ts.append(time.time() - t)
        npar = sum(p.numel() for p in m.parameters())
        print(f"{name}: {npar:,} params, batch {a.batch} @ {a.size}: {np.median(ts[1:]):.3f} s/step "
              f"({np.median(ts[1:]) / a.batch * 1000:.0f} ms/img)", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["train", "bench", "export", "eval"])
    ap.add_argument("--data", default="/work/data/synth")
    ap.add_argument("--out", default="/work/data/train")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--config", default="", help="JSON overrides of the compact MesorchConfig")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--val-every", type=int, default=500)
    ap.add_argument("--val-n", type=int, default=0, help="validate on the first N val images (0 = all)")
    ap.add_argument("--time-budget-min", type=float, default=0.0,
                    help="stop after this many minutes of training (validation excluded; summed over resumes); "
                         "the cosine schedule then follows the time used, so the step count depends on the machine")
    ap.add_argument("--crop", type=int, default=0, help="train on random CROPxCROP crops (multiple of 32; 0 = whole)")
    ap.add_argument("--pos-weight", type=float, default=1.0, help="BCE weight of tampered pixels")
    ap.add_argument("--focus", type=float, default=0.0, help="share of crops centred on a tampered pixel")
    ap.add_argument("--skip-plain-copymove", action="store_true", help="train without copy-moves that have no resampling")
    ap.add_argument("--layer-scale", type=float, default=1e-6, help="initial ConvNeXt layer scale (timm: 1e-6)")
    ap.add_argument("--select", default="f1", choices=["f1", "f1_best", "auc_forged"],
                    help="validation metric that picks best.pt")
    ap.add_argument("--init", default="", help="initial model weights (a last.pt/best.pt of another run)")
    ap.add_argument("--save-minutes", type=float, default=4.0)
    ap.add_argument("--fresh", action="store_true", help="ignore OUT/last.pt")
    ap.add_argument("--cpu", action="store_true")
    ap.add_argument("--ckpt", default="")
    ap.add_argument("--to", default="")
    ap.add_argument("--split", default="val")
    ap.add_argument("--threshold", type=float, default=0.0,
                    help="export: fold this validation threshold into the biases so that it becomes 0.5")
    ap.add_argument("--folder", default="", help="eval: a folder with manifest.csv (e.g. real-dev) instead of a split")
    a = ap.parse_args(argv)
    {"train": train, "bench": bench, "export": export, "eval": eval_cmd}[a.cmd](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
