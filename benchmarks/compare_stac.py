"""STAC items as cube sources side by side: COG vs JP2, sentinel_cube vs odc-stac.

The ingest archive's tile 34TCT (every date of ``--dates``, bands B02 B03 B04 B08) is
published as Earth Search publishes Sentinel-2 (COGs, DEFLATE, tiled as the archive's
JP2s: 1024 px at full size, 128 px otherwise) and as CDSE does (the ``.SAFE`` folder's
JPEG 2000 files), with :func:`sentinel_cube.testing.stac.publish_items`. The same
pixels are then read in several ways, each on the tile's own grid (its CRS, 10 m x
scale pixels, its bounds: no reprojection), as uint16 DN:

``cube_safe``
    the reference: ``open_cube`` of the ``.SAFE`` folders (local JP2).
``cube_{cog,jp2}_{file,http}``
    ``open_cube`` of the Earth Search items (COG hrefs) or of the CDSE items (JP2
    hrefs), the trees as local files or served over HTTP on the loopback
    (:class:`sentinel_cube.testing.FolderServer`, ranged reads). Needs issue #12's
    ``open_cube(items, ...)``: before it, these rows show its error.
``odc_{cog,jp2}_{file,http}``
    ``odc.stac.load`` of the same items on the same grid (``geobox``), nearest,
    ``chunks={"x": 1024, "y": 1024}``, ``groupby="solar_day"``.

Every method computes the sum of all DN of the cube with dask's threaded scheduler (all
pixels are read and decoded, nothing is kept), so the sums double as a check that every
method read the same pixels. Each (method, round) runs in a fresh subprocess; rounds
are interleaved; medians are reported with CPU time and peak RSS, as in
``compare_ingest.py`` (whose measuring code this reuses). GDAL settings: the libraries'
defaults plus ``GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR`` for all (no directory listings
over HTTP).

Usage (from the repository root, with ``sentinel_cube`` importable)::

    python -m benchmarks.compare_stac --scale 10 --rounds 3      # quick
    python -m benchmarks.compare_stac --scale 1 --out stac.json   # full size
    python -m benchmarks.compare_stac --scale 61 --rounds 1 --only cube_safe,odc_cog_http
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._data import INGEST_BANDS, Archive, beside, ingest_archive
from .compare_ingest import (
    Timer,
    _fmt,
    _run_worker,
    _versions,
    _warm_page_cache,
    comparison_parser,
)

COMPARED_TILE = "34TCT"
CHUNK = 1024
REPO = Path(__file__).resolve().parents[1]
#: Each publication's asset key of each band (what odc-stac is asked for).
ASSET_KEYS = {
    "cog": {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir"},
    "jp2": {"B02": "B02_10m", "B03": "B03_10m", "B04": "B04_10m", "B08": "B08_10m"},
}
PROVIDER = {"cog": "earth_search", "jp2": "cdse"}


@dataclass(frozen=True)
class Method:
    """One compared way of reading the pixels."""

    name: str
    reader: str  # "cube" (sentinel_cube) or "odc"
    source: str  # "safe", "cog" or "jp2"
    transport: str  # "file" or "http"
    label: str


def _methods() -> dict[str, Method]:
    found = {"cube_safe": Method("cube_safe", "cube", "safe", "file",
                                 "sentinel_cube, .SAFE folders (JP2)")}  # fmt: skip
    readers = {"cube": "sentinel_cube", "odc": "odc-stac"}
    for reader, title in readers.items():
        for source in ("cog", "jp2"):
            for transport in ("file", "http"):
                name = f"{reader}_{source}_{transport}"
                label = f"{title}, {source.upper()} items, {transport}"
                found[name] = Method(name, reader, source, transport, label)
    return found


METHODS = _methods()


# =============================================================================== worker side


def _grid(job: dict[str, Any]) -> dict[str, Any]:
    return {"bounds": tuple(job["bounds"]), "crs": f"EPSG:{job['epsg']}"}


def _run_cube(job: dict[str, Any], timer: Timer) -> tuple[int, int]:
    import dask

    from sentinel_cube.cube import open_cube

    sources = job["paths"] if job["source"] == "safe" else job["items"]
    with timer.measure(), dask.config.set(scheduler="threads"):
        cube = open_cube(sources, bands=job["bands"], resolution=job["resolution"],
                         units="dn", **_grid(job))  # fmt: skip
        total = int(cube.data.sum(dtype="uint64").compute())
    return int(cube.size), total


def _run_odc(job: dict[str, Any], timer: Timer) -> tuple[int, int]:
    import dask
    import odc.stac
    import pystac
    from affine import Affine
    from odc.geo.geobox import GeoBox

    left, bottom, right, top = job["bounds"]
    res = job["resolution"]
    shape = (round((top - bottom) / res), round((right - left) / res))
    keys = ASSET_KEYS[job["source"]]
    with timer.measure(), dask.config.set(scheduler="threads"):
        items = [pystac.Item.from_dict(i) for i in job["items"]]
        geobox = GeoBox(shape, Affine(res, 0.0, left, 0.0, -res, top), f"EPSG:{job['epsg']}")
        loaded = odc.stac.load(
            items, bands=[keys[b] for b in job["bands"]], geobox=geobox,
            chunks={"x": CHUNK, "y": CHUNK}, dtype="uint16", nodata=0, resampling="nearest",
            groupby="solar_day",
        )  # fmt: skip
        sums = [loaded[keys[b]].data.sum(dtype="uint64") for b in job["bands"]]
        total = int(sum(dask.compute(*sums)))
    pixels = sum(int(loaded[keys[b]].size) for b in job["bands"])
    return pixels, total


def worker(job_path: str, result_path: str) -> None:
    """Run one method once (in this fresh process) and write its measurements as JSON."""
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    os.environ["GDAL_DISABLE_READDIR_ON_OPEN"] = "EMPTY_DIR"
    timer = Timer()
    load_before = os.getloadavg()[0]
    run = _run_cube if job["reader"] == "cube" else _run_odc
    pixels, total = run(job, timer)
    result = {
        "method": job["method"],
        "seconds": timer.seconds,
        "cpu_seconds": timer.cpu_seconds,
        "pixels": pixels,
        "dn_sum": total,
        "mpix_per_s": pixels / 1e6 / timer.seconds,
        "rss_before_mb": timer.rss_before_mb,
        "peak_rss_mb": timer.peak_mb,
        "loadavg_1min_before": load_before,
    }
    Path(result_path).write_text(json.dumps(result), encoding="utf-8")


# =============================================================================== driver side


def publish(
    archive: Archive,
    paths: list[Path],
    label: str = COMPARED_TILE,
    providers: dict[str, str] = PROVIDER,
) -> Path:
    """The trees of ``paths`` as ``providers`` publish them ({folder: provider shape};
    default Earth Search's COGs in ``cog/`` and CDSE's JP2s in ``jp2/``), made once
    beside the archive in ``<archive>-stac-<label>``."""
    from sentinel_cube.testing.stac import publish_items

    def make(folder: Path) -> None:
        for source, shape in providers.items():
            publish_items(paths, folder / source, shape, "http://unused", bands=list(INGEST_BANDS))

    return beside(archive, f"stac-{label}", make)


def local_items(paths: list[Path], tree: Path, shape: str) -> list[dict[str, Any]]:
    """The items of ``paths`` published as ``shape`` in ``tree``, hrefs as local paths.

    They have no ``self`` link: pystac would make the paths relative to its host
    (``https://host/tmp/...``).
    """
    from sentinel_cube.testing.stac import stac_items

    items = stac_items(paths, shape, str(tree), bands=list(INGEST_BANDS))
    for item in items:
        item["links"] = [k for k in item["links"] if k["rel"] != "self"]
    return items


def _items(paths: list[Path], trees: Path, http_url: str) -> dict[tuple[str, str], list[dict]]:
    """The items of each (source, transport): hrefs to the local trees or the server."""
    from sentinel_cube.testing.stac import stac_items

    found = {}
    for source, shape in PROVIDER.items():
        found[(source, "file")] = local_items(paths, trees / source, shape)
        http = stac_items(paths, shape, f"{http_url}/{source}", bands=list(INGEST_BANDS))
        found[(source, "http")] = http
    return found


def _job(method: Method, paths: list[Path], items: dict, grid: dict[str, Any]) -> dict:
    job: dict[str, Any] = {
        "method": method.name, "reader": method.reader, "source": method.source,
        "bands": list(INGEST_BANDS), **grid,
    }  # fmt: skip
    if method.source == "safe":
        job["paths"] = [str(p) for p in paths]
    else:
        job["items"] = items[(method.source, method.transport)]
    return job


def _summary(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    good = [r for r in runs if "error" not in r]
    summary: dict[str, Any] = {"method": name, "label": METHODS[name].label, "runs": runs}
    if len(good) < len(runs):
        summary["errors"] = [r["error"] for r in runs if "error" in r]
    if good:
        summary.update(
            seconds=statistics.median(r["seconds"] for r in good),
            cpu_seconds=statistics.median(r["cpu_seconds"] for r in good),
            mpix_per_s=statistics.median(r["mpix_per_s"] for r in good),
            mpix_per_cpu_s=statistics.median(r["pixels"] / 1e6 / r["cpu_seconds"] for r in good),
            peak_rss_mb=max(r["peak_rss_mb"] for r in good),
            dn_sum=good[0]["dn_sum"],
            pixels=good[0]["pixels"],
        )
    return summary


def _ratio(a: dict | None, b: dict | None, key: str) -> float | None:
    """``a``'s throughput over ``b``'s (> 1: ``a`` is faster)."""
    if not a or not b or key not in a or key not in b:
        return None
    return a[key] / b[key]


#: The comparisons of the ratio table: (label, method a, method b).
RATIOS = [
    ("COG / JP2, sentinel_cube, local files", "cube_cog_file", "cube_jp2_file"),
    ("COG / JP2, sentinel_cube, HTTP", "cube_cog_http", "cube_jp2_http"),
    ("COG / JP2, odc-stac, local files", "odc_cog_file", "odc_jp2_file"),
    ("COG / JP2, odc-stac, HTTP", "odc_cog_http", "odc_jp2_http"),
    ("sentinel_cube / odc-stac, COG, local files", "cube_cog_file", "odc_cog_file"),
    ("sentinel_cube / odc-stac, COG, HTTP", "cube_cog_http", "odc_cog_http"),
    ("sentinel_cube / odc-stac, JP2, local files", "cube_jp2_file", "odc_jp2_file"),
    ("sentinel_cube / odc-stac, JP2, HTTP", "cube_jp2_http", "odc_jp2_http"),
    ("JP2 items / .SAFE folders, sentinel_cube", "cube_jp2_file", "cube_safe"),
]


def markdown(report: dict[str, Any]) -> str:
    """The Markdown tables of a comparison report: the methods, then the ratios."""
    methods = report["methods"]
    reference = methods.get("cube_safe", {}).get("dn_sum")
    lines = ["| method | MPix/s | wall s | CPU s | MPix per CPU s | peak RSS MB | same DN sum |",
             "|---|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for summary in methods.values():
        if "mpix_per_s" not in summary:
            error = summary.get("errors", ["no run"])[0].replace("|", "/")[:200]
            lines.append(f"| {summary['label']} | error: {error} | | | | | |")
            continue
        same = "—" if reference is None else ("yes" if summary["dn_sum"] == reference else "NO")
        lines.append(
            f"| {summary['label']} | {summary['mpix_per_s']:.1f} | {summary['seconds']:.2f} "
            f"| {summary['cpu_seconds']:.2f} | {summary['mpix_per_cpu_s']:.2f} "
            f"| {summary['peak_rss_mb']:.0f} | {same} |"
        )
    lines += ["", "| ratio (> 1: the first is faster) | by wall time | by CPU time |",
              "|---|---:|---:|"]  # fmt: skip
    for label, a, b in RATIOS:
        if a in methods and b in methods:
            first, second = methods[a], methods[b]
            lines.append(f"| {label} | {_fmt(_ratio(first, second, 'mpix_per_s'))} "
                         f"| {_fmt(_ratio(first, second, 'mpix_per_cpu_s'))} |")  # fmt: skip
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Generate (or reuse) the archive and its publications, run every method, summarise."""
    from sentinel_cube.safe import read_product
    from sentinel_cube.testing import FolderServer

    chosen = [m.strip() for m in args.only.split(",") if m.strip()] or list(METHODS)
    unknown = set(chosen) - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown method(s) {sorted(unknown)}; choose from {', '.join(METHODS)}")
    methods = [m for m in METHODS if m in chosen]
    archive = ingest_archive(dates=args.dates, scale=args.scale)
    paths = archive.products_of(COMPARED_TILE)
    trees = publish(archive, paths)
    product = read_product(paths[0], require_bands=None)
    band = product.bands[INGEST_BANDS[0]]
    grid = {"bounds": list(band.bounds), "epsg": product.epsg,
            "resolution": float(band.transform.a)}  # fmt: skip
    _warm_page_cache([str(p) for p in trees.rglob("*") if p.is_file()])
    _warm_page_cache([str(p) for path in paths for p in path.rglob("*.jp2")])
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    work = Path(tempfile.mkdtemp(prefix="compare-stac-", dir=args.workdir))
    try:
        with FolderServer(trees) as server:
            items = _items(paths, trees, server.url)
            for round_index in range(args.rounds):
                for name in methods:
                    job = _job(METHODS[name], paths, items, grid)
                    result = _run_worker(job, work, f"{name}-{round_index}", args.timeout,
                                         "benchmarks.compare_stac")  # fmt: skip
                    runs[name].append(result)
                    print(f"round {round_index + 1} {name}: "
                          f"{result.get('error') or format(result['seconds'], '.2f') + ' s'}",
                          flush=True)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "config": {
            "scale": args.scale,
            "dates": args.dates,
            "rounds": args.rounds,
            "tile": COMPARED_TILE,
            "bands": list(INGEST_BANDS),
            **grid,
        },  # fmt: skip
        "machine": {
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
        },  # fmt: skip
        "versions": _versions(),
        "methods": {m: _summary(m, runs[m]) for m in methods},
    }
    report["markdown"] = markdown(report)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    args = comparison_parser(__doc__, METHODS, scale=10, dates=3).parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return None
    started = time.perf_counter()
    report = run(args)
    print()
    print(report["markdown"])
    print(f"\n{time.perf_counter() - started:.0f} s in all")
    return report


if __name__ == "__main__":
    main()
