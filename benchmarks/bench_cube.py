"""Cube benchmarks: planning 1,000 products without IO, computing a cube, ingesting to Zarr."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import pickle
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import dask
import rasterio
from affine import Affine
from shapely.geometry import LineString

from sentinel_cube import Product, read_product
from sentinel_cube._plan import plan_cube
from sentinel_cube.cube import open_cube
from sentinel_cube.store import to_zarr

from ._data import INGEST_BANDS, bench_dir, bench_scale, ingest_archive

N_PRODUCTS = 1000

# --------------------------------------------------------------------------- no-IO guard

_watch: list[str] = []  # path prefixes nobody may open while the guard is active
_seen: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _watch or event not in ("open", "os.listdir", "os.scandir"):
        return
    target = args[0] if args else None
    if isinstance(target, str | bytes | os.PathLike):
        text = os.fsdecode(target)
        if any(prefix in text for prefix in _watch):
            _seen.append(f"{event} {text}")


_hooked = False


@contextmanager
def no_file_access(*prefixes: str) -> Iterator[list[str]]:
    """Fail any ``rasterio.open`` and record Python-level opens/listings under ``prefixes``."""
    global _hooked
    if not _hooked:
        sys.addaudithook(_audit)  # audit hooks cannot be removed: it is idle outside guards
        _hooked = True
    _seen.clear()
    _watch[:] = list(prefixes)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"planning opened a raster: {args[:1]}")

    try:
        with mock.patch.object(rasterio, "open", refuse):
            yield _seen
    finally:
        _watch.clear()


# --------------------------------------------------------------------------- 1,000 products


def _full_size(product: Product, scale: int) -> Product:
    """The same product with ESA's full-size band geometry (metadata only)."""
    bands = {}
    for name, band in product.bands.items():
        t = band.transform
        bands[name] = dataclasses.replace(
            band,
            shape=(band.shape[0] * scale, band.shape[1] * scale),
            transform=Affine(t.a / scale, 0.0, t.c, 0.0, t.e / scale, t.f),
        )
    return dataclasses.replace(product, bands=bands)


