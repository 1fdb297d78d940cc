"""Side-by-side figures of the cube operations against their usual replacements.

Each method runs in a fresh subprocess on the same cube (generated once, read into
memory before timing), so its peak RSS is its own. Medians over ``--rounds``.

    python -m benchmarks.compare_ops --scale 10 --dates 6 --rounds 3 --out ops.json

Methods: exact percentiles (``sentinel_cube.cube_percentiles``) vs a plain ``max``
reduction vs ``dask.array.percentile`` (approximate) vs ``numpy.nanpercentile`` on the
computed array; ``sentinel_cube.clip`` vs ``rio.clip``; ``sentinel_cube.aggregate``
(flox) vs ``resample(...).median()`` without flox.
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

METHODS = {
    "max (plain reduction)": "stretch_max",
    "exact percentiles (sentinel_cube)": "stretch_exact",
    "dask.array.percentile (approximate)": "stretch_dask",
    "numpy.nanpercentile (computed array)": "stretch_numpy",
    "clip (sentinel_cube)": "clip_ours",
    "rio.clip": "clip_rio",
    "aggregate monthly median (flox)": "aggregate_flox",
    "resample().median() without flox": "aggregate_plain",
}


def _run(method: str, dates: int) -> dict:
    """Body of one subprocess: build the cube in memory, time the method once."""
    import dask
    import dask.array as da
    import numpy as np
    import xarray as xr

    import sentinel_cube as sc
    from sentinel_cube.ops._clip import aoi_in_crs

    from .bench_ops import AOI, _cube

    cube = _cube(dates=dates)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result: object = None
    start = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        if method == "stretch_max":
            result = cube.max(("time", "y", "x")).values
        elif method == "stretch_exact":
            result = sc.cube_percentiles(cube, (2, 98)).values
        elif method == "stretch_dask":
            result = [
                da.percentile(v[~da.isnan(v)], [2, 98]).compute()
                for v in (cube.data[:, b].ravel() for b in range(cube.sizes["band"]))
            ]
        elif method == "stretch_numpy":
            values = cube.values
            result = [np.nanpercentile(values[:, b], [2, 98]) for b in range(values.shape[1])]
        elif method == "clip_ours":
            result = sc.clip(cube, AOI).compute().shape
        elif method == "clip_rio":
            geometry = aoi_in_crs(AOI, cube.rio.crs)
            result = cube.rio.clip([geometry], cube.rio.crs, drop=True).compute().shape
        elif method == "aggregate_flox":
            result = sc.aggregate(cube, freq="MS", how="median").compute().shape
        elif method == "aggregate_plain":
            with xr.set_options(use_flox=False):
                result = cube.resample(time="MS").median().compute().shape
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "seconds": seconds,
        "peak_mb": peak / 1024,
        "growth_mb": (peak - base) / 1024,
        "pixels": int(cube.size),
        "result": str(result)[:200],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--dates", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_run(args.worker, args.dates)))
        return
    env = {**os.environ, "SENTINEL_CUBE_BENCH_SCALE": str(args.scale)}
    rows = {}
    for label, method in METHODS.items():
        runs = []
        for _ in range(args.rounds):
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.compare_ops", "--worker", method,
                 "--dates", str(args.dates)],
                capture_output=True, text=True, env=env, check=True,
            )  # fmt: skip
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        rows[label] = {
            "seconds": statistics.median(r["seconds"] for r in runs),
            "peak_mb": statistics.median(r["peak_mb"] for r in runs),
            "growth_mb": statistics.median(r["growth_mb"] for r in runs),
            "mpix": runs[0]["pixels"] / 1e6,
            "result": runs[0]["result"],
        }
    plain = rows["max (plain reduction)"]["seconds"]
    print(f"| method | s (median of {args.rounds}) | MPix/s | x plain max | peak RSS MB | "
          "RSS growth MB |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for label, row in rows.items():
        rate = row["mpix"] / row["seconds"]
        print(f"| {label} | {row['seconds']:.3f} | {rate:.0f} | {row['seconds'] / plain:.2f} | "
              f"{row['peak_mb']:.0f} | {row['growth_mb']:.0f} |")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
