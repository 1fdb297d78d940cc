"""Ingest side by side: raw GDAL decode, sentinel_cube, stackstac, odc-stac, a naive loop.

Every method reads the same JPEG 2000 band files of one generated archive and (except
the raw decode) writes the same Zarr v3 array: float32 reflectance
``(DN + offset) / quantification``, NaN where DN is 0 (no data) or 65535 (saturated),
the chunks ``sentinel_cube.to_zarr`` stores for that cube by default (its cube chunks
evened out over the grid, ``sentinel_cube.store.even_chunks``; the peers' dask chunks are
those), Blosc lz4 with bit shuffle (``to_zarr``'s default).

Compared pixels: the tile 34TCT on its own grid (EPSG:32634, its native 10 m x scale
pixels, its bounds), every date of the archive, bands B02 B03 B04 B08. One tile, not
the union of both Budapest tiles, so that no tool reprojects or mosaics and all read
exactly the same JP2 windows; ``--only sentinel_cube_union`` adds sentinel_cube on
the mosaic of both tiles for reference.

Methods (``--only`` names):

``gdal``
    (a) the physical limit: rasterio reads of every band file in windows aligned to
    the JP2 tiles (1024 px at full size), one file handle per thread, a pool of
    ``os.cpu_count()`` threads, ``GDAL_NUM_THREADS=1``. Decode only, nothing written.
``sentinel_cube`` / ``sentinel_cube_1date``
    (b) ``open_cube(paths, bands, resolution, bounds=tile)`` + ``to_zarr(mode="w")``
    on the threaded dask scheduler, with all dates / with the first date only
    (peak memory versus the number of time steps).
``stackstac`` / ``odc_stac``
    (c) the peers, on STAC items built in memory with pystac (``proj:code`` and the
    legacy ``proj:epsg``, ``proj:transform``, ``proj:shape``, ``eo:bands``, asset
    hrefs to the JP2s): uint16 DN on the same grid and chunks, the same
    reflectance arithmetic (offset applied) with xarray, ``xarray.Dataset.to_zarr``.
    GDAL settings are the libraries' own defaults.
``naive``
    (d) the classic tutorial loop: per product, ``rasterio.open`` each band,
    ``.read(1)`` the whole band (GDAL's default threading), numpy reflectance and
    mask, stack everything in memory, ``xarray.Dataset.to_zarr``.

Each (method, round) runs in a fresh subprocess: the wall and CPU times are measured
inside it around the work only (imports excluded); the peak RSS is the subprocess's
resident-set high-water mark (``VmHWM``) at the end of the work, so it includes the
interpreter and imported libraries (the RSS just before the work is reported too).
Page cache is warmed first.

Usage (from the repository root, with ``sentinel_cube`` importable)::

    python -m benchmarks.compare_ingest --scale 10                 # quick, ~1 min
    python -m benchmarks.compare_ingest --out results.json         # full size
    python -m benchmarks.compare_ingest --scale 10 --only gdal,sentinel_cube --rounds 1
    python -m benchmarks.compare_ingest --out results.json --resume   # after an interruption
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._data import INGEST_BANDS, ingest_archive

COMPARED_TILE = "34TCT"
CHUNK = 1024
VARIABLE = "reflectance"
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Method:
    """One compared method: its table label and the letter of the brief it answers."""

    name: str
    letter: str
    label: str


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("gdal", "a", "(a) raw GDAL decode, all cores"),
        Method("sentinel_cube", "b", "(b) sentinel_cube open_cube + to_zarr"),
        Method("sentinel_cube_1date", "b", "(b) sentinel_cube, 1 date only"),
        Method("stackstac", "c", "(c) stackstac + xarray.to_zarr"),
        Method("odc_stac", "c", "(c) odc-stac + xarray.to_zarr"),
        Method("naive", "d", "(d) naive per-scene numpy + xarray.to_zarr"),
        Method("sentinel_cube_union", "b", "(b) sentinel_cube, both tiles mosaicked"),
    )
}
DEFAULT_METHODS = [m for m in METHODS if m != "sentinel_cube_union"]


# =============================================================================== worker side


class Timer:
    """Marks the measured region of a worker: RSS before, wall time, peak RSS after."""

    def __init__(self) -> None:
        self.seconds = float("nan")
        self.cpu_seconds = float("nan")
        self.rss_before_mb = float("nan")
        self.peak_mb = float("nan")

    @contextmanager
    def measure(self) -> Iterator[None]:
        self.rss_before_mb = _current_rss_mb()
        cpu = _cpu_seconds()
        started = time.perf_counter()
        yield
        self.seconds = time.perf_counter() - started
        self.cpu_seconds = _cpu_seconds() - cpu
        self.peak_mb = _peak_rss_mb()


def _cpu_seconds() -> float:
    """User + system CPU time of this process (all threads) so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _proc_status_mb(field: str, pid: int | str = "self") -> float:
    """A memory field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``) in MB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _current_rss_mb() -> float:
    return _proc_status_mb("VmRSS")


def _peak_rss_mb() -> float:
    """High-water mark of this process's resident set (``VmHWM``).

    Not ``ru_maxrss``: on Linux that keeps the parent's high-water mark across
    fork + exec, so every worker would report at least the driver's RSS.
    """
    return _proc_status_mb("VmHWM")


def _reflectance_xr(dn: Any, radiometry: list[dict[str, list[float]]], bands: list[str]) -> Any:
    """``(DN + offset) / quantification`` per (time, band) as float32, NaN for 0 and 65535."""
    import numpy as np
    import xarray as xr

    offsets = [[r[b][0] for b in bands] for r in radiometry]
    quants = [[r[b][1] for b in bands] for r in radiometry]
    offset = xr.DataArray(np.asarray(offsets, np.float32), dims=("time", "band"))
    quant = xr.DataArray(np.asarray(quants, np.float32), dims=("time", "band"))
    values = (dn.astype(np.float32) + offset) / quant
    return values.where((dn != 0) & (dn != 65535))


def _write_store(array: Any, store: str, like: str | None = None, chunks: Any = None) -> None:
    """Write a (time, band, y, x) float32 DataArray like ``sentinel_cube.to_zarr`` does.

    ``like``: a store written by ``sentinel_cube.to_zarr`` whose array layout (chunks,
    shards, compressors) to copy; else ``(y, x)`` ``chunks`` (default 1024 x 1024 px
    evened out over the grid) and Blosc lz4 (level 5) with bit shuffle, ``to_zarr``'s
    default codec.
    """
    import numpy as np
    import zarr
    from zarr.codecs import BloscCodec

    from sentinel_cube.store import even_chunks

    array = array.drop_vars([c for c in array.coords if c not in array.dims])
    array.attrs = {}  # peers attach Python objects (stackstac: its RasterSpec)
    array = array.assign_coords(band=np.asarray(array.band.values, dtype=str))
    dataset = array.to_dataset(name=VARIABLE)
    codec = BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")
    y, x = chunks or (even_chunks(array.sizes["y"], CHUNK), even_chunks(array.sizes["x"], CHUNK))
    layout: dict[str, Any] = {"chunks": (1, 1, int(y), int(x)), "compressors": (codec,)}
    if like is not None:
        model = zarr.open_array(like, path=VARIABLE, mode="r")
        layout = {"chunks": model.chunks, "compressors": model.compressors}
        if model.shards is not None:
            layout["shards"] = model.shards
    encoding = {VARIABLE: layout}
    dataset.to_zarr(store, mode="w", zarr_format=3, consolidated=False, encoding=encoding)


def _stac_items(job: dict[str, Any]) -> list[Any]:
    """The STAC items of the compared products: ``job["items"]`` (published item dicts,
    in mosaic order) if given, else minimal items built in memory with pystac."""
    import pystac
    from pystac.extensions.eo import Band, EOExtension
    from pystac.extensions.projection import ProjectionExtension

    if job.get("items"):
        published = []
        for item in job["items"]:
            for key in _asset_keys(job).values():  # the v1 name older readers use
                asset = item["assets"][key]
                asset.setdefault("proj:epsg", int(asset["proj:code"].split(":")[1]))
            published.append(pystac.Item.from_dict(item))
        return published
    items = []
    for product in job["stac"]:
        item = pystac.Item(
            id=product["id"],
            geometry=product["geometry"],
            bbox=product["bbox"],
            datetime=dt.datetime.fromisoformat(product["datetime"]),
            properties={},
        )
        proj = ProjectionExtension.ext(item, add_if_missing=True)
        proj.epsg = product["epsg"]  # writes proj:code (projection extension v2)
        item.properties["proj:epsg"] = product["epsg"]  # the v1 name older readers use
        EOExtension.ext(item, add_if_missing=True)
        for band, asset_info in product["assets"].items():
            asset = pystac.Asset(href=asset_info["href"], media_type="image/jp2", roles=["data"])
            item.add_asset(band, asset)
            asset_proj = ProjectionExtension.ext(asset)
            asset_proj.transform = asset_info["transform"]
            asset_proj.shape = asset_info["shape"]
            EOExtension.ext(asset).bands = [Band.create(name=band, common_name=None)]
        items.append(item)
    return items


def _run_gdal(job: dict[str, Any], timer: Timer) -> int:
    os.environ["GDAL_NUM_THREADS"] = "1"
    # OpenJPEG decodes in the reading thread, as in sentinel_cube (see its _read module):
    # 2-5 % faster than a thread per read, so the limit stays the best raw decode
    os.environ.setdefault("OPJ_NUM_THREADS", "0")
    # every block is read once: GDAL's block cache (default 5 % of RAM) would only add RSS
    os.environ["GDAL_CACHEMAX"] = "64"
    from concurrent.futures import ThreadPoolExecutor

    import rasterio
    from rasterio.windows import Window

    tasks: list[tuple[str, Window]] = []
    for path in job["files"]:
        with rasterio.open(path) as dataset:
            block_y, block_x = dataset.block_shapes[0]
            step_y = CHUNK if CHUNK % block_y == 0 else block_y  # whole JP2 tiles per window
            step_x = CHUNK if CHUNK % block_x == 0 else block_x
            for row in range(0, dataset.height, step_y):
                for col in range(0, dataset.width, step_x):
                    height = min(step_y, dataset.height - row)
                    width = min(step_x, dataset.width - col)
                    tasks.append((path, Window(col, row, width, height)))
    local = threading.local()
    opened: list[Any] = []
    lock = threading.Lock()

    def decode(task: tuple[str, Window]) -> int:
        path, window = task
        handles = getattr(local, "handles", None)
        if handles is None:
            handles = local.handles = {}
        dataset = handles.get(path)
        if dataset is None:
            dataset = handles[path] = rasterio.open(path, sharing=False)
            with lock:
                opened.append(dataset)
        with rasterio.Env(GDAL_NUM_THREADS=1, GDAL_CACHEMAX=64):
            return int(dataset.read(1, window=window).size)

    with timer.measure():
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            pixels = sum(pool.map(decode, tasks))
        for dataset in opened:
            dataset.close()
    return pixels


def _run_sentinel_cube(job: dict[str, Any], timer: Timer) -> int:
    """``open_cube`` + ``to_zarr``; ``job["crs"]`` (optional) is the target CRS and
    ``job["scheduler"]`` the dask scheduler (default ``"threads"``)."""
    import dask

    from sentinel_cube.cube import open_cube
    from sentinel_cube.store import to_zarr

    bounds = tuple(job["bounds"]) if job["bounds"] else None
    scheduler = job.get("scheduler", "threads")
    with timer.measure(), dask.config.set(scheduler=scheduler):
        cube = open_cube(job["paths"], job["bands"], job["resolution"], bounds=bounds,
                         crs=job.get("crs"))  # fmt: skip
        report = to_zarr(cube, job["store"], mode="w", progress=False)
    return int(report.pixels)


def _asset_keys(job: dict[str, Any]) -> dict[str, str]:
    """The items' asset key of each band (default: the band name)."""
    return job.get("asset_keys") or {b: b for b in job["bands"]}


