"""sentinel_cube: Sentinel-2 products to lazy (time, band, y, x) cubes.

Search a catalogue, study the products' metadata, read ``.SAFE`` products in
place and stack their bands into dask-backed xarray cubes.

Examples
--------
>>> import sentinel_cube as sc
>>> cat = sc.LocalCatalog("archive/")                               # doctest: +SKIP
>>> products = cat.search(sc.read_aoi("budapest.geojson"),          # doctest: +SKIP
...                       date=("2023-06-01", "2023-08-31"), producttype="S2MSI2A")
"""

from importlib.metadata import PackageNotFoundError, version

from . import analysis, indices, plot
from .aoi import aoi_hull, geocode, read_aoi
from .catalog import (
    ArchiveCatalog,
    CDSECatalog,
    DHuSCatalog,
    DownloadResult,
    LocalCatalog,
    STACCatalog,
    coverage,
)
from .cube import open_cube
from .exceptions import (
    AOIError,
    CatalogError,
    MissingExtraError,
    ProductError,
    SentinelCubeError,
    SentinelCubeWarning,
)
from .export import to_geotiff, to_png
from .ops import aggregate, clip, cube_percentiles, mask_clouds, stretch
from .safe import BandFile, Product, read_product
from .store import WriteReport, open_zarr, to_zarr

try:
    __version__ = version("sentinel-cube")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

from .report import write_report  # noqa: E402  (the report stamps __version__)

__all__ = [
    "AOIError",
    "BandFile",
    "CDSECatalog",
    "CatalogError",
    "DHuSCatalog",
    "DownloadResult",
    "ArchiveCatalog",
    "LocalCatalog",
    "MissingExtraError",
    "Product",
    "ProductError",
    "SentinelCubeError",
    "STACCatalog",
    "SentinelCubeWarning",
    "WriteReport",
    "__version__",
    "aggregate",
    "analysis",
    "aoi_hull",
    "clip",
    "coverage",
    "cube_percentiles",
    "geocode",
    "indices",
    "mask_clouds",
    "open_cube",
    "open_zarr",
    "plot",
    "read_aoi",
    "read_product",
    "stretch",
    "to_geotiff",
    "to_png",
    "to_zarr",
    "write_report",
]
