"""Down-sampling reads: a 10 m band onto 2x and 4x coarser grids, reduced JP2 level vs full decode.

``open_cube(...).compute()`` of band B04 of one product on its own tile, on a grid of
``factor`` x its pixel size (20 m and 40 m at full size), threaded scheduler, DN units.
Three ways to get there:

- ``level_average``: ``resampling="average"`` with the default ``reduced_levels=None``:
  the JPEG 2000 reduced resolution level 1/factor is decoded (the fast path);
- ``full_average``: ``resampling="average", reduced_levels=False``: the full resolution
  is decoded and averaged by GDAL;
- ``full_nearest``: the default ``resampling="nearest"``: the full resolution is decoded
  and one source pixel of each block is kept.
"""

from __future__ import annotations

import time

import dask
import xarray as xr

from sentinel_cube import read_product
from sentinel_cube.cube import open_cube

from ._data import read_archive

#: method -> (resampling, reduced_levels) given to open_cube
METHODS: dict[str, tuple[str, bool | None]] = {
    "level_average": ("average", None),
    "full_average": ("average", False),
    "full_nearest": ("nearest", None),
}


def downsampled_cube(factor: int, method: str) -> xr.DataArray:
    """The lazy (1, 1, y, x) DN cube of B04 on a grid ``factor`` x coarser than the band."""
    archive = read_archive()
    path = archive.paths[0]
    band = read_product(path, require_bands=None).bands["B04"]
    resampling, reduced_levels = METHODS[method]
    return open_cube(
        [path], bands=["B04"], resolution=band.transform.a * factor, bounds=band.bounds,
        units="dn", resampling=resampling, reduced_levels=reduced_levels,
    )  # fmt: skip


class DownsampledRead:
    """A 10 m band onto a 2x / 4x coarser grid: reduced level vs full-resolution decode."""

    params = [[2, 4], list(METHODS)]
    param_names = ["factor", "method"]
    timeout = 1800  # the first run may generate the archive (~30 s at scale 1)

    def setup(self, factor: int, method: str) -> None:
        self.cube = downsampled_cube(factor, method)

    def time_read(self, factor: int, method: str) -> None:
        with dask.config.set(scheduler="threads"):
            self.cube.compute()

    def track_source_mpix_per_s(self, factor: int, method: str) -> float:
        """Megapixels of the 10 m band covered per second of wall time."""
        started = time.perf_counter()
        with dask.config.set(scheduler="threads"):
            self.cube.compute()
        pixels = self.cube.size * factor * factor
        return pixels / 1e6 / (time.perf_counter() - started)

    track_source_mpix_per_s.unit = "MPix/s"  # type: ignore[attr-defined]