def _chunks(job: dict[str, Any]) -> tuple[int, int]:
    """The (y, x) chunk side of the peers' dask arrays: the job's, else the chunks of
    :func:`_write_store`'s default layout on the job's grid."""
    if job.get("chunks"):
        y, x = job["chunks"]
        return int(y), int(x)
    from sentinel_cube.store import even_chunks

    left, bottom, right, top = job["bounds"]
    res = job["resolution"]
    rows, cols = round((top - bottom) / res), round((right - left) / res)
    return even_chunks(rows, CHUNK), even_chunks(cols, CHUNK)


def _run_stackstac(job: dict[str, Any], timer: Timer) -> int:
    """stackstac on the items; products of one date (same time) are mosaicked in item
    order, first valid pixel wins (``stackstac.mosaic(reverse=True)``)."""
    import dask
    import numpy as np
    import stackstac

    keys = _asset_keys(job)
    options = dict(
        assets=[keys[b] for b in job["bands"]],
        epsg=job["epsg"],  # explicit: the output CRS is not guessed from the items
        resolution=job["resolution"],
        bounds=tuple(job["bounds"]),
        snap_bounds=False,  # keep the tile's own pixel grid (its corner is not a multiple of res)
        chunksize=_chunks(job),
        dtype="uint16",
        rescale=False,
        xy_coords="center",
        properties=False,
        band_coords=False,
    )
    fill_value: Any = 0
    try:  # the natural call; stackstac 0.5.1 + numpy 2 refuse it (gjoseph92/stackstac#260)
        stackstac.stack(_stac_items(job), fill_value=fill_value, **options)
    except ValueError as error:
        job["note"] = f"fill_value=0 with dtype=uint16 fails: {error} Workaround: np.uint16(0)."
        fill_value = np.uint16(0)  # same value and dtype, passes stackstac's type check
    with timer.measure(), dask.config.set(scheduler="threads"):
        items = _stac_items(job)
        dn = stackstac.stack(items, fill_value=fill_value, **options)
        dn = dn.assign_coords(band=job["bands"])
        if len(set(dn.time.values)) < dn.sizes["time"]:  # several products per date
            dn = dn.groupby("time").map(stackstac.mosaic, reverse=True, nodata=fill_value)
        refl = _reflectance_xr(dn, job["radiometry"], job["bands"])
        _write_store(refl, job["store"], like=job.get("like"), chunks=job.get("chunks"))
    return int(refl.size)


