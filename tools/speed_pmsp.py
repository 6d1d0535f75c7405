#!/usr/bin/env python3
"""Same-run speed of PMSP-Net: `wgpu-forge infer` against our PyTorch reference (tools/pmsp_ref.py)
and ONNX Runtime on the same CPU cores, at the paper's 576x576 (docs/BENCHMARKS.md).

For each backbone: random weights (BatchNorm statistics randomized), saved as a checkpoint with the
input size, converted by `wgpu-forge convert`; one 576x576 JPEG-compressed picture. Timed, each a
median over --reps after a warm-up:
- torch, model: the network alone on prepared inputs (N threads);
- torch, whole path: decode (cv2), ELA at the image's size (tools/ela_ref.py, numpy), the two
  resizes, normalization, the network, and the map resized back: what `infer` does per image;
- ORT, model: the network exported to ONNX, CPU provider (N threads);
- engine: one `wgpu-forge infer` process over reps+1 copies of the image (planned once); the
  per-image time it prints (decode + ELA + preprocess + GPU + postprocess + writing the outputs),
  the first image apart, and the process's peak RSS.

    python3 tools/speed_pmsp.py [--backbones mobilenet_v1 efficientnet_lite0] [--reps 3] [--threads 2]

Run it on an idle machine. Needs torch, numpy, opencv-python-headless; onnx and onnxruntime
unless --no-ort.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ela_ref import ela  # noqa: E402
from make_pmsp_fixtures import init_weights  # noqa: E402
from parity_pmsp import picture  # noqa: E402
from pmsp_ref import Pmsp, PmspConfig, prepare, randomize_bn, reference  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def median_time(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return round(float(np.median(ts)), 3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", nargs="+", default=["mobilenet_v1", "efficientnet_lite0"])
    ap.add_argument("--size", type=int, default=576)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-ort", action="store_true")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/wgpu-forge"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    work = tempfile.mkdtemp(prefix="speed-pmsp-")
    img = picture(a.size, a.size, 7)
    path = os.path.join(work, "img.jpg")
    cv2.imwrite(path, img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    copies = []
    for i in range(a.reps + 1):
        c = os.path.join(work, f"c{i}.jpg")
        os.link(path, c)
        copies.append(c)
    for bb in a.backbones:
        cfg = PmspConfig(backbone=bb, input=(a.size, a.size))
        model = Pmsp(cfg).eval()
        init_weights(model, 1)
        randomize_bn(model, 2)
        ckpt = os.path.join(work, f"{bb}.pth")
        torch.save({"model": model.state_dict(), "forge": {"input_size": list(cfg.input), "config": cfg.to_json()}},
                   ckpt)
        st = os.path.join(work, f"{bb}.safetensors")
        subprocess.run([a.bin, "convert", ckpt, st], check=True, capture_output=True)
        params = sum(p.numel() for p in model.parameters())

        def whole_path():
            return reference(model, cfg, cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))

        im = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        rgb, e = prepare(im, cfg)
        with torch.no_grad():
            t_model = median_time(lambda: model(rgb, e), a.reps)
        t_path = median_time(whole_path, a.reps)
        t_ela = median_time(lambda: ela(im, cfg.ela_quality), a.reps)
        t_ort, ort_diff = None, None
        if not a.no_ort:
            import onnxruntime as ort

            class Wrap(torch.nn.Module):
                def __init__(self, m):
                    super().__init__()
                    self.m = m

                def forward(self, x, y):
                    return self.m(x, y)["prob"]
            onnx_path = os.path.join(work, f"{bb}.onnx")
            with torch.no_grad():
                torch.onnx.export(Wrap(model).eval(), (rgb, e), onnx_path, opset_version=17, dynamo=False)
            so = ort.SessionOptions()
            so.intra_op_num_threads, so.inter_op_num_threads = a.threads, 1
            sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
            feed = {sess.get_inputs()[0].name: rgb.numpy(), sess.get_inputs()[1].name: e.numpy()}
            with torch.no_grad():
                ort_diff = float(np.abs(sess.run(None, feed)[0] - model(rgb, e)["prob"].numpy()).max())
            t_ort = median_time(lambda: sess.run(None, feed), a.reps)
        t = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-v", a.bin, "infer", "--weights", st, "--out", os.path.join(work, "out"),
                            *copies], capture_output=True, text=True)
        proc_s = time.perf_counter() - t
        per = [float(m.group(1)) for m in re.finditer(r", ([0-9.]+) s \(GPU", p.stdout)]
        rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
        eng = round(float(np.median(per[1:])), 3) if len(per) > 1 else None
        res = {"backbone": bb, "size": a.size, "params": params, "threads": a.threads,
               "torch_model_s": t_model, "torch_path_s": t_path, "numpy_ela_s": t_ela,
               "ort_model_s": t_ort, "ort_max_abs_diff": ort_diff,
               "engine_first_s": per[0] if per else None, "engine_median_s": eng,
               "engine_process_s": round(proc_s, 1), "engine_rss_mib": round(int(rss.group(1)) / 1024) if rss else None,
               "engine_rc": p.returncode, "load": [round(x, 2) for x in os.getloadavg()],
               "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
        if eng:
            res["engine_over_torch_model"] = round(eng / t_model, 2)
            res["engine_over_torch_path"] = round(eng / t_path, 2)
        if p.returncode:
            res["engine_stderr"] = p.stderr[-500:]
        print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
