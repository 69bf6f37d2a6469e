#!/usr/bin/python3
"""Peer of `npm run bench -- svd`: torch.linalg.svd(W, full_matrices=False) on the matrices Sculpt decomposes.

  svd_peer.py --probe                          versions, BLAS/LAPACK libraries, threads, matmul rate (JSON)
  svd_peer.py --file F --shapes '[[m,n],...]' [--reps R] [--dtype float32|float64]
      F holds the matrices back to back as little-endian float32, row-major, in --shapes order. Prints JSON:
      {"total": [seconds per rep], "shapes": {"MxN": [seconds per rep for all matrices of that shape]}}

Run with Debian's /usr/bin/python3 and python3-torch; install libopenblas0-pthread too, or torch falls back to
the reference BLAS, which is not what a user would run.
"""
import argparse
import json
import os
import sys
import time


def mapped_libraries():
    try:
        with open('/proc/self/maps') as f:
            paths = {line.split()[-1] for line in f if len(line.split()) >= 6}
        return sorted(p for p in paths if any(s in p for s in ('blas', 'lapack', 'mkl')))
    except OSError:
        return []


def openblas_threads():
    """OpenBLAS keeps its own thread pool beside torch's intra-op threads; ask it how many it uses."""
    import ctypes

    for path in mapped_libraries():
        if 'openblas' in path:
            try:
                return ctypes.CDLL(path).openblas_get_num_threads()
            except (OSError, AttributeError):
                pass
    return None


def probe():
    import torch

    a = torch.randn(1024, 1024)
    a @ a
    reps = 5
    t = time.perf_counter()
    for _ in range(reps):
        a @ a
    gflops = reps * 2 * 1024**3 / (time.perf_counter() - t) / 1e9
    torch.linalg.svd(torch.randn(64, 32), full_matrices=False)
    print(json.dumps({
        'openblas_threads': openblas_threads(),
        'python': sys.version.split()[0],
        'torch': torch.__version__,
        'torch_threads': torch.get_num_threads(),
        'blas_libraries': mapped_libraries(),
        'matmul_1024_f32_gflops': round(gflops, 1),
        'env': {k: v for k, v in os.environ.items() if k.startswith(('OPENBLAS_', 'OMP_', 'MKL_'))},
    }))


def run(path, shapes, reps, dtype, device='cpu'):
    import numpy as np
    import torch

    flat = np.fromfile(path, dtype='<f4')
    expected = sum(m * n for m, n in shapes)
    if flat.size != expected:
        sys.exit(f'svd_peer: {path} holds {flat.size} floats, the shapes need {expected}')
    mats, offset = [], 0
    for m, n in shapes:
        mats.append(torch.from_numpy(flat[offset:offset + m * n].reshape(m, n).copy()).to(getattr(torch, dtype)).to(device))
        offset += m * n
    torch.linalg.svd(mats[0][:64, :64], full_matrices=False)  # thread pool and LAPACK workspace warm-up
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
    for w in mats[:4]:
        torch.linalg.svd(w, full_matrices=False)  # cuSOLVER handles and workspaces per shape
    sync()

    groups = {}
    for i, (m, n) in enumerate(shapes):
        groups.setdefault(f'{m}x{n}', []).append(i)
    out = {'total': [], 'shapes': {k: [] for k in groups}}
    for _ in range(reps):
        t = time.perf_counter()
        for w in mats:
            torch.linalg.svd(w, full_matrices=False)
        sync()
        out['total'].append(time.perf_counter() - t)
        for key, idx in groups.items():
            t = time.perf_counter()
            for i in idx:
                torch.linalg.svd(mats[i], full_matrices=False)
            sync()
            out['shapes'][key].append(time.perf_counter() - t)
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--probe', action='store_true')
    ap.add_argument('--file')
    ap.add_argument('--shapes')
    ap.add_argument('--reps', type=int, default=1)
    ap.add_argument('--dtype', default='float32', choices=['float32', 'float64'])
    ap.add_argument('--device', default='cpu', help='cpu or cuda (cuSOLVER)')
    args = ap.parse_args()
    if args.probe:
        probe()
    elif args.file and args.shapes:
        run(args.file, json.loads(args.shapes), args.reps, args.dtype, args.device)
    else:
        ap.error('give --probe, or --file and --shapes')


if __name__ == '__main__':
    main()