def _run_odc_stac(job: dict[str, Any], timer: Timer) -> int:
    import dask
    import odc.stac
    from affine import Affine
    from odc.geo.geobox import GeoBox

    left, bottom, right, top = job["bounds"]
    res = job["resolution"]
    shape = (round((top - bottom) / res), round((right - left) / res))
    keys = [_asset_keys(job)[b] for b in job["bands"]]
    chunk_y, chunk_x = _chunks(job)
    with timer.measure(), dask.config.set(scheduler="threads"):
        items = _stac_items(job)
        geobox = GeoBox(shape, Affine(res, 0.0, left, 0.0, -res, top), f"EPSG:{job['epsg']}")
        loaded = odc.stac.load(
            items,
            bands=keys,
            geobox=geobox,
            chunks={"x": chunk_x, "y": chunk_y},
            dtype="uint16",
            nodata=0,
            resampling="nearest",
            groupby="solar_day",
            preserve_original_order=True,  # products of a date fused in item order
        )
        dn = loaded[keys].to_array("band").transpose("time", "band", "y", "x")
        dn = dn.assign_coords(band=job["bands"])
        _write_store(_reflectance_xr(dn, job["radiometry"], job["bands"]), job["store"],
                     like=job.get("like"), chunks=job.get("chunks"))  # fmt: skip
    return int(dn.size)


