"""Side-by-side figures of down-sampling reads: reduced JPEG 2000 level vs full decode.

Runs :class:`benchmarks.bench_read.DownsampledRead`'s cubes (band B04 of one product
onto a grid 2x and 4x coarser than the band) each in a fresh subprocess, so no GDAL
block cache or open handle carries over between runs; rounds are interleaved and the
medians reported, with the CPU time (user + system, all threads) of each run.

    python -m benchmarks.compare_reads --scale 1 --rounds 3 --out reads.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

FACTORS = (2, 4)


def _run(factor: int, method: str) -> dict:
    """Body of one subprocess: build the cube (metadata only), then time its compute."""
    import dask
    import numpy as np

    from .bench_read import downsampled_cube

    cube = downsampled_cube(factor, method)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        values = cube.compute().values
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu0,
        "output_shape": list(values.shape[-2:]),
        "source_mpix": values.size * factor * factor / 1e6,
        "valid_fraction": float(np.mean(values != 0)),
        "load_before": os.getloadavg()[0],
    }


def main() -> None:
    from .bench_read import METHODS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        factor, method = args.worker.split(":")
        print(json.dumps(_run(int(factor), method)))
        return
    env = {**os.environ, "SENTINEL_CUBE_BENCH_SCALE": str(args.scale)}
    cases = [(f, m) for f in FACTORS for m in METHODS]
    runs: dict[str, list[dict]] = {f"{f}:{m}": [] for f, m in cases}
    for _ in range(args.rounds):  # interleaved: round 1 of every case, then round 2...
        for key in runs:
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.compare_reads", "--worker", key],
                capture_output=True, text=True, env=env, check=True,
            )  # fmt: skip
            runs[key].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"| factor | method | wall s (median of {args.rounds}) | CPU s | source MPix/s | "
          "x full_nearest | all runs (s) |")  # fmt: skip
    print("|---:|---|---:|---:|---:|---:|---|")
    report = {}
    for factor in FACTORS:
        base = statistics.median(r["seconds"] for r in runs[f"{factor}:full_nearest"])
        for method in METHODS:
            rows = runs[f"{factor}:{method}"]
            wall = statistics.median(r["seconds"] for r in rows)
            cpu = statistics.median(r["cpu_seconds"] for r in rows)
            rate = rows[0]["source_mpix"] / wall
            every = ", ".join(f"{r['seconds']:.2f}" for r in rows)
            print(f"| {factor} | {method} | {wall:.2f} | {cpu:.2f} | {rate:.1f} | "
                  f"{base / wall:.2f} | {every} |")  # fmt: skip
            report[f"{factor}:{method}"] = {"wall": wall, "cpu": cpu, "runs": rows}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
