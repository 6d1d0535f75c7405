#!/usr/bin/env python3
"""Export the state_dicts of the tiny official-format fixture checkpoints as plain safetensors.

The Rust model tests read these so the model graphs can be checked independently of the checkpoint
reader; the reader's own tests check that converting the .pth files gives the same tensors.
Usage: python3 tools/export_fixture_weights.py  (needs torch, safetensors)
"""
import os

import torch
from safetensors.torch import save_file

DIR = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "mesorch")

for stem in ["mesorch_tiny", "mesorch_p_tiny"]:
    ck = torch.load(os.path.join(DIR, stem + ".pth"), map_location="cpu", weights_only=False)
    sd = {k: v.float().contiguous() for k, v in ck["model"].items()}
    out = os.path.join(DIR, stem + ".weights.safetensors")
    save_file(sd, out)
    print(f"{out}: {len(sd)} tensors, {sum(v.numel() for v in sd.values()):,} params")