def thousand_products(
    real: list[Product], virtual_root: str, full_size: bool, n: int = N_PRODUCTS
) -> list[Product]:
    """``n`` (1,000) products cloned from ``real`` (one date, several tiles), one day apart.

    Product and band paths point into ``virtual_root``, which does not exist, so any
    attempt to open them fails.
    """
    scale = bench_scale()
    products = []
    per_day = len(real)
    for i in range(n):
        base = _full_size(real[i % per_day], scale) if full_size else real[i % per_day]
        shift = dt.timedelta(days=i // per_day)
        start = base.sensing_start + shift
        old_stamp = f"{base.sensing_start:%Y%m%dT%H%M%S}"
        product_id = base.product_id.replace(old_stamp, f"{start:%Y%m%dT%H%M%S}", 1)
        root = f"{virtual_root}/{product_id}.SAFE"
        bands = {
            name: dataclasses.replace(band, path=f"{root}/{Path(band.path).name}")
            for name, band in base.bands.items()
        }
        products.append(
            dataclasses.replace(
                base,
                path=root,
                product_id=product_id,
                sensing_start=start,
                generation_time=(base.generation_time or start) + shift,
                bands=bands,
            )
        )
    return products


class PlanThousand:
    """Planning a 1,000-product cube (500 days x 2 tiles, 4 bands) from metadata alone.

    ``geometry="bench"`` uses the bench archive's pixel size; ``"full"`` gives the
    same products ESA's full-size geometry (10980 px tiles at 10 m), as planning a
    real archive does. No file is opened: rasters are refused and every path points
    to a folder that does not exist.
    """

    params = [["bench", "full"]]
    param_names = ["geometry"]
    timeout = 600
    n_products = N_PRODUCTS

    def setup(self, geometry: str) -> None:
        archive = ingest_archive()
        real = [read_product(p, require_bands=None) for p in archive.products_of(dates=1)]
        self.virtual = str(archive.root / "virtual-does-not-exist")
        self.watch = (str(archive.root), self.virtual)
        self.products = thousand_products(
            real, self.virtual, full_size=geometry == "full", n=self.n_products
        )
        self.resolution = 10 * (1 if geometry == "full" else bench_scale())

    def _plan(self):
        with no_file_access(*self.watch) as opened:
            plan = plan_cube(self.products, INGEST_BANDS, self.resolution)
        if opened:
            raise AssertionError(f"planning touched files: {opened[:3]}")
        return plan

    def time_plan_cube(self, geometry: str) -> None:
        self._plan()

    def time_open_cube_graph(self, geometry: str) -> None:
        """``open_cube`` on Products: plan + dask graph + coordinates, still no IO."""
        with no_file_access(*self.watch) as opened:
            open_cube(self.products, INGEST_BANDS, self.resolution)
        if opened:
            raise AssertionError(f"open_cube touched files: {opened[:3]}")

    def track_dask_tasks(self, geometry: str) -> int:
        """Tasks in the dask graph of ``open_cube`` on the products (target: <= 100,000
        for 1,000 full-size products)."""
        with no_file_access(*self.watch):
            cube = open_cube(self.products, INGEST_BANDS, self.resolution)
        return len(cube.data.__dask_graph__())

    track_dask_tasks.unit = "tasks"  # type: ignore[attr-defined]

    def track_reader_mb(self, geometry: str) -> float:
        """Pickled size of the graph's one shared reader: every product's band files,
        radiometry and footprint, sent once to each worker. Tasks add ~150 bytes each."""
        with no_file_access(*self.watch):
            cube = open_cube(self.products, INGEST_BANDS, self.resolution)
        root = f"original-{cube.data.name}"
        return len(pickle.dumps(dict(cube.data.__dask_graph__().layers[root]))) / 1e6

    track_reader_mb.unit = "MB"  # type: ignore[attr-defined]


class PlanTenThousand(PlanThousand):
    """The same with 10,000 full-size products (5,000 days x 2 tiles): a country over
    years. Target: ``open_cube`` in < 20 s, 10 x the 1,000-product time (linear).

    At the smoke test's tiny scale (61) it plans 2,000 products: that run checks that
    the benchmark works, not its figures.
    """

    params = [["full"]]

    @property
    def n_products(self) -> int:  # type: ignore[override]
        return 2 * N_PRODUCTS if bench_scale() == 61 else 10 * N_PRODUCTS


# --------------------------------------------------------------------------- pixels


class _Ingest:
    """Common setup: the ingest archive (2 tiles x 3 dates x B02 B03 B04 B08)."""

    timeout = 1800  # the first run may generate the archive (minutes at scale 1)

    def setup(self, *params: Any) -> None:
        archive = ingest_archive()
        self.paths = [str(p) for p in archive.paths]
        self.tile_paths = [str(p) for p in archive.products_of("34TCT")]
        first = read_product(self.tile_paths[0], require_bands=None)
        self.tile_bounds = first.bands["B04"].bounds
        self.resolution = 10 * archive.scale
        bench_dir().mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="ingest-", dir=bench_dir()))

    def teardown(self, *params: Any) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def cube(self, units: str = "reflectance", extent: str = "union"):
        if extent == "tile":
            return open_cube(
                self.tile_paths, INGEST_BANDS, self.resolution, units=units,
                bounds=self.tile_bounds,
            )  # fmt: skip
        return open_cube(self.paths, INGEST_BANDS, self.resolution, units=units)


class ComputeCube(_Ingest):
    """``open_cube(paths).compute()`` on the threaded scheduler: metadata, decode, mosaic.

    ``extent="tile"``: tile 34TCT on its own grid (3 products, native windowed reads
    only). ``"union"``: both tiles mosaicked (6 products; they overlap by 9.8 km). The
    34TDT pixel grid coincides with 34TCT's only at scales 1, 2, 3 and 6, so at the
    default scale 10 its pixels go through the (exact) warper: slower than at full size.
    """

    params = [["reflectance", "dn"], ["tile", "union"]]
    param_names = ["units", "extent"]

    def time_compute(self, units: str, extent: str) -> None:
        with dask.config.set(scheduler="threads"):
            self.cube(units, extent).compute()

    def peakmem_compute(self, units: str, extent: str) -> None:
        with dask.config.set(scheduler="threads"):
            self.cube(units, extent).compute()


