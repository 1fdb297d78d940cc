"""Cloud-optimised GeoTIFF copies of band files: same pixels, same grid.

Earth Search v1 and Planetary Computer serve Sentinel-2 L2A bands as COGs converted
from ESA's JPEG 2000 files: tiled, DEFLATE-compressed, with internal overviews and
no data 0. :func:`write_cog` makes the same from a generated band file with GDAL's
COG driver; the full-resolution pixels are the JP2's DN, bit for bit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = ["EARTH_SEARCH_COG", "PLANETARY_COMPUTER_COG", "CogProfile", "write_cog"]


@dataclass(frozen=True)
class CogProfile:
    """How a provider's COGs are written.

    Attributes
    ----------
    blocksize : int
        Tile side in pixels (a multiple of 16).
    compress : str
        ``"DEFLATE"``, ``"ZSTD"``, ``"LZW"``...
    predictor : int
        TIFF predictor (2: horizontal differencing, what integer bands use).
    level : int or None
        Compression level; None: GDAL's default.
    overview_resampling : str
        Resampling of the overviews of reflectance bands (class bands always use
        ``NEAREST``).

    Examples
    --------
    >>> EARTH_SEARCH_COG.for_scale(1).blocksize, EARTH_SEARCH_COG.for_scale(61).blocksize
    (1024, 128)
    """

    blocksize: int = 1024
    compress: str = "DEFLATE"
    predictor: int = 2
    level: int | None = None
    overview_resampling: str = "AVERAGE"

    def for_scale(self, scale: int) -> CogProfile:
        """The profile for an archive of ``scale``: the provider's tiles at full size,
        128 px otherwise (the rule of the generator's JP2 tiles)."""
        return self if scale == 1 else replace(self, blocksize=min(self.blocksize, 128))

    def options(self, class_band: bool) -> dict[str, str]:
        """GDAL COG driver creation options."""
        options = {
            "BLOCKSIZE": str(self.blocksize),
            "COMPRESS": self.compress,
            "PREDICTOR": str(self.predictor),
            # regenerate overviews with a real resampling: the JP2's reduced levels are
            # wavelet approximations, not what providers ship
            "OVERVIEWS": "IGNORE_EXISTING",
            "OVERVIEW_RESAMPLING": "NEAREST" if class_band else self.overview_resampling,
            "NUM_THREADS": "1",
        }
        if self.level is not None:
            options["LEVEL"] = str(self.level)
        return options


#: Earth Search v1 ``sentinel-s2-l2a-cogs``: 1024 px tiles, DEFLATE, overviews.
EARTH_SEARCH_COG = CogProfile(blocksize=1024)
#: Planetary Computer ``sentinel2-l2`` (assumed like Earth Search but 512 px tiles).
PLANETARY_COMPUTER_COG = CogProfile(blocksize=512)


def write_cog(source: str | Path, target: str | Path, profile: CogProfile,
              *, class_band: bool = False, shift: int = 0) -> Path:  # fmt: skip
    """Write ``source`` (any raster GDAL reads) as a COG at ``target``, no data 0.

    The pixels are read whole and written unchanged (but for ``shift``); the CRS and
    transform are the source's. The file is written beside ``target`` and renamed
    into place.

    Parameters
    ----------
    source, target : path
    profile : CogProfile
    class_band : bool
        Overviews by nearest neighbour (``SCL``).
    shift : int
        Added to every DN but no data (0) and saturation (65535), kept >= 1: how
        Earth Search applied ESA's offset to the pixels of its harmonised COGs.

    Returns
    -------
    pathlib.Path
        ``target``.

    Examples
    --------
    >>> write_cog("T34TCT_20230706T094551_B04_10m.jp2", "B04.tif", EARTH_SEARCH_COG)
    ... # doctest: +SKIP
    PosixPath('B04.tif')
    """
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy as rio_copy

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    with rasterio.Env(GDAL_NUM_THREADS=1), rasterio.open(source) as src:
        data = src.read()
        if shift:
            import numpy as np

            valid = (data != 0) & (data != 65535)
            shifted = np.clip(data.astype(np.int64) + shift, 1, 65534).astype(data.dtype)
            data = np.where(valid, shifted, data)
        meta = {"driver": "GTiff", "width": src.width, "height": src.height,
                "count": src.count, "dtype": src.dtypes[0], "crs": src.crs,
                "transform": src.transform, "nodata": 0}  # fmt: skip
    with MemoryFile() as memory, memory.open(**meta) as staged:
        staged.write(data)
        rio_copy(staged, part, driver="COG", **profile.options(class_band))
    os.replace(part, target)
    return target
