#!/usr/bin/env python3
"""Peer numbers for docs/BENCHMARKS.md: the same kernels in numpy (OpenBLAS) on the same machine.

Usage: python3 tools/peer_bench.py   (needs numpy; prints a markdown table)
"""
import time

import numpy as np


def best_of(fn, reps=7):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def gemm(m, n, k):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    t = best_of(lambda: a @ b)
    return 2.0 * m * n * k / t / 1e9, t


def attention(lq, lk, heads, d):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((heads, lq, d), dtype=np.float32)
    k = rng.standard_normal((heads, lk, d), dtype=np.float32)
    v = rng.standard_normal((heads, lk, d), dtype=np.float32)

    def run():
        s = q @ k.transpose(0, 2, 1) * (d ** -0.5)
        s -= s.max(axis=-1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
        return s @ v

    t = best_of(run)
    return 4.0 * lq * lk * d * heads / t / 1e9, t


def main():
    print(f"numpy {np.__version__}, median of 7 after one warm-up")
    print("| kernel | shape | median ms | GFLOP/s |")
    print("| --- | --- | --- | --- |")
    for m, n, k in [(1024, 1024, 1024), (16384, 256, 64), (4096, 512, 128), (1024, 1280, 320), (256, 2048, 512)]:
        g, t = gemm(m, n, k)
        print(f"| GEMM | {m}x{k} @ {k}x{n} | {t * 1e3:.2f} | {g:.1f} |")
    for lq, lk, h, d in [(16384, 256, 1, 64), (4096, 256, 2, 64), (1024, 256, 5, 64), (256, 256, 8, 64)]:
        g, t = attention(lq, lk, h, d)
        print(f"| attention | Lq {lq}, Lk {lk}, heads {h}, D {d} | {t * 1e3:.2f} | {g:.1f} |")


if __name__ == "__main__":
    main()