def _run_naive(job: dict[str, Any], timer: Timer) -> int:
    import numpy as np
    import rasterio
    import xarray as xr

    with timer.measure():
        scenes = []
        for files, radiometry in zip(job["files_by_product"], job["radiometry"], strict=True):
            layers = []
            for band, path in zip(job["bands"], files, strict=True):
                with rasterio.open(path) as src:
                    dn = src.read(1)
                    transform = src.transform
                offset, quantification = radiometry[band]
                refl = (dn.astype(np.float32) + np.float32(offset)) / np.float32(quantification)
                refl[(dn == 0) | (dn == 65535)] = np.nan
                layers.append(refl)
            scenes.append(np.stack(layers))
        cube = np.stack(scenes)
        del scenes
        height, width = cube.shape[2:]
        res = transform.a
        x = transform.c + res * (np.arange(width) + 0.5)
        y = transform.f - res * (np.arange(height) + 0.5)
        array = xr.DataArray(
            cube,
            dims=("time", "band", "y", "x"),
            coords={"time": np.array(job["times"], "datetime64[ns]"), "band": job["bands"],
                    "y": y, "x": x},
        )  # fmt: skip
        _write_store(array, job["store"], chunks=job.get("chunks"))
    return int(cube.size)


RUNNERS: dict[str, Callable[[dict[str, Any], Timer], int]] = {
    "gdal": _run_gdal,
    "sentinel_cube": _run_sentinel_cube,
    "sentinel_cube_1date": _run_sentinel_cube,
    "sentinel_cube_union": _run_sentinel_cube,
    "stackstac": _run_stackstac,
    "odc_stac": _run_odc_stac,
    "naive": _run_naive,
}