class IngestZarr(_Ingest):
    """``open_cube`` + ``to_zarr(mode="w")``: the whole ingest, float32 reflectance."""

    params = [["zstd", "lz4"]]
    param_names = ["codec"]

    def _ingest(self, codec: str):
        with dask.config.set(scheduler="threads"):
            return to_zarr(
                self.cube(), self.tmp / "cube.zarr", mode="w", codec=codec, progress=False
            )

    def time_ingest(self, codec: str) -> None:
        self._ingest(codec)

    def peakmem_ingest(self, codec: str) -> None:
        self._ingest(codec)

    def track_ingest_mpix_per_s(self, codec: str) -> float:
        """Output megapixels (time x band x y x x) per second, as ``WriteReport`` says."""
        return self._ingest(codec).mpix_per_s

    track_ingest_mpix_per_s.unit = "MPix/s"  # type: ignore[attr-defined]

    def track_ingest_cpu_utilisation(self, codec: str) -> float:
        """CPU seconds of the ingest over (wall seconds x cores), in %: 100 when every
        core is busy from the first chunk to the last commit (no idle barrier)."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        before = os.times()
        started = time.perf_counter()
        self._ingest(codec)
        wall = time.perf_counter() - started
        after = os.times()
        cpu = (after.user - before.user) + (after.system - before.system)
        return 100 * cpu / (wall * (cores or 1))

    track_ingest_cpu_utilisation.unit = "%"  # type: ignore[attr-defined]

    def track_store_mb(self, codec: str) -> float:
        """Size of the store on disk."""
        return self._ingest(codec).bytes_written / 1e6

    track_store_mb.unit = "MB"  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- clipped reads

#: A river-like AOI: a 1.5 km wide band crossing tile 34TCT diagonally (lon, lat).
RIVER = LineString([(18.45, 47.75), (19.05, 47.45), (19.6, 46.95)]).buffer(0.01)


@contextmanager
def decoded_pixels() -> Iterator[list[int]]:
    """Count the pixels of every window the JPEG 2000 decoder decodes (whole tiles), with
    a fresh tile cache: nothing decoded before counts as held."""
    from sentinel_cube import _read
    from sentinel_cube._tiles import TileCache

    counted: list[int] = []

    class Counting(TileCache):
        def _decode(self, file: Any, shape: Any, block: Any, wanted: Any, decode: Any) -> Any:
            def counting(window: Any) -> Any:
                counted.append(int(window.width * window.height))
                return decode(window)

            return super()._decode(file, shape, block, wanted, counting)

    real = _read.TILE_CACHE
    _read.TILE_CACHE = Counting()
    try:
        yield counted
    finally:
        _read.TILE_CACHE = real


class MosaicDecode:
    """The two overlapping Budapest tiles (34TCT and 34TDT, one zone, 9,996 px apart: the
    second tile's chunks are misaligned with its JPEG 2000 tiles) x 3 dates x 4 bands.

    ``track_decoded_per_file_pixel``: pixels decoded per pixel of the band files. 1 is
    every JPEG 2000 tile decoded once: chunks that share a tile no longer decode it each.
    Below 1 only where a later product's tiles lie wholly under pixels an earlier one
    filled; neighbouring tiles of one zone overlap by 9.8 km, less than one 10.24 km JP2
    tile, so not here (on the zone boundary, ``compare_large``, it does).
    """

    timeout = 600

    def setup(self) -> None:
        archive = ingest_archive()
        self.paths = [str(p) for p in archive.products_of()]
        self.resolution = 10 * archive.scale
        self.file_pixels = 0
        for path in self.paths:
            product = read_product(path, require_bands=list(INGEST_BANDS))
            for band in INGEST_BANDS:
                rows, cols = product.bands[band].shape
                self.file_pixels += rows * cols

    def track_decoded_per_file_pixel(self) -> float:
        cube = open_cube(self.paths, INGEST_BANDS, self.resolution)
        with decoded_pixels() as counted, dask.config.set(scheduler="threads"):
            cube.compute()
        return sum(counted) / self.file_pixels

    track_decoded_per_file_pixel.unit = "px/px"  # type: ignore[attr-defined]


class ClipDecode:
    """A cube clipped to a thin AOI: ``open_cube(aoi)`` reads the AOI's box,
    ``clip=True`` only the JPEG 2000 tiles holding pixels inside the polygon.

    ``track_decoded_per_output_pixel``: pixels decoded per output pixel inside the AOI
    (1 would decode nothing else). At scales other than 1 the archive's JP2 tiles are
    128 px (ESA's are 1024 px at 10 m): the figure depends on tile size and AOI shape.
    """

    params = [["box", "polygon"]]
    param_names = ["read"]
    timeout = 600

    def setup(self, read: str) -> None:
        archive = ingest_archive()
        self.paths = [str(p) for p in archive.products_of("34TCT")]
        self.resolution = 10 * archive.scale

    def _cube(self, read: str):
        return open_cube(self.paths, INGEST_BANDS, self.resolution, aoi=RIVER,
                         clip=read == "polygon")  # fmt: skip

    def time_compute(self, read: str) -> None:
        with dask.config.set(scheduler="threads"):
            self._cube(read).compute()

    def track_decoded_per_output_pixel(self, read: str) -> float:
        cube = self._cube(read)
        with decoded_pixels() as counted, dask.config.set(scheduler="threads"):
            cube.compute()
        clipped = open_cube(self.paths, INGEST_BANDS, self.resolution, aoi=RIVER, clip=True)
        inside = int(clipped.notnull().sum().compute())
        return sum(counted) / inside

    track_decoded_per_output_pixel.unit = "px/px"  # type: ignore[attr-defined]
