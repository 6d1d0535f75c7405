#!/usr/bin/env python3
"""The engine's CPU backend against PyTorch eager and ONNX Runtime on the same cores, in paired rounds.

On a shared VM the speed of all three drifts by 30% or more within minutes, so a median of each
taken minutes apart (one engine process after all the peers' runs) can put the ratio anywhere
from 0.6x to 1.3x. Here every round times the three back to back, within a few seconds:

    torch eager (model(x), no_grad) N times, ONNX Runtime (session.run) N times, each after one
    untimed call, the engine (one `wgpu-forge infer` process over N + 1 copies of the image: the
    first plans and warms)

and each round's medians give its ratios, summarized over rounds (median and range), beside the
median and the best times of each (the best is the least disturbed by the other tenants). The engine's time is its per-image figure (decode, resize, model, maps, report
written), the peers' the model call alone, so the ratio leans against the engine.

Model: the checkout's own PyTorch reference (tools/mesorch_ref.py, the official architecture)
with random official-shape weights, converted by `wgpu-forge convert`, at 512 x 512.

Usage:
    python3 tools/peer_cpu.py [--variants mesorch_p mesorch] [--rounds 6] [--per-round 3] [--threads 2]
                              [--bin target/release/wgpu-forge] [--engine-args "--backend cpu"]

Needs torch, onnxruntime, onnx, opencv-python-headless, pillow in the Python it runs with. Prints
one JSON line per variant (every run of every round) and a markdown row: model, rounds x runs,
median (best) seconds of torch, ONNX Runtime and the engine, the engine's ratio to each (median of
the rounds' ratios, and their range), the engine's peak RSS. Removes its work folder.
"""
import argparse, json, os, re, shutil, subprocess, sys, tempfile, time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def steal_jiffies():
    """CPU time the hypervisor gave to others (all CPUs), from /proc/stat; None where absent."""
    try:
        with open("/proc/stat") as f:
            return int(f.readline().split()[8])
    except (OSError, IndexError, ValueError):
        return None


def engine_round(cmd, out):
    """One engine process over the copies: (per-image s, model s) of each but the first, rss MiB."""
    p = subprocess.run(["/usr/bin/time", "-v", *cmd, "--out", out], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"engine failed (rc {p.returncode}): {p.stderr[-2000:]}")
    times = [(float(m.group(1)), float(m.group(2))) for m in re.finditer(r", ([0-9.]+) s \(GPU ([0-9.]+) s\)", p.stdout)]
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    if len(times) < 2:
        sys.exit(f"engine printed no per-image times: {p.stdout[-2000:]}")
    return times[1:], int(rss.group(1)) / 1024 if rss else None


