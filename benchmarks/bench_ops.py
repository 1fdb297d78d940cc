"""Cube-operation benchmarks: exact stretch, clip and flox aggregation vs their peers.

Every operation but ``StretchZarr`` runs on the same in-memory cube (read once in
``setup``), so the figures measure the operation, not JPEG 2000 decoding:

- ``Stretch``: exact percentiles vs a plain reduction (``max``) over the same data
  vs ``dask.array.percentile`` (approximate, 1-D);
- ``StretchZarr``: ``stretch`` of a cube read from a Zarr store vs a plain ``max`` over
  the same store (target: <= 1.3x), and the ratio of the two;
- ``Clip``: ``sentinel_cube.clip`` vs ``rio.clip`` (time and peak memory);
- ``Aggregate``: monthly median through flox vs xarray's resample without flox.
"""

from __future__ import annotations

import statistics
import time

import dask
import dask.array as da
import xarray as xr
from shapely.geometry import Point

import sentinel_cube as sc
from sentinel_cube.ops._clip import aoi_in_crs

from ._data import INGEST_BANDS, bench_scale, ingest_archive, ingest_store

#: A ring around central Budapest with a hole (a realistic, awkward AOI).
AOI = Point(19.05, 47.5).buffer(0.3).difference(Point(19.05, 47.5).buffer(0.05))


def _cube(dates: int = 3, units: str = "reflectance") -> xr.DataArray:
    archive = ingest_archive(dates=dates)
    cube = sc.open_cube(list(archive.products_of(dates=dates)), bands=list(INGEST_BANDS),
                        resolution=10 * bench_scale(), units=units)  # fmt: skip
    with dask.config.set(scheduler="threads"):
        return cube.persist()


class Stretch:
    """Exact per-band percentiles over (time, y, x) against a plain reduction."""

    params = ["reflectance", "dn"]
    param_names = ["units"]
    timeout = 600

    def setup(self, units: str) -> None:
        self.cube = _cube(units=units)

    def time_plain_max(self, units: str) -> None:
        self.cube.max(("time", "y", "x")).compute()

    def time_exact_percentiles(self, units: str) -> None:
        sc.cube_percentiles(self.cube, (2, 98)).compute()

    def time_dask_percentile_approximate(self, units: str) -> None:
        data = self.cube.data
        for b in range(data.shape[1]):
            values = data[:, b].ravel()
            values = values[~da.isnan(values)] if units == "reflectance" else values[values != 0]
            da.percentile(values, [2, 98]).compute()

    def peakmem_exact_percentiles(self, units: str) -> None:
        sc.cube_percentiles(self.cube, (2, 98)).compute()

    def track_ratio_exact_to_max(self, units: str) -> float:
        start = time.perf_counter()
        self.cube.max(("time", "y", "x")).compute()
        plain = time.perf_counter() - start
        start = time.perf_counter()
        sc.cube_percentiles(self.cube, (2, 98)).compute()
        return (time.perf_counter() - start) / plain

    track_ratio_exact_to_max.unit = "ratio"  # type: ignore[attr-defined]


class StretchZarr:
    """``stretch`` of a cube read back from a Zarr store (written by ``to_zarr``) vs ``max``.

    ``stretch`` computes the exact per-band 2/98 % percentiles over (time, y, x), its
    only pass over the data (the stretched pixels stay lazy); ``stretch_pixels``
    computes the stretched uint8 cube too, a second pass.
    """

    params = ["reflectance", "dn"]
    param_names = ["units"]
    timeout = 600

    def setup(self, units: str) -> None:
        self.cube = sc.open_zarr(ingest_store(units=units))

    def time_plain_max(self, units: str) -> None:
        self.cube.max(("time", "y", "x")).compute()

    def time_stretch(self, units: str) -> None:
        sc.stretch(self.cube, (2, 98))

    def time_stretch_pixels(self, units: str) -> None:
        sc.stretch(self.cube, (2, 98)).compute()

    def track_ratio_stretch_to_max(self, units: str) -> float:
        """Median of 3 rounds of (stretch time / max time), each pair timed back to back."""
        ratios = []
        for _ in range(3):
            start = time.perf_counter()
            self.cube.max(("time", "y", "x")).compute()
            plain = time.perf_counter() - start
            start = time.perf_counter()
            sc.stretch(self.cube, (2, 98))
            ratios.append((time.perf_counter() - start) / plain)
        return statistics.median(ratios)

    track_ratio_stretch_to_max.unit = "ratio"  # type: ignore[attr-defined]


class Clip:
    """Clip to a ring-shaped AOI: chunk-wise masks vs rio.clip's full-size mask."""

    timeout = 600

    def setup(self) -> None:
        self.cube = _cube()
        self.geometry = aoi_in_crs(AOI, self.cube.rio.crs)

    def time_sentinel_cube_clip(self) -> None:
        sc.clip(self.cube, AOI).compute()

    def time_rio_clip(self) -> None:
        self.cube.rio.clip([self.geometry], self.cube.rio.crs, drop=True).compute()

    def peakmem_sentinel_cube_clip(self) -> None:
        sc.clip(self.cube, AOI).compute()

    def peakmem_rio_clip(self) -> None:
        self.cube.rio.clip([self.geometry], self.cube.rio.crs, drop=True).compute()


class Aggregate:
    """Monthly median: flox (through sentinel_cube.aggregate) vs plain xarray resample."""

    timeout = 600

    def setup(self) -> None:
        self.cube = _cube()

    def time_aggregate_flox(self) -> None:
        sc.aggregate(self.cube, freq="MS", how="median").compute()

    def time_resample_without_flox(self) -> None:
        with xr.set_options(use_flox=False):
            self.cube.resample(time="MS").median().compute()

    def peakmem_aggregate_flox(self) -> None:
        sc.aggregate(self.cube, freq="MS", how="median").compute()
