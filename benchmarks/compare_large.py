"""Large-AOI ingest side by side: sentinel_cube, odc-stac, stackstac and the decode limit.

The cube covers the union of several MGRS tiles in two UTM zones (default
:data:`benchmarks._data.LARGE_TILES`: 33TXN and 33TYN in zone 33, 34TCT and 34TDT in
zone 34, around the zone boundary at 18 deg E) x ``--dates`` dates x bands B02 B03 B04
B08, in ONE target CRS: the UTM zone that holds most of the AOI (the union of the
footprints). Every tool reprojects the other zone's products on the fly (nearest) and
mosaics the products of a date, first valid pixel wins, in sentinel_cube's order
(sensing time, then tile id); the peers get their items in that order.

The grid (the same for every method): pixels of ``10 * scale`` m aligned to the corner
of the first tile of the target zone, the union's bounds in the target CRS snapped
outwards; every tile lies wholly inside, so every tool has to decode every pixel of
every band file. Every method but the decode limit writes the same Zarr v3 array as
``compare_ingest.py``: float32 reflectance ``(DN + offset) / quantification``, NaN no
data, and the chunks, shards and compressors of the store that ``sentinel_cube.to_zarr``
writes (read back from sentinel_cube's first store, so a change of its defaults applies
to every method); the peers' dask chunks are those stored chunks (sentinel_cube's cube
chunks evened out over the grid by ``to_zarr``).

Methods (``--only`` names):

``gdal``
    the decode limit: ``compare_ingest``'s raw rasterio reads of every band file of
    every product (the source windows every tool has to decode: here whole files) in
    windows aligned to the JP2 tiles, uint16, no conversion, no warp, nothing written;
    a pool of ``os.cpu_count()`` threads, one file handle per thread.
``sentinel_cube``
    ``open_cube(paths, bands, resolution, bounds, crs)`` + ``to_zarr``, threaded
    scheduler (``os.cpu_count()`` threads). Its first run is the reference store.
``sentinel_cube_cluster``
    the same on a ``distributed.LocalCluster`` of 2 process workers (together
    ``os.cpu_count()`` threads), started, with sentinel_cube imported on the workers,
    before the measured work; the CPU seconds and peak RSS add the cluster's processes
    to the driver's.
``odc_stac``
    ``odc.stac.load`` of the products' STAC items as CDSE publishes them (hrefs to the
    same JP2 files, published with ``sentinel_cube.testing.stac.publish_items``), on
    the same grid (``geobox``), nearest, ``groupby="solar_day"``, the items' order kept.
``stackstac``
    ``stackstac.stack`` of the same items (+ the legacy ``proj:epsg`` it reads), the
    same grid, then ``stackstac.mosaic`` of each date; skipped, with the reason, where
    stackstac does not import (``pip install stackstac``).

Value check (after the measured work, in the worker): every store is compared with the
reference store pixel by pixel. Exactly on the *exact region*: pixels taken from a tile
of the target zone whose grid coincides with the cube's (no resampling anywhere), away
(2 pixels) from any reprojected footprint's edge, plus the pixels no product covers.
Elsewhere (reprojected, or resampled onto a shifted grid) tools may pick other source
pixels near pixel boundaries: the fraction of equal pixels is reported, not enforced.

Each (method, round) runs in a fresh subprocess (``compare_ingest``'s runner), rounds
interleaved, medians reported with wall and CPU seconds (user + system, all threads),
output MPix/s, the ratio to the decode limit and sentinel_cube over the best peer.

Usage (from the repository root, with ``sentinel_cube`` importable)::

    python -m benchmarks.compare_large --scale 10 --rounds 2 --out large.json
    python -m benchmarks.compare_large --scale 61 --dates 2 --rounds 1     # smoke run
    python -m benchmarks.compare_large --only gdal,sentinel_cube --tiles 33TYN,34TCT
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._data import INGEST_BANDS, LARGE_TILES, large_archive
from ._large_grid import exact_mask, plan_grid, target_epsg
from .compare_ingest import (
    RUNNERS,
    VARIABLE,
    Method,
    Timer,
    _fmt,
    _proc_status_mb,
    _product_info,
    _run_worker,
    _summary,
    _versions,
    _warm_page_cache,
    comparison_parser,
)
from .compare_ingest import worker as _ingest_worker
from .compare_stac import ASSET_KEYS, local_items, publish

MODULE = "benchmarks.compare_large"
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("sentinel_cube", "b", "sentinel_cube open_cube + to_zarr"),
        Method("gdal", "a", "decode limit: raw GDAL reads, no warp, no write"),
        Method("odc_stac", "c", "odc-stac + xarray.to_zarr"),
        Method("stackstac", "c", "stackstac + xarray.to_zarr"),
        Method("sentinel_cube_cluster", "b", "sentinel_cube on a LocalCluster, 2 processes"),
    )
}
PEERS = ("odc_stac", "stackstac")
#: The module (and its package) each method needs beyond the always installed ones.
NEEDS = {"odc_stac": ("odc.stac", "odc-stac"), "stackstac": ("stackstac", "stackstac"),
         "sentinel_cube_cluster": ("distributed", "distributed")}  # fmt: skip
#: Rows compared at a time (bounds the checker's memory at full size).
CHECK_ROWS = 2048


# =============================================================================== worker side


def _run_cluster(job: dict[str, Any], timer: Timer) -> int:
    """sentinel_cube on a ``LocalCluster`` of 2 process workers (started, with
    sentinel_cube imported on them, before the measured work: a cluster that has run a
    job before; the first import costs each worker ~1 CPU s); CPU seconds and peak RSS
    include the cluster's processes."""
    import importlib

    import psutil
    from distributed import Client, LocalCluster

    threads = max(1, (os.cpu_count() or 2) // 2)
    with (
        LocalCluster(n_workers=2, threads_per_worker=threads, processes=True,
                     dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        client.run(importlib.import_module, "sentinel_cube.store")
        processes = psutil.Process().children(recursive=True)
        cpu = _cluster_cpu(processes)
        pixels = RUNNERS["sentinel_cube"]({**job, "scheduler": "distributed"}, timer)
        timer.cpu_seconds += _cluster_cpu(processes) - cpu
        timer.peak_mb += sum(_proc_status_mb("VmHWM", p.pid) for p in processes)
    return pixels


def _cluster_cpu(processes: list[Any]) -> float:
    """User + system CPU seconds of the cluster's processes (all threads) so far."""
    return sum(p.cpu_times().user + p.cpu_times().system for p in processes)


LARGE_RUNNERS = {**RUNNERS, "sentinel_cube_cluster": _run_cluster}


def _layout(array: Any) -> dict[str, Any]:
    """What makes two stores' arrays the same layout (JSON-able)."""
    compressors = [c.to_dict() if hasattr(c, "to_dict") else repr(c) for c in array.compressors]
    found = {"shape": list(array.shape), "chunks": list(array.chunks), "dtype": str(array.dtype),
             "shards": None if array.shards is None else list(array.shards),
             "compressors": compressors}  # fmt: skip
    return json.loads(json.dumps(found, default=str))


def check_store(job: dict[str, Any]) -> dict[str, Any] | None:
    """The store's layout and, unless it is the reference itself, its pixels against the
    reference store: equal pixels (NaN equals NaN) in the exact region and elsewhere."""
    import numpy as np
    import zarr

    if not job.get("store"):
        return None
    out = zarr.open_array(job["store"], path=VARIABLE, mode="r")
    found: dict[str, Any] = {"layout": _layout(out)}
    reference = job.get("reference")
    if not reference or Path(reference).resolve() == Path(job["store"]).resolve():
        return found
    ref = zarr.open_array(reference, path=VARIABLE, mode="r")
    if ref.shape != out.shape:
        found["shape_differs"] = [list(ref.shape), list(out.shape)]
        return found
    exact = np.load(job["mask"])
    counts = dict.fromkeys(("exact", "exact_equal", "exact_valid", "other", "other_equal",
                            "other_same_nodata"), 0)  # fmt: skip
    n_time, n_band, height, _ = ref.shape
    for t in range(n_time):
        for b in range(n_band):
            for row in range(0, height, CHECK_ROWS):
                rows = slice(row, row + CHECK_ROWS)
                a, o, inside = ref[t, b, rows], out[t, b, rows], exact[rows]
                nan_a, nan_o = np.isnan(a), np.isnan(o)
                same = (a == o) | (nan_a & nan_o)
                counts["exact"] += int(inside.sum())
                counts["exact_equal"] += int(same[inside].sum())
                counts["exact_valid"] += int((~nan_a[inside]).sum())
                counts["other"] += int((~inside).sum())
                counts["other_equal"] += int(same[~inside].sum())
                counts["other_same_nodata"] += int((nan_a == nan_o)[~inside].sum())
    found.update(counts)
    return found


def worker(job_path: str, result_path: str) -> None:
    """Run one method once in this fresh process (``compare_ingest``'s worker)."""
    _ingest_worker(job_path, result_path, LARGE_RUNNERS, check_store)


# =============================================================================== driver side


def _date_radiometry(products: list[dict[str, Any]]) -> list[dict[str, list[float]]]:
    """Each date's ``{band: [offset, quantification]}`` (one baseline per datatake)."""
    by_date: dict[str, dict[str, list[float]]] = {}
    for product in products:
        day = product["time"][:10]
        known = by_date.setdefault(day, product["radiometry"])
        if known != product["radiometry"]:
            raise SystemExit(f"products of {day} differ in radiometry: {product['id']}")
    return [by_date[day] for day in sorted(by_date)]


def available(method: str) -> str | None:
    """Why ``method`` cannot run here, or None."""
    if method not in NEEDS:
        return None
    module, package = NEEDS[method]
    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        found = None
    return None if found else f"{module} does not import (pip install {package})"


def _lazy_cube_chunks(paths: list[str], grid: dict[str, Any]) -> list[int]:
    """sentinel_cube's (y, x) cube chunks on the grid; checks the cube's grid is the grid."""
    from sentinel_cube import open_cube

    cube = open_cube(paths, list(INGEST_BANDS), grid["resolution"], bounds=tuple(grid["bounds"]),
                     crs=grid["epsg"])  # fmt: skip
    left, _, _, top = grid["bounds"]
    half = grid["resolution"] / 2
    if list(cube.shape[-2:]) != grid["shape"] or (
        abs(float(cube.x[0]) - (left + half)) > 1e-6 or abs(float(cube.y[0]) - (top - half)) > 1e-6
    ):
        raise SystemExit(f"open_cube's grid is not the planned one: {cube.rio.transform()}")
    return [int(c) for c in cube.data.chunksize[-2:]]


def _summaries(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per method: ``compare_ingest``'s medians plus output MPix/s, ratios and checks."""
    pixels = math.prod(report["config"]["shape"])
    summaries = {}
    for name, runs in report["runs"].items():
        summary = _summary(name, runs, METHODS[name].label)
        if "seconds" in summary:
            summary["out_mpix_per_s"] = pixels / 1e6 / summary["seconds"]
        checks = [r["check"] for r in runs if r.get("check")]
        if any("shape_differs" in c for c in checks):
            summary["exact_all_equal"] = False
        compared = [c for c in checks if "exact" in c]  # not the reference store itself
        if compared and summary.get("exact_all_equal", True):
            summary["exact_all_equal"] = all(c["exact_equal"] == c["exact"] for c in compared)
            summary["exact_pixels"] = compared[0]["exact"]
            summary["other_equal_fraction"] = min(
                c["other_equal"] / c["other"] if c["other"] else 1.0 for c in compared
            )
        if checks:
            summary["layout"] = checks[0]["layout"]
        summaries[name] = summary
    gdal = summaries.get("gdal", {})
    for summary in summaries.values():
        for key, ratio in (("seconds", "vs_decode_wall"), ("cpu_seconds", "vs_decode_cpu")):
            if key in summary and key in gdal:
                summary[ratio] = gdal[key] / summary[key]
    return summaries


def _ratios(summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """sentinel_cube over the best peer (the peer of the shortest median wall time)."""
    ours = summaries.get("sentinel_cube", {})
    peers = [summaries[p] for p in PEERS if "seconds" in summaries.get(p, {})]
    if "seconds" not in ours or not peers:
        return {}
    best = min(peers, key=lambda s: s["seconds"])
    return {
        "best_peer": best["method"],
        "ours_vs_best_peer_wall": best["seconds"] / ours["seconds"],
        "ours_vs_best_peer_cpu": best["cpu_seconds"] / ours["cpu_seconds"],
        "per_round": _round_ratios(summaries),
    }


def _round_ratios(summaries: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Medians over rounds of each round's ratios: sentinel_cube against the decode limit
    and against the best peer *of that round and metric*.

    Rounds are interleaved, so a round's methods ran within a minute or two of each
    other; this machine's speed drifts by up to ~25 % over minutes (in CPU seconds as
    well as wall seconds), and a ratio within a round cancels the drift that a ratio of
    medians over all rounds keeps.
    """

    def ok(name: str) -> list[dict[str, Any]]:
        return [r for r in summaries.get(name, {}).get("runs", []) if "seconds" in r]

    ours = ok("sentinel_cube")
    found: dict[str, float] = {}
    for key, metric in (("seconds", "wall"), ("cpu_seconds", "cpu")):
        limit = ok("gdal")
        if limit:
            found[f"vs_decode_{metric}"] = statistics.median(
                g[key] / o[key] for g, o in zip(limit, ours, strict=False)
            )
        rounds = [
            min(runs[i][key] for runs in (ok(p) for p in PEERS) if len(runs) > i) / o[key]
            for i, o in enumerate(ours)
            if any(len(ok(p)) > i for p in PEERS)
        ]
        if rounds:
            found[f"vs_best_peer_{metric}"] = statistics.median(rounds)
    return found


def markdown(report: dict[str, Any]) -> str:
    """The table of a report, then the ratios, targets, checks, load and notes."""
    summaries, config = report["methods"], report["config"]
    lines = [
        "| method | wall s | CPU s | output MPix/s | vs decode limit, wall | vs decode limit, CPU "
        "| peak RSS MB | exact region equal | other pixels equal |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for summary in summaries.values():
        if "seconds" not in summary:
            reason = (summary.get("errors") or ["no run"])[0].replace("|", "/")[:200]
            lines.append(f"| {summary['label']} | {reason} | | | | | | | |")
            continue
        equal = {True: "yes", False: "NO"}.get(summary.get("exact_all_equal"), "—")
        other = summary.get("other_equal_fraction")
        lines.append(
            f"| {summary['label']} | {summary['seconds']:.1f} | {summary['cpu_seconds']:.1f} "
            f"| {summary['out_mpix_per_s']:.2f} | {_fmt(summary.get('vs_decode_wall'))} "
            f"| {_fmt(summary.get('vs_decode_cpu'))} | {summary['peak_rss_mb']:.0f} | {equal} "
            f"| {'—' if other is None else f'{100 * other:.2f} %'} |"
        )
    ratios = report.get("ratios") or {}
    ours = summaries.get("sentinel_cube", {})
    lines.append("")
    if ratios:
        lines.append(
            f"- sentinel_cube / best peer ({ratios['best_peer']}): "
            f"{ratios['ours_vs_best_peer_wall']:.2f} by wall time, "
            f"{ratios['ours_vs_best_peer_cpu']:.2f} by CPU time (target >= 1.1)"
        )
    if "vs_decode_wall" in ours:
        lines.append(
            f"- sentinel_cube / decode limit: {ours['vs_decode_wall']:.2f} by wall time, "
            f"{ours['vs_decode_cpu']:.2f} by CPU time (target >= 0.9)"
        )
    per_round = ratios.get("per_round") or {}
    if per_round:
        parts = [
            f"sentinel_cube / {label}: {per_round[f'{key}_wall']:.2f} by wall time, "
            f"{per_round[f'{key}_cpu']:.2f} by CPU time"
            for key, label in (
                ("vs_decode", "decode limit"),
                ("vs_best_peer", "the best peer of each round"),
            )  # fmt: skip
            if f"{key}_wall" in per_round
        ]
        lines.append(
            "- the same, as medians of each round's ratios (rounds are interleaved: this "
            "cancels the machine's drift between rounds): " + "; ".join(parts)
        )
    shape = config["shape"]
    lines.append(
        f"- cube: {shape[0]} dates x {shape[1]} bands x {shape[2]} x {shape[3]} px of "
        f"{config['resolution_m']:g} m in EPSG:{config['epsg']} "
        f"({math.prod(shape) / 1e6:.0f} MPix), from {config['products']} products of tiles "
        f"{', '.join(config['tiles'])} ({config['source_mpix']:.0f} MPix decoded); "
        f"exact region: {100 * config['exact_fraction']:.1f} % of the pixels "
        f"(aligned tiles: {', '.join(config['aligned_tiles']) or 'none'})"
    )
    for summary in summaries.values():
        runs = [r for r in summary["runs"] if "seconds" in r]
        if len(runs) > 1:
            lines.append(f"- {summary['method']} wall s per round: "
                         + ", ".join(f"{r['seconds']:.1f}" for r in runs))  # fmt: skip
    loads = [r["loadavg_1min_before"] for s in summaries.values() for r in s["runs"]
             if "loadavg_1min_before" in r]  # fmt: skip
    if loads:
        lines.append(
            f"- 1-minute load average before the runs: {min(loads):.1f} to {max(loads):.1f} "
            f"on {report['machine']['cpu_count']} cores (shared machine: wall times are noisy, "
            "CPU seconds steadier)"
        )
    layouts = {s["method"]: s["layout"] for s in summaries.values() if "layout" in s}
    reference = layouts.get("sentinel_cube") or report.get("reference_layout")
    odd = [m for m, layout in layouts.items() if layout != reference]
    if layouts:
        lines.append(f"- store layout (chunks, shards, codec) as sentinel_cube's: "
                     f"{'NO for ' + ', '.join(odd) if odd else 'yes, every method'}")  # fmt: skip
    for name, reason in report.get("skipped", {}).items():
        lines.append(f"- skipped {name}: {reason}")
    for summary in summaries.values():
        for note in summary.get("notes", []):
            lines.append(f"- note, {summary['method']}: {note}")
    return "\n".join(lines)


def _print_run(round_index: int, name: str, result: dict[str, Any]) -> None:
    if "error" in result:
        print(f"round {round_index + 1} {name}: ERROR {result['error']}", flush=True)
        return
    check = result.get("check") or {}
    equal = ""
    if "exact" in check:
        equal = (f", exact {check['exact_equal']}/{check['exact']} equal, other "
                 f"{check['other_equal']}/{check['other']}")  # fmt: skip
    print(f"round {round_index + 1} {name}: {result['seconds']:.1f} s "
          f"(CPU {result['cpu_seconds']:.1f} s, load {result['loadavg_1min_before']:.1f})"
          f"{equal}", flush=True)  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Generate (or reuse) the archive, run every method ``rounds`` times, summarise.

    With ``--out``, the report is rewritten after every run (``"complete": false``
    until the end), so an interrupted comparison keeps what it measured.
    """

    chosen = [m.strip() for m in args.only.split(",") if m.strip()] or list(METHODS)
    unknown = set(chosen) - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown method(s) {sorted(unknown)}; choose from {', '.join(METHODS)}")
    skipped = {m: why for m in chosen if (why := available(m))}
    for name, reason in skipped.items():
        print(f"skipping {name}: {reason}", flush=True)
    methods = [m for m in METHODS if m in chosen and m not in skipped]
    work = Path(tempfile.mkdtemp(prefix="compare-large-", dir=args.workdir))
    try:
        config, base = _prepare(args, work)
        return _measure(args, methods, skipped, config, base, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _prepare(args: argparse.Namespace, work: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The archive, its items, the grid and exact region: the configuration and the
    fields every job shares."""
    import numpy as np

    tiles = [t.strip() for t in args.tiles.split(",") if t.strip()]
    started = time.perf_counter()
    archive = large_archive(tiles=tiles, dates=args.dates, scale=args.scale)
    products = _product_info(list(archive.paths), list(INGEST_BANDS))
    products.sort(key=lambda p: (p["datetime"], p["tile"]))  # sentinel_cube's mosaic order
    paths = [p["path"] for p in products]
    tree = publish(archive, [Path(p) for p in paths], label="cdse", providers={"jp2": "cdse"})
    items = local_items([Path(p) for p in paths], tree / "jp2", "cdse")
    print(f"archive {archive.root} and items ready in {time.perf_counter() - started:.0f} s",
          flush=True)  # fmt: skip
    files = [f for p in products for f in p["files"]]
    _warm_page_cache(files)

    grid = plan_grid(products, target_epsg(products))
    radiometry = _date_radiometry(products)
    shape = [len(radiometry), len(INGEST_BANDS), *grid["shape"]]
    mask = exact_mask(grid)
    np.save(work / "exact.npy", mask)
    source_pixels = 0
    for product in products:
        for band_file in product["assets"].values():
            source_pixels += math.prod(band_file["shape"])
    config = {
        "scale": args.scale, "dates": len(radiometry), "rounds": args.rounds, "tiles": tiles,
        "products": len(products), "bands": list(INGEST_BANDS), "epsg": grid["epsg"],
        "resolution_m": grid["resolution"], "bounds": grid["bounds"], "shape": shape,
        "source_mpix": source_pixels / 1e6, "exact_fraction": float(mask.mean()),
        "aligned_tiles": [t["tile"] for t in grid["tiles"] if t["aligned"]],
        "threads": os.cpu_count(),
    }  # fmt: skip
    reference = str(work / "reference.zarr")
    base = {
        "bands": list(INGEST_BANDS), "epsg": grid["epsg"], "crs": grid["epsg"],
        "resolution": grid["resolution"], "bounds": grid["bounds"], "paths": paths,
        "files": files, "items": items, "asset_keys": ASSET_KEYS["jp2"],
        "radiometry": radiometry, "reference": reference, "like": reference,
        "mask": str(work / "exact.npy"),
    }  # fmt: skip
    from sentinel_cube.store import even_chunks

    config["cube_chunks"] = _lazy_cube_chunks(paths, grid)
    # the peers' dask chunks: the stored chunks (xarray writes a dask chunk to whole
    # stored chunks only), sentinel_cube's cube chunks evened out by to_zarr
    base["chunks"] = config["store_chunks"] = [
        even_chunks(n, side) for n, side in zip(shape[-2:], config["cube_chunks"], strict=True)
    ]
    return config, base


def _measure(
    args: argparse.Namespace,
    methods: list[str],
    skipped: dict[str, str],
    config: dict[str, Any],
    base: dict[str, Any],
    work: Path,
) -> dict[str, Any]:
    """Every method ``rounds`` times, rounds interleaved; the report after each run."""
    reference = base["reference"]
    machine = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg()[0],
    }
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    extra: dict[str, Any] = {}

    def report(complete: bool) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        result = {"complete": complete, "config": config, "machine": {**machine, "finished": now},
                  "versions": _versions(), "runs": runs, "skipped": skipped, **extra}  # fmt: skip
        result["methods"] = _summaries(result)
        result["ratios"] = _ratios(result["methods"])
        result["markdown"] = markdown(result)
        if args.out:
            args.out.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
        return result

    if "sentinel_cube" not in methods and set(methods) - {"gdal"}:  # a reference, not measured
        job = {**base, "method": "sentinel_cube", "store": reference}
        result = _run_worker(job, work, "reference", args.timeout, MODULE, keep_store=True)
        if "error" in result:
            raise SystemExit(f"the reference store failed: {result['error']}")
        extra["reference_layout"] = result["check"]["layout"]
    for round_index in range(args.rounds):
        for name in methods:
            tag = f"{name}-{round_index}"
            keep = name == "sentinel_cube" and round_index == 0
            store = reference if keep else str(work / f"{tag}.zarr")
            job = {**base, "method": name, "store": None if name == "gdal" else store}
            result = _run_worker(job, work, tag, args.timeout, MODULE, keep_store=keep)
            if keep and "error" in result:
                raise SystemExit(f"sentinel_cube (the reference) failed: {result['error']}")
            runs[name].append(result)
            _print_run(round_index, name, result)
            report(complete=False)
    return report(complete=True)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = comparison_parser(__doc__, METHODS, scale=10, dates=10)
    parser.add_argument("--tiles", default=",".join(LARGE_TILES),
                        help="comma-separated MGRS tiles (default %(default)s)")  # fmt: skip
    parser.add_argument("--report", type=Path, help="only print the table of a saved JSON")
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return None
    if args.report:
        saved = json.loads(args.report.read_text(encoding="utf-8"))
        saved["methods"] = _summaries(saved)
        saved["ratios"] = _ratios(saved["methods"])
        print(markdown(saved))
        return saved
    started = time.perf_counter()
    result = run(args)
    print()
    print(result["markdown"])
    print(f"\n{time.perf_counter() - started:.0f} s in all")
    if args.out:
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on kill
    main()
