"""What a read task reads, and the rules it reads by: plain, picklable, free of rasterio.

Planning (:mod:`sentinel_cube._plan`) describes every chunk with these values;
only the reader (:mod:`sentinel_cube._read`) turns them into GDAL calls. Keeping
them here lets planning run, and be tested, where rasterio is not even importable.
"""

from __future__ import annotations

from dataclasses import dataclass

from affine import Affine

from ._cloud import scrub
from .bands import CLASS_BANDS

__all__ = [
    "AVERAGING_RESAMPLINGS",
    "RESAMPLINGS",
    "Source",
    "read_rules",
    "resampling_name",
    "use_reduced_levels",
]

#: Resampling names GDAL knows (rasterio's ``Resampling`` members), in its order.
RESAMPLINGS = (
    "nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode", "gauss",
    "max", "min", "med", "q1", "q3", "sum", "rms",
)  # fmt: skip

#: Resamplings that down-sample by a weighted mean of the source pixels under an output
#: pixel (a low-pass filter). A JPEG 2000 reduced resolution level is itself a low-pass
#: approximation of the image (the wavelet's approximation band), so with
#: ``reduced_levels=None`` these read from it. Left out: ``nearest`` (must return a
#: source pixel), ``mode``, ``min``, ``max``, ``med``, ``q1``, ``q3`` (must return
#: values of the footprint), ``sum`` (not a mean) and ``rms`` (not linear).
AVERAGING_RESAMPLINGS = frozenset(
    {"average", "bilinear", "cubic", "cubic_spline", "lanczos", "gauss"}
)


@dataclass(frozen=True, repr=False)
class Source:
    """One band file of one product, as a read task needs it.

    Attributes
    ----------
    path : str
        Path GDAL opens (``/vsizip/`` for zipped products).
    crs : str
        ``"EPSG:326zz"`` of the product.
    transform : affine.Affine
        The band's pixel-to-map transform.
    shape : tuple of int
        ``(rows, cols)`` of the band.
    product_id : str
        For error messages.

    Examples
    --------
    >>> s = Source("B04.jp2", "EPSG:32634", Affine(10, 0, 300000, 0, -10, 5300040), (10980, 10980))
    >>> s.resolution, s.bounds
    (10.0, (300000.0, 5190240.0, 409800.0, 5300040.0))
    """

    path: str
    crs: str
    transform: Affine
    shape: tuple[int, int]
    product_id: str = ""

    def __repr__(self) -> str:  # a signed URL's query string is a secret: never shown
        return (
            f"Source(path={scrub(self.path)!r}, crs={self.crs!r}, transform={self.transform!r}, "
            f"shape={self.shape!r}, product_id={self.product_id!r})"
        )

    @property
    def resolution(self) -> float:
        return float(self.transform.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        rows, cols = self.shape
        t = self.transform
        return (t.c, t.f + rows * t.e, t.c + cols * t.a, t.f)


def resampling_name(value: object) -> str:
    """The name of a resampling given as a name or a rasterio ``Resampling`` member.

    Raises
    ------
    ValueError
        If GDAL knows no such resampling.

    Examples
    --------
    >>> resampling_name("average")
    'average'
    """
    name = str(getattr(value, "name", value))
    if name not in RESAMPLINGS:
        raise ValueError(f"unknown resampling {value!r}")
    return name


def use_reduced_levels(resampling: object, reduced_levels: bool | None) -> bool:
    """Whether integer down-sampling with ``resampling`` may read a JP2 reduced level.

    ``None`` (automatic): only for :data:`AVERAGING_RESAMPLINGS`. ``True``: also for
    the others, ``nearest`` included (an explicit opt-in: values are then the codec's
    approximation, not source pixels). ``False``: never.

    Examples
    --------
    >>> use_reduced_levels("average", None), use_reduced_levels("nearest", None)
    (True, False)
    >>> use_reduced_levels("nearest", True), use_reduced_levels("average", False)
    (True, False)
    """
    if reduced_levels is None:
        return resampling_name(resampling) in AVERAGING_RESAMPLINGS
    return bool(reduced_levels)


def read_rules(band: str, resampling: object, reduced_levels: bool | None) -> tuple[str, bool]:
    """The resampling and the reduced-level choice a band is really read with.

    Class bands (:data:`~sentinel_cube.bands.CLASS_BANDS`, e.g. ``"SCL"``) hold codes,
    which no resampling may blend: they are always read with ``nearest`` from their
    full-resolution pixels, whatever ``resampling`` and ``reduced_levels`` say. Other
    bands get ``resampling`` and :func:`use_reduced_levels`.

    Examples
    --------
    >>> read_rules("SCL", "average", True)
    ('nearest', False)
    >>> read_rules("B04", "average", None)
    ('average', True)
    """
    if band in CLASS_BANDS:
        return "nearest", False
    return resampling_name(resampling), use_reduced_levels(resampling, reduced_levels)
