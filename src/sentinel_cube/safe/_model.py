"""Immutable description of a Sentinel-2 product, as read from its metadata.

These value objects hold no open file and are cheap to pickle, so they travel
with dask tasks. Nothing here performs IO.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from affine import Affine
from shapely.geometry.base import BaseGeometry

__all__ = ["BandFile", "Product"]


@dataclass(frozen=True, repr=False)
class BandFile:
    """One band raster of a product at its native resolution.

    Attributes
    ----------
    band : str
        Canonical band name (``"B04"``, ``"B8A"``, ``"SCL"``).
    path : str
        Path GDAL opens: a file path for ``.SAFE`` folders, a ``/vsizip/`` path
        for zipped products.
    resolution : int
        Nominal resolution in metres, as in the file name (10, 20 or 60).
    shape : tuple of int
        ``(rows, cols)`` of the raster, from the tile metadata.
    transform : affine.Affine
        Pixel-to-map transform in the product's UTM CRS (upper-left corner).
    offset : float
        Additive radiometric offset (``RADIO_ADD_OFFSET`` / ``BOA_ADD_OFFSET``;
        0 before processing baseline 04.00 and for SCL).
    quantification : float
        ``QUANTIFICATION_VALUE``; ``reflectance = (DN + offset) / quantification``.
        1 for SCL (class codes).
    nodata : int
        DN that marks no data (0).
    saturated : int
        DN that marks saturated pixels (65535).
    """

    band: str
    path: str
    resolution: int
    shape: tuple[int, int]
    transform: Affine
    offset: float = 0.0
    quantification: float = 10000.0
    nodata: int = 0
    saturated: int = 65535

    def __repr__(self) -> str:  # the path of a signed URL holds a secret: shown without it
        from .._cloud import scrub

        fields = ", ".join(
            f"{name}={scrub(value)!r}" if name == "path" else f"{name}={value!r}"
            for name, value in ((f, getattr(self, f)) for f in self.__dataclass_fields__)
        )
        return f"BandFile({fields})"

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in the product's CRS."""
        rows, cols = self.shape
        left, top = self.transform.c, self.transform.f
        right = left + cols * self.transform.a
        bottom = top + rows * self.transform.e
        return (left, bottom, right, top)


@dataclass(frozen=True)
class Product:
    """Metadata of one Sentinel-2 L1C or L2A product (one MGRS tile, one datatake).

    Attributes
    ----------
    path : str
        The ``.SAFE`` folder or ``.zip`` file on disk.
    product_id : str
        Product name without ``.SAFE``
        (e.g. ``S2B_MSIL2A_20230810T094549_N0509_R079_T34TCT_20230810T124346``).
    platform : str
        ``"S2A"``, ``"S2B"``, ``"S2C"``...
    processing_level : str
        ``"L1C"`` or ``"L2A"``.
    producttype : str
        ``"S2MSI1C"`` or ``"S2MSI2A"``.
    processing_baseline : str
        ``"05.09"``-style baseline.
    sensing_start : datetime
        Product start time (tz-aware UTC).
    generation_time : datetime or None
        Processing time (tz-aware UTC).
    tile_id : str
        MGRS tile without the ``T`` (``"34TCT"``).
    relative_orbit : int
        Relative orbit number (``R079`` -> 79).
    orbit_direction : str or None
        ``"DESCENDING"`` or ``"ASCENDING"``.
    epsg : int
        EPSG code of the tile's UTM CRS.
    footprint : shapely geometry
        Data footprint in EPSG:4326 (lon, lat); split at the antimeridian into a
        MultiPolygon where needed.
    bands : Mapping[str, BandFile]
        Band files present on disk, by band, at native resolution.
    missing_bands : tuple of str
        Bands the metadata lists but whose files are absent (partial downloads).
    cloud_cover : float or None
        ``Cloud_Coverage_Assessment`` (percent).
    vegetation, not_vegetated, water, snow_ice : float or None
        Image-content percentages (L2A ``Image_Content_QI``); None for L1C.
    quality : Mapping[str, float]
        Every other ``*_PERCENTAGE`` value of the metadata, keyed by lower-case
        element name (e.g. ``"high_proba_clouds_percentage"``).
    """

    path: str
    product_id: str
    platform: str
    processing_level: str
    producttype: str
    processing_baseline: str
    sensing_start: datetime
    generation_time: datetime | None
    tile_id: str
    relative_orbit: int
    orbit_direction: str | None
    epsg: int
    footprint: BaseGeometry
    bands: Mapping[str, BandFile] = field(default_factory=dict)
    missing_bands: tuple[str, ...] = ()
    cloud_cover: float | None = None
    vegetation: float | None = None
    not_vegetated: float | None = None
    water: float | None = None
    snow_ice: float | None = None
    quality: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Freeze the mappings so the object is truly immutable.
        object.__setattr__(self, "bands", MappingProxyType(dict(self.bands)))
        object.__setattr__(self, "quality", MappingProxyType(dict(self.quality)))

    def __reduce__(self):  # MappingProxyType does not pickle; rebuild from plain dicts
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values["bands"] = dict(self.bands)
        values["quality"] = dict(self.quality)
        return (_rebuild_product, (values,))

    @property
    def title(self) -> str:
        """The product name without ``.SAFE``, as sentinelsat and the hubs list it."""
        return self.product_id

    @property
    def crs(self) -> str:
        """The tile CRS as an ``"EPSG:326zz"`` string."""
        return f"EPSG:{self.epsg}"

    def band(self, name: str) -> BandFile:
        """Return the file of ``name`` or raise a :class:`ProductError` naming the product."""
        from ..bands import normalize_band
        from ..exceptions import ProductError

        key = normalize_band(name)
        try:
            return self.bands[key]
        except KeyError:
            have = ", ".join(self.bands) or "none"
            raise ProductError(
                self.path, f"band {key} is not in this product (bands present: {have})"
            ) from None


def _rebuild_product(values: dict) -> Product:
    return Product(**values)
