"""Side-by-side figures of the cube operations against their usual replacements.

Each (method, round) runs in a fresh subprocess, rounds interleaved (round 1 of every
method, then round 2...), so its peak RSS is its own; medians over ``--rounds``.

    python -m benchmarks.compare_ops --scale 10 --dates 6 --rounds 3 --out ops.json
    python -m benchmarks.compare_ops --scale 5 --dates 3 --rounds 5 --only zarr

In-memory methods (the cube is read from the JP2s into memory before timing): exact
percentiles (``sentinel_cube.cube_percentiles``) vs a plain ``max`` reduction vs
``dask.array.percentile`` (approximate) vs ``numpy.nanpercentile`` on the computed
array; ``sentinel_cube.clip`` vs ``rio.clip``; ``sentinel_cube.aggregate`` (flox) vs
``resample(...).median()`` without flox.

From a Zarr store (``zarr`` methods; the cube written once by ``sentinel_cube.to_zarr``
beside the archive, opened with ``sentinel_cube.open_zarr``), for reflectance (float32)
and DN (uint16) cubes: a plain ``max`` over (time, y, x) per band; ``stretch``, i.e.
``sentinel_cube.stretch(cube, (2, 98))``, which computes the exact per-band
percentiles then (its only pass over the data: the stretched pixels stay lazy); and
``stretch + pixels``, which computes the stretched uint8 cube too (a second pass);
``persist, stretch + pixels``, the same after ``cube.persist()`` (each chunk read once,
the cube held in memory). The report gives the ratios to ``max`` per round and their
median.
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
    "max from Zarr, reflectance": "zarr_max_reflectance",
    "stretch from Zarr, reflectance": "zarr_stretch_reflectance",
    "stretch + pixels from Zarr, reflectance": "zarr_pixels_reflectance",
    "persist, stretch + pixels from Zarr, reflectance": "zarr_persisted_reflectance",
    "max from Zarr, DN": "zarr_max_dn",
    "stretch from Zarr, DN": "zarr_stretch_dn",
    "stretch + pixels from Zarr, DN": "zarr_pixels_dn",
    "persist, stretch + pixels from Zarr, DN": "zarr_persisted_dn",
}
#: What the ratio rows call the zarr methods compared with ``max``.
RATIO_LABELS = {
    "stretch": "stretch",
    "pixels": "stretch + pixels",
    "persisted": "persist, stretch + pixels",
}
#: (units, method compared with max, the max)
RATIOS = [
    (units, f"zarr_{kind}_{units}", f"zarr_max_{units}")
    for units in ("reflectance", "dn")
    for kind in RATIO_LABELS
]


def _run(method: str, dates: int) -> dict:
    """Body of one subprocess: time the method once."""
    import dask

    if method.startswith("zarr_"):
        setup, work = _zarr_method(method, dates)
    else:
        setup, work = _memory_method(method, dates)
    cube = setup()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    load = os.getloadavg()[0]
    cpu = os.times()
    start = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        result = work(cube)
    seconds = time.perf_counter() - start
    after = os.times()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "seconds": seconds,
        "cpu_seconds": after.user + after.system - cpu.user - cpu.system,
        "load": load,
        "peak_mb": peak / 1024,
        "growth_mb": (peak - base) / 1024,
        "pixels": int(cube.size),
        "result": str(result)[:200],
    }


def _zarr_method(method: str, dates: int):
    import sentinel_cube as sc

    from ._data import ingest_store

    _, kind, units = method.split("_")
    store = ingest_store(dates=dates, units=units)

    def setup():
        return sc.open_zarr(store)

    def work(cube):
        if kind == "max":
            return cube.max(("time", "y", "x")).values
        if kind == "persisted":  # read once, into memory
            cube = cube.persist()
        stretched = sc.stretch(cube, (2, 98))  # the percentiles are computed now
        if kind != "stretch":
            stretched = stretched.compute()
        return stretched.stretch_high.values

    return setup, work


def _memory_method(method: str, dates: int):
    import dask.array as da
    import numpy as np
    import xarray as xr

    import sentinel_cube as sc
    from sentinel_cube.ops._clip import aoi_in_crs

    from .bench_ops import AOI, _cube

    def setup():
        return _cube(dates=dates)

    def work(cube):
        if method == "stretch_max":
            return cube.max(("time", "y", "x")).values
        if method == "stretch_exact":
            return sc.cube_percentiles(cube, (2, 98)).values
        if method == "stretch_dask":
            return [
                da.percentile(v[~da.isnan(v)], [2, 98]).compute()
                for v in (cube.data[:, b].ravel() for b in range(cube.sizes["band"]))
            ]
        if method == "stretch_numpy":
            values = cube.values
            return [np.nanpercentile(values[:, b], [2, 98]) for b in range(values.shape[1])]
        if method == "clip_ours":
            return sc.clip(cube, AOI).compute().shape
        if method == "clip_rio":
            geometry = aoi_in_crs(AOI, cube.rio.crs)
            return cube.rio.clip([geometry], cube.rio.crs, drop=True).compute().shape
        if method == "aggregate_flox":
            return sc.aggregate(cube, freq="MS", how="median").compute().shape
        if method == "aggregate_plain":
            with xr.set_options(use_flox=False):
                return cube.resample(time="MS").median().compute().shape
        raise ValueError(f"unknown method {method!r}")

    return setup, work


def _selected(only: str | None) -> dict[str, str]:
    """Methods whose key starts with one of the comma-separated prefixes of ``only``."""
    if not only:
        return dict(METHODS)
    prefixes = tuple(w.strip() for w in only.split(",") if w.strip())
    return {label: key for label, key in METHODS.items() if key.startswith(prefixes)}


def _ratio_rows(runs: dict[str, list[dict]]) -> list[str]:
    """Markdown rows: stretch / max per units, per round and as a median."""
    rows = []
    for units, stretch, plain in RATIOS:
        if not runs.get(stretch) or not runs.get(plain):
            continue
        pairs = list(zip(runs[stretch], runs[plain], strict=False))
        wall = [s["seconds"] / m["seconds"] for s, m in pairs]
        cpu = [s["cpu_seconds"] / m["cpu_seconds"] for s, m in pairs]
        label = RATIO_LABELS[stretch.split("_")[1]]
        rows.append(
            f"| {label} / max | {units} | {statistics.median(wall):.2f} | "
            f"{', '.join(f'{r:.2f}' for r in wall)} | {statistics.median(cpu):.2f} |"
        )
    return rows


def main(argv: list[str] | None = None) -> dict:
    """Run the comparison, print its Markdown tables; return the report (rows and runs)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--dates", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=None, help="comma-separated key prefixes, e.g. zarr,clip")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = _run(args.worker, args.dates)
        print(json.dumps(result))
        return result
    env = {**os.environ, "SENTINEL_CUBE_BENCH_SCALE": str(args.scale)}
    methods = _selected(args.only)
    if any(key.startswith("zarr_") for key in methods.values()):
        # write the stores (and generate the archive) before any timing
        code = "import sys; from benchmarks._data import ingest_store as s; " + "; ".join(
            f"s(dates={args.dates}, units={u!r})" for u in ("reflectance", "dn")
        )
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
    runs: dict[str, list[dict]] = {key: [] for key in methods.values()}
    for _ in range(args.rounds):
        for key in methods.values():
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.compare_ops", "--worker", key,
                 "--dates", str(args.dates)],
                capture_output=True, text=True, env=env, check=True,
            )  # fmt: skip
            runs[key].append(json.loads(out.stdout.strip().splitlines()[-1]))
    rows = {}
    for label, key in methods.items():
        done = runs[key]
        rows[label] = {
            "seconds": statistics.median(r["seconds"] for r in done),
            "cpu_seconds": statistics.median(r["cpu_seconds"] for r in done),
            "peak_mb": statistics.median(r["peak_mb"] for r in done),
            "growth_mb": statistics.median(r["growth_mb"] for r in done),
            "mpix": done[0]["pixels"] / 1e6,
            "load": [r["load"] for r in done],
            "runs_seconds": [r["seconds"] for r in done],
            "result": done[0]["result"],
        }
    plain = rows.get("max (plain reduction)", {}).get("seconds")
    print(f"| method | s (median of {args.rounds}) | CPU s | MPix/s | x plain max (memory) | "
          "peak RSS MB | RSS growth MB | load before |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for label, row in rows.items():
        rate = row["mpix"] / row["seconds"]
        versus = f"{row['seconds'] / plain:.2f}" if plain and "Zarr" not in label else ""
        loads = "-".join(f"{x:.1f}" for x in (min(row["load"]), max(row["load"])))
        print(f"| {label} | {row['seconds']:.3f} | {row['cpu_seconds']:.2f} | {rate:.0f} | "
              f"{versus} | {row['peak_mb']:.0f} | {row['growth_mb']:.0f} | {loads} |")  # fmt: skip
    ratios = _ratio_rows(runs)
    if ratios:
        print()
        print("| ratio | units | wall (median of rounds) | per round | CPU (median) |")
        print("|---|---|---|---|---|")
        print("\n".join(ratios))
    report = {"rows": rows, "runs": runs, "ratios": ratios}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
