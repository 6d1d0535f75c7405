#!/usr/bin/env python3
"""Peak resident memory of the peers, to set beside the engine's (which
`../shared/tools/peer_speed.py` prints as engine_rss_mib): PyTorch eager running the full-size
Mesorch / Mesorch-P reference (tools/mesorch_ref.py, random official-shape weights) on a 512x512
input, two forward passes under torch.no_grad(), each variant in a fresh process under
`/usr/bin/time -v`, so the number includes the interpreter and torch itself, as the engine's
includes its binary.

    python3 tools/peer_rss.py [--variants mesorch_p mesorch] [--threads 2]

Prints one JSON line per variant: {"variant", "torch_rss_mib", "torch_version"}.
"""
import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = """
import sys, torch
sys.path.insert(0, {here!r})
from make_mesorch_fixtures import init_weights
from mesorch_ref import Mesorch, full_config
torch.set_num_threads({threads})
model = Mesorch(full_config({variant!r})).eval()
init_weights(model, 2025)
x = torch.randn(1, 3, 512, 512)
with torch.no_grad():
    for _ in range(2):
        model(x)
print(torch.__version__)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=["mesorch_p", "mesorch"])
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    for v in a.variants:
        code = CHILD.format(here=HERE, threads=a.threads, variant=v)
        p = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", code], capture_output=True, text=True)
        if p.returncode != 0:
            print(p.stderr[-2000:], file=sys.stderr)
            return 1
        rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
        print(json.dumps({"variant": v, "torch_rss_mib": round(int(rss.group(1)) / 1024),
                          "torch_version": p.stdout.strip().splitlines()[-1]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
