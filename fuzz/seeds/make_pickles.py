#!/usr/bin/env python3
"""Hand-made pickle seeds for the `pickle` fuzz target: the standard library's pickler, protocols
2 to 5, on the kinds of data a checkpoint's non-tensor entries hold (dicts, OrderedDicts, nested
lists, tuples, sets, bytes, big and negative ints, floats, shared and self-referencing containers,
an argparse-style object built with NEWOBJ + BUILD, a reference to os.system that must stay inert).

    python3 fuzz/seeds/make_pickles.py fuzz/seeds/pickle
"""
import argparse
import collections
import os
import pickle
import sys


class Namespace:  # pickled as __main__.Namespace via NEWOBJ + BUILD, like argparse.Namespace
    def __init__(self, **kw):
        self.__dict__.update(kw)


def data():
    shared = [1, 2, 3]
    selfref = ["loop"]
    selfref.append(selfref)
    od = collections.OrderedDict([("layer.weight", 1.5), ("layer.bias", -2), ("_metadata", {"": {"version": 1}})])
    return {
        "dict": {"epoch": 98, "lr": 1e-4, "name": "mesorch", "flags": [True, False, None]},
        "ordered": od,
        "nested": [[1, [2, [3, [4, [5]]]]], (6, (7, (8,))), {"k": {"k": {"k": "v"}}}],
        "ints": [0, 1, 255, 256, 65535, 65536, -1, -(2**31), 2**31 - 1, 2**40, -(2**63), 2**64, 2**200, -(2**100)],
        "floats": [0.0, -0.0, 1.5, 1e308, float("inf"), float("-inf"), float("nan")],
        "strings": ["", "a", "é€𝄞", "x" * 300],
        "bytes": [b"", b"\x00\xff", bytes(range(256)), bytearray(b"ba")],
        "sets": [{1, 2, 3}, frozenset({"a", "b"})],
        "shared": [shared, shared, (shared, shared)],
        "selfref": selfref,
        "object": Namespace(lr=1e-4, input_size=[512, 512], cmd=os.system),
        "tuple_sizes": [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    sys.modules["__main__"].Namespace = Namespace
    d = data()
    for proto in (2, 3, 4, 5):
        with open(os.path.join(a.out, f"py_all_p{proto}.pkl"), "wb") as f:
            pickle.dump(d, f, protocol=proto)
    for key in ("ordered", "ints", "bytes", "selfref", "object"):
        with open(os.path.join(a.out, f"py_{key}_p4.pkl"), "wb") as f:
            pickle.dump(d[key], f, protocol=4)


if __name__ == "__main__":
    main()