def timed(f, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        out.append(time.perf_counter() - t)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=["mesorch_p", "mesorch"])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--per-round", type=int, default=3, help="runs of each per round (N)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "target", "release", "wgpu-forge"))
    ap.add_argument("--engine-args", default="--backend cpu")
    a = ap.parse_args()
    sys.path.insert(0, HERE)
    from make_mesorch_fixtures import init_weights, make_image, normalize, official_dict
    from mesorch_ref import Mesorch, full_config
    from PIL import Image
    import cv2
    import onnxruntime as ort

    torch.set_num_threads(a.threads)
    work = tempfile.mkdtemp(prefix="peer-cpu-")
    try:
        img = os.path.join(work, "img.png")
        Image.fromarray(make_image(512, 512, 7)).save(img)
        copies = [os.path.join(work, f"c{i}.png") for i in range(a.per_round + 1)]
        for c in copies:
            shutil.copy(img, c)
        x = normalize(cv2.resize(np.array(Image.open(img).convert("RGB")), (512, 512), interpolation=cv2.INTER_LINEAR))
        for v in a.variants:
            model = Mesorch(full_config(v)).eval()
            init_weights(model, 1)
            ckpt, st = os.path.join(work, f"{v}.pth"), os.path.join(work, f"{v}.safetensors")
            torch.save(official_dict(model.state_dict(), 1, v, False), ckpt)
            subprocess.run([a.bin, "convert", ckpt, st], check=True, capture_output=True)
            os.remove(ckpt)

            class Prob(torch.nn.Module):
                def __init__(s, m):
                    super().__init__()
                    s.m = m

                def forward(s, t):
                    return s.m(t)["prob"]

            onnx_path = os.path.join(work, f"{v}.onnx")
            with torch.no_grad():
                torch.onnx.export(Prob(model), (x,), onnx_path, opset_version=17, dynamo=False)
            so = ort.SessionOptions()
            so.intra_op_num_threads, so.inter_op_num_threads = a.threads, 1
            sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
            feed = {sess.get_inputs()[0].name: x.numpy()}
            cmd = [a.bin, *a.engine_args.split(), "infer", "--weights", st, *copies]
            rounds = []
            with torch.no_grad():
                model(x)
                sess.run(None, feed)
                for r in range(a.rounds):
                    # One untimed call of each peer first: the first call after the previous
                    # round's engine process ran up to 50% slower (its caches and pages gone), a
                    # penalty the engine's own first image (planning, not timed) never pays.
                    model(x)
                    sess.run(None, feed)
                    s0, t0 = steal_jiffies(), time.perf_counter()
                    tt = timed(lambda: model(x), a.per_round)
                    to = timed(lambda: sess.run(None, feed), a.per_round)
                    eng, rss = engine_round(cmd, os.path.join(work, f"out{r}"))
                    s1, t1 = steal_jiffies(), time.perf_counter()
                    steal = None if s0 is None else round((s1 - s0) / 100 / (t1 - t0) / os.cpu_count(), 3)
                    rounds.append({"torch_s": [round(t, 3) for t in tt], "ort_s": [round(t, 3) for t in to],
                                   "engine_s": [e for e, _ in eng], "engine_model_s": [m for _, m in eng],
                                   "engine_rss_mib": round(rss) if rss else None,
                                   "steal": steal, "load1": round(os.getloadavg()[0], 2)})
            os.remove(onnx_path)
            rmed = lambda q, k: float(np.median(q[k]))
            ratio_t = [rmed(q, "engine_s") / rmed(q, "torch_s") for q in rounds]
            ratio_o = [rmed(q, "engine_s") / rmed(q, "ort_s") for q in rounds]
            med = lambda k: round(float(np.median([t for q in rounds for t in q[k]])), 3)
            best = lambda k: round(min(t for q in rounds for t in q[k]), 3)
            res = {"variant": v, "threads": a.threads, "rounds": rounds, "engine_args": a.engine_args,
                   "torch_median_s": med("torch_s"), "ort_median_s": med("ort_s"), "engine_median_s": med("engine_s"),
                   "torch_best_s": best("torch_s"), "ort_best_s": best("ort_s"), "engine_best_s": best("engine_s"),
                   "engine_over_torch_median": round(float(np.median(ratio_t)), 3),
                   "engine_over_torch_range": [round(min(ratio_t), 3), round(max(ratio_t), 3)],
                   "engine_over_ort_median": round(float(np.median(ratio_o)), 3),
                   "engine_over_ort_range": [round(min(ratio_o), 3), round(max(ratio_o), 3)],
                   "engine_rss_mib": max(q["engine_rss_mib"] or 0 for q in rounds)}
            print(json.dumps(res), flush=True)
            print(f"| {v} | {a.rounds} x {a.per_round} | {res['torch_median_s']} ({res['torch_best_s']}) s "
                  f"| {res['ort_median_s']} ({res['ort_best_s']}) s | {res['engine_median_s']} ({res['engine_best_s']}) s "
                  f"| {res['engine_over_torch_median']}x ({res['engine_over_torch_range'][0]}-{res['engine_over_torch_range'][1]}) "
                  f"| {res['engine_over_ort_median']}x ({res['engine_over_ort_range'][0]}-{res['engine_over_ort_range'][1]}) "
                  f"| {res['engine_rss_mib']} MiB |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
