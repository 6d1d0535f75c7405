#!/usr/bin/env python3
"""Run a folder of photos through wgpu-forge on Ray Data, resumably.

Each actor of `map_batches` starts one `wgpu-forge serve` process (the model is planned once per
actor) and sends it the images of its batches over loopback (Open Inference Protocol v2). Give an
actor a GPU with --gpus-per-actor 1: Ray then sets CUDA_VISIBLE_DEVICES for it, and wgpu-forge
opens that GPU (docs/deploy.md). The driver appends one JSON line per image to OUT.jsonl, in the
format of `wgpu-forge infer --jsonl` (the report, plus the file's sha256), and on start skips the
images whose (path, sha256) are already there: kill it at any point, run it again, and every
image ends up in OUT.jsonl exactly once. The two are interchangeable: `infer --jsonl` can finish
a file this script started, and the other way round.

    python3 examples/ray/forge_ray.py PHOTOS/ OUT.jsonl [--model ela] [--actors 2]
"""

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import urllib.request

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def read_done(jsonl):
    """(file, sha256) of every report line, and whether the file ends inside a line. A line cut
    short by a kill is skipped (its image is done again); the file is never rewritten, as with
    `wgpu-forge infer --jsonl`."""
    done = set()
    if not os.path.exists(jsonl):
        return done, False
    with open(jsonl, "rb") as f:
        data = f.read()
    for n, line in enumerate(data.splitlines(), 1):
        try:
            v = json.loads(line)
            done.add((v["file"], v["sha256"]))
        except json.JSONDecodeError:
            # Cut short: an object's start without its end.
            if line.strip() and not (line.startswith(b"{") and not line.rstrip().endswith(b"}")):
                sys.exit(f"{jsonl}: line {n} is not a wgpu-forge report line; choose another file")
        except (KeyError, TypeError):
            sys.exit(f"{jsonl}: line {n} is not a wgpu-forge report line; choose another file")
    return done, bool(data) and not data.endswith(b"\n")


def _die_with_parent():
    """Linux: the server gets SIGTERM when its actor dies, even by SIGKILL (no orphaned servers)."""
    try:
        import ctypes
        import signal
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Forge:
    """One `wgpu-forge serve` per actor, alive for the actor's life."""

    def __init__(self, binary, model):
        self.proc = subprocess.Popen(
            [binary, "serve", "--addr", "127.0.0.1:0", "--model", model, "--queue", "4"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_die_with_parent,
        )
        for line in self.proc.stderr:
            sys.stderr.write(line)
            if "http://" in line:
                self.url = line.split("http://")[1].split()[0]
                self.url = "http://" + self.url
                break
        else:
            raise RuntimeError(f"wgpu-forge serve ended before listening (exit {self.proc.wait()})")

    def analyse(self, path):
        with open(path, "rb") as f:
            image = f.read()
        body = json.dumps({
            "id": path,
            "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                        "data": [base64.b64encode(image).decode()]}],
            "outputs": [{"name": "report"}],
        }).encode()
        req = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=600) as r:
                answer = json.load(r)
        except urllib.error.HTTPError as e:
            return None, f"{path}: HTTP {e.code}: {e.read().decode(errors='replace')}"
        report = json.loads(answer["outputs"][0]["data"][0])
        report["sha256"] = hashlib.sha256(image).hexdigest()
        return report, None

    def __call__(self, batch):
        lines, errors = [], []
        for path in batch["path"]:
            report, error = self.analyse(str(path))
            lines.append(json.dumps(report, separators=(",", ":")) if report else "")
            errors.append(error or "")
        return {"path": batch["path"], "line": lines, "error": errors}

    def __del__(self):
        if getattr(self, "proc", None) and self.proc.poll() is None:
            self.proc.terminate()  # graceful: in-flight requests finish
            self.proc.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("jsonl")
    ap.add_argument("--model", default="ela")
    ap.add_argument("--binary", default=os.environ.get("WGPU_FORGE", "wgpu-forge"))
    ap.add_argument("--actors", type=int, default=1)
    ap.add_argument("--gpus-per-actor", type=float, default=0)
    ap.add_argument("--batch-size", type=int, default=4)
    args = ap.parse_args()

    import ray

    files = sorted(
        os.path.join(args.folder, f) for f in os.listdir(args.folder)
        if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS
    )
    done, unfinished = read_done(args.jsonl)
    todo = [p for p in files if (p, sha256_file(p)) not in done]
    print(f"forge_ray: {len(files)} images, {len(files) - len(todo)} already in {args.jsonl}, {len(todo)} to do",
          file=sys.stderr, flush=True)
    if not todo:
        return 0
    ray.init(include_dashboard=False, num_cpus=max(2, args.actors), log_to_driver=False)
    ds = ray.data.from_items([{"path": p} for p in todo], override_num_blocks=max(1, len(todo) // args.batch_size))
    results = ds.map_batches(
        Forge,
        fn_constructor_kwargs={"binary": os.path.abspath(args.binary) if os.sep in args.binary else args.binary,
                               "model": args.model},
        batch_size=args.batch_size,
        num_gpus=args.gpus_per_actor,
        compute=ray.data.ActorPoolStrategy(size=args.actors),
    )
    failed = 0
    # The driver is the only writer: one line per image, flushed as each batch arrives.
    with open(args.jsonl, "a") as out:
        if unfinished:
            out.write("\n")  # the torn line stays; ours starts on a line of its own
        for batch in results.iter_batches(batch_size=None):
            for line, error in zip(batch["line"], batch["error"]):
                if error:
                    failed += 1
                    print(f"forge_ray: {error}", file=sys.stderr, flush=True)
                else:
                    out.write(line + "\n")
                    out.flush()
    print(f"forge_ray: done, {failed} failed", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