def _sample_check(store: str) -> list[list[float]] | None:
    """(NaN-sum, NaN count) of 3 row strips of every (time, band) of the written store."""
    import numpy as np
    import zarr

    if not Path(store).exists():
        return None
    array = zarr.open_array(store, path=VARIABLE, mode="r")
    n_time, n_band, height, _ = array.shape
    rows = min(64, height)
    strips = sorted({0, max(0, height // 2 - rows // 2), height - rows})
    check = []
    for t in range(n_time):
        for b in range(n_band):
            values = np.concatenate([array[t, b, r : r + rows, :] for r in strips])
            check.append([float(np.nansum(values, dtype=np.float64)), int(np.isnan(values).sum())])
    return check


def _store_check(job: dict[str, Any]) -> list[list[float]] | None:
    return _sample_check(job["store"]) if job.get("store") else None


def worker(
    job_path: str,
    result_path: str,
    runners: dict[str, Callable[[dict[str, Any], Timer], int]] | None = None,
    check: Callable[[dict[str, Any]], Any] | None = None,
) -> None:
    """Run one method once (in this fresh process) and write its measurements as JSON.

    ``runners`` (default :data:`RUNNERS`) maps method names to their code; ``check``
    (default: :func:`_sample_check` of the job's store) runs after the measured work and
    its result is the report's ``check``.
    """
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    timer = Timer()
    load_before = os.getloadavg()[0]
    pixels = (runners or RUNNERS)[job["method"]](job, timer)
    result = {
        "method": job["method"],
        "seconds": timer.seconds,
        "cpu_seconds": timer.cpu_seconds,
        "pixels": pixels,
        "mpix_per_s": pixels / 1e6 / timer.seconds,
        "rss_before_mb": timer.rss_before_mb,
        "peak_rss_mb": timer.peak_mb,
        "loadavg_1min_before": load_before,
        "loadavg_1min_after": os.getloadavg()[0],
        "check": (check or _store_check)(job),
    }
    if job.get("note"):
        result["note"] = job["note"]
    Path(result_path).write_text(json.dumps(result), encoding="utf-8")


# =============================================================================== driver side


def _product_info(paths: list[Path], bands: list[str]) -> list[dict[str, Any]]:
    """What the jobs need to know of each product (from the SAFE metadata)."""
    from shapely.geometry import mapping

    from sentinel_cube import read_product

    info = []
    for path in paths:
        product = read_product(path, require_bands=None)
        band_files = {b: product.band(b) for b in bands}
        info.append(
            {
                "path": str(path),
                "id": product.product_id,
                "datetime": product.sensing_start.isoformat(),
                "time": product.sensing_start.astimezone(dt.UTC).replace(tzinfo=None).isoformat(),
                "epsg": product.epsg,
                "tile": product.tile_id,
                "geometry": mapping(product.footprint),
                "bbox": list(product.footprint.bounds),
                "bounds": list(band_files[bands[0]].bounds),
                "resolution": float(band_files[bands[0]].transform.a),
                "files": [band_files[b].path for b in bands],
                "radiometry": {b: [f.offset, f.quantification] for b, f in band_files.items()},
                "assets": {
                    b: {"href": f.path, "transform": list(f.transform)[:6], "shape": list(f.shape)}
                    for b, f in band_files.items()
                },
            }
        )
    info.sort(key=lambda p: p["datetime"])
    return info


def _stored_chunks(products: list[dict[str, Any]]) -> list[int]:
    """The (y, x) chunks of the store ``sentinel_cube.to_zarr`` writes by default for the
    compared cube: its lazy cube's chunks evened out over the grid."""
    from sentinel_cube import open_cube
    from sentinel_cube.store import even_chunks

    first = products[0]
    cube = open_cube([p["path"] for p in products], list(INGEST_BANDS), first["resolution"],
                     bounds=tuple(first["bounds"]))  # fmt: skip
    return [even_chunks(n, max(c)) for n, c in zip(cube.shape[-2:], cube.chunks[-2:], strict=True)]


def _job(
    method: str, products: list[dict[str, Any]], union: list[str], store: Path, chunks: list[int]
) -> dict:
    """The JSON job of one method; ``chunks``: the stored (and the peers' dask) chunks."""
    bands = list(INGEST_BANDS)
    first = products[0]
    if method == "sentinel_cube_1date":
        products = products[:1]
    job: dict[str, Any] = {
        "method": method,
        "bands": bands,
        "epsg": first["epsg"],
        "resolution": first["resolution"],
        "bounds": first["bounds"],
        "paths": [p["path"] for p in products],
        "files": [f for p in products for f in p["files"]],
        "files_by_product": [p["files"] for p in products],
        "radiometry": [p["radiometry"] for p in products],
        "times": [p["time"] for p in products],
        "stac": products,
        "store": None if method == "gdal" else str(store),
        "chunks": chunks,
    }
    if method == "sentinel_cube_union":
        job["paths"], job["bounds"] = union, None
    return job


def _child_env() -> dict[str, str]:
    """The environment of workers: this one, plus the paths of both packages."""
    import sentinel_cube

    paths = [str(REPO), str(Path(sentinel_cube.__file__).resolve().parents[1])]
    env = dict(os.environ)
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    for name in ("GDAL_NUM_THREADS", "GDAL_CACHEMAX"):  # each method runs with its own defaults
        env.pop(name, None)
    return env


def _run_worker(
    job: dict,
    work: Path,
    tag: str,
    timeout: float,
    module: str = "benchmarks.compare_ingest",
    keep_store: bool = False,
) -> dict[str, Any]:
    """Run one job in a fresh interpreter (``python -m module --worker JOB OUT``) and
    return its measurements, or its error. The job's store is deleted afterwards
    unless ``keep_store``."""
    job_path, result_path, log_path = (work / f"{tag}.{s}" for s in ("job.json", "out.json", "log"))
    job_path.write_text(json.dumps(job), encoding="utf-8")
    command = [sys.executable, "-m", module, "--worker", str(job_path), str(result_path)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=_child_env(), stdout=log, stderr=log)
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            process.wait()
        except BaseException:
            process.kill()
            raise
        finally:
            timer.cancel()
    if job.get("store") and not keep_store:
        shutil.rmtree(job["store"], ignore_errors=True)
    if process.returncode != 0 or not result_path.exists():
        lines = log_path.read_text(errors="replace").strip().splitlines()
        error = lines[-1].strip() if lines else f"exit code {process.returncode}"
        return {"method": job["method"], "error": error}
    return json.loads(result_path.read_text(encoding="utf-8"))


def _warm_page_cache(files: list[str]) -> None:
    for path in files:
        with open(path, "rb") as handle:
            while handle.read(16 << 20):
                pass


def _summary(name: str, runs: list[dict[str, Any]], label: str | None = None) -> dict[str, Any]:
    """Medians of the runs of one method (``label``: default the method's in :data:`METHODS`)."""
    good = [r for r in runs if "error" not in r]
    errors = [r["error"] for r in runs if "error" in r]
    label = label or METHODS[name].label
    summary: dict[str, Any] = {"method": name, "label": label, "runs": runs}
    if errors:
        summary["errors"] = errors
    notes = sorted({r["note"] for r in runs if r.get("note")})
    if notes:
        summary["notes"] = notes
    if good:
        summary.update(
            seconds=statistics.median(r["seconds"] for r in good),
            mpix_per_s=statistics.median(r["mpix_per_s"] for r in good),
            cpu_seconds=statistics.median(r["cpu_seconds"] for r in good),
            mpix_per_cpu_s=statistics.median(r["pixels"] / 1e6 / r["cpu_seconds"] for r in good),
            loadavg_median=statistics.median(r["loadavg_1min_before"] for r in good),
            pixels=good[0]["pixels"],
            peak_rss_mb=max(r["peak_rss_mb"] for r in good),
            rss_before_mb=statistics.median(r["rss_before_mb"] for r in good),
            rounds_ok=len(good),
        )
    return summary


def _same_pixels(summaries: dict[str, dict[str, Any]]) -> dict[str, bool]:
    """Whether each store's sampled strips equal those of sentinel_cube's store."""

    def check_of(name: str) -> Any:
        runs = [r for r in summaries.get(name, {}).get("runs", []) if r.get("check")]
        return runs[0]["check"] if runs else None

    reference = check_of("sentinel_cube")
    result = {}
    for name in ("stackstac", "odc_stac", "naive"):
        other = check_of(name)
        if reference is not None and other is not None:
            result[name] = other == reference
    return result


def _ratio(
    a: dict[str, Any] | None, b: dict[str, Any] | None, key: str = "mpix_per_s"
) -> float | None:
    """Throughput of ``a`` over ``b`` (> 1: ``a`` is faster)."""
    if not a or not b or key not in a or key not in b:
        return None
    return a[key] / b[key]


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    """The Markdown table (and ratios) of a comparison report."""
    summaries = report["methods"]
    gdal = summaries.get("gdal")
    cpu = "mpix_per_cpu_s"
    lines = [
        "| method | MPix/s (median) | wall s (median) | CPU s (median) | MPix per CPU s "
        "| peak RSS MB | RSS before work MB | ratio to (a), wall | ratio to (a), CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for summary in summaries.values():
        if "mpix_per_s" not in summary:
            error = summary.get("errors", ["no run"])[0].replace("|", "/")[:300]
            lines.append(f"| {summary['label']} | error: {error} | | | | | | | |")
            continue
        lines.append(
            f"| {summary['label']} | {summary['mpix_per_s']:.1f} | {summary['seconds']:.1f} "
            f"| {summary['cpu_seconds']:.1f} | {summary[cpu]:.2f} "
            f"| {summary['peak_rss_mb']:.0f} | {summary['rss_before_mb']:.0f} "
            f"| {_fmt(_ratio(summary, gdal))} | {_fmt(_ratio(summary, gdal, cpu))} |"
        )
    b = summaries.get("sentinel_cube")
    lines.append("")
    lines.append(
        f"- b/a (sentinel_cube / raw GDAL decode): {_fmt(_ratio(b, gdal))} by wall time, "
        f"{_fmt(_ratio(b, gdal, cpu))} by CPU time"
    )
    for peer in ("stackstac", "odc_stac"):
        other = summaries.get(peer)
        lines.append(
            f"- b/c ({peer}): {_fmt(_ratio(b, other))} by wall time, "
            f"{_fmt(_ratio(b, other, cpu))} by CPU time"
        )
    one = summaries.get("sentinel_cube_1date", {})
    if b and "peak_rss_mb" in b and "peak_rss_mb" in one:
        lines.append(
            f"- peak RSS of (b): {one['peak_rss_mb']:.0f} MB with 1 date, "
            f"{b['peak_rss_mb']:.0f} MB with {report['config']['dates']} dates"
        )
    loads = [
        r["loadavg_1min_before"]
        for s in summaries.values()
        for r in s.get("runs", [])
        if "loadavg_1min_before" in r
    ]
    if loads:
        lines.append(
            f"- 1-minute load average before the runs: {min(loads):.1f} to {max(loads):.1f} "
            f"on {report['machine']['cpu_count']} cores (shared machine)"
        )
    for summary in summaries.values():
        for note in summary.get("notes", []):
            lines.append(f"- note, {summary['label']}: {note}")
    same = report.get("same_pixels") or {}
    if same:
        text = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in same.items())
        lines.append(f"- sampled output strips identical to sentinel_cube's: {text}")
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import rasterio

    found = {"python": platform.python_version(), "gdal": rasterio.__gdal_version__}
    for name in ("rasterio", "numpy", "dask", "xarray", "zarr", "stackstac", "odc-stac",
                 "pystac"):  # fmt: skip
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "missing"
    return found


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Generate (or reuse) the archive, run every method ``rounds`` times, summarise.

    With ``--out``, the report is rewritten after every run (``"complete": false``
    until the end), so an interrupted comparison keeps what it measured.
    """
    chosen = {m.strip() for m in args.only.split(",") if m.strip()} or set(DEFAULT_METHODS)
    unknown = chosen - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown method(s) {sorted(unknown)}; choose from {', '.join(METHODS)}")
    methods = [m for m in METHODS if m in chosen]  # the table's order
    started = time.perf_counter()
    archive = ingest_archive(dates=args.dates, scale=args.scale)
    print(f"archive {archive.root} ready in {time.perf_counter() - started:.0f} s", flush=True)
    products = _product_info(archive.products_of(COMPARED_TILE), list(INGEST_BANDS))
    union = [str(p) for p in archive.paths]
    all_files = [f for p in _product_info(archive.paths, list(INGEST_BANDS)) for f in p["files"]]
    _warm_page_cache(all_files)

    left, bottom, right, top = products[0]["bounds"]
    resolution = products[0]["resolution"]
    config = {
        "scale": args.scale,
        "dates": args.dates,
        "rounds": args.rounds,
        "tile": COMPARED_TILE,
        "bands": list(INGEST_BANDS),
        "resolution_m": resolution,
        "shape": [
            len(products),
            len(INGEST_BANDS),
            round((top - bottom) / resolution),
            round((right - left) / resolution),
        ],
        "chunk": CHUNK,
    }
    machine = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "note": "shared machine: other processes may have been running (see loadavg)",
    }
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    if args.resume and args.out and args.out.exists():
        saved = json.loads(args.out.read_text(encoding="utf-8"))
        same = {k: v for k, v in saved["config"].items() if k != "rounds"}
        if same != {k: v for k, v in config.items() if k != "rounds"}:
            raise SystemExit(f"{args.out} holds another configuration: {saved['config']}")
        for name, summary in saved["methods"].items():
            if name in runs:
                runs[name] = summary["runs"][: args.rounds]
        machine["started"] = saved["machine"]["started"]
        print(f"resuming: {sum(map(len, runs.values()))} runs read from {args.out}", flush=True)

    def report(complete: bool) -> dict[str, Any]:
        summaries = {m: _summary(m, runs[m]) for m in methods if runs[m]}
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        result = {
            "complete": complete,
            "config": config,
            "machine": {**machine, "finished": now},
            "versions": _versions(),
            "methods": summaries,
            "same_pixels": _same_pixels(summaries),
        }
        result["markdown"] = markdown(result)
        if args.out:
            args.out.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
        return result

    chunks = _stored_chunks(products)
    work = Path(tempfile.mkdtemp(prefix="compare-ingest-", dir=args.workdir))
    try:
        for round_index in range(args.rounds):
            for method in methods:
                if len(runs[method]) > round_index:  # measured before (--resume)
                    continue
                tag = f"{method}-{round_index}"
                job = _job(method, products, union, work / f"{tag}.zarr", chunks)
                result = _run_worker(job, work, tag, args.timeout)
                runs[method].append(result)
                if "error" in result:
                    print(f"round {round_index + 1} {method}: ERROR {result['error']}", flush=True)
                else:
                    print(
                        f"round {round_index + 1} {method}: {result['seconds']:.1f} s "
                        f"(CPU {result['cpu_seconds']:.1f} s), {result['mpix_per_s']:.1f} MPix/s, "
                        f"peak {result['peak_rss_mb']:.0f} MB "
                        f"(load {result['loadavg_1min_before']:.1f})",
                        flush=True,
                    )
                report(complete=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report(complete=True)


def comparison_parser(
    doc: str | None, methods: Iterable[str], *, scale: int, dates: int
) -> argparse.ArgumentParser:
    """The options of every side-by-side script, with its defaults of ``--scale`` and
    ``--dates`` (``--worker JOB RESULT``, hidden, runs one job in a subprocess)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=scale,
                        help=f"archive scale (1 = full size; default {scale})")  # fmt: skip
    parser.add_argument("--dates", type=int, default=dates,
                        help=f"dates in the archive (default {dates})")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="runs of each method (medians)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {list(methods)}")
    parser.add_argument("--out", type=Path, help="write the full report as JSON here")
    parser.add_argument("--workdir", default=None,
                        help="folder for the workers' files and Zarr stores")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    parser.add_argument("--worker", nargs=2, metavar=("JOB", "RESULT"), help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = comparison_parser(__doc__, METHODS, scale=1, dates=3)
    parser.add_argument(
        "--resume", action="store_true", help="keep the runs already in --out, do the rest"
    )
    parser.add_argument("--report", type=Path, help="only print the table of a saved JSON")
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return
    if args.report:
        saved = json.loads(args.report.read_text(encoding="utf-8"))
        saved["methods"] = {m: _summary(m, s["runs"]) for m, s in saved["methods"].items()}
        print(markdown(saved))
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on kill
    report = run(args)
    print()
    print(report["markdown"])
    if args.out:
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
