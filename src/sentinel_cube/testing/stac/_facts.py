"""What a STAC item says about a product, read from the generated ``.SAFE`` folder.

:func:`product_facts` gathers, from the product's own metadata files, every value the
provider item builders need: the :class:`~sentinel_cube.safe.Product` (grid, time,
baseline, radiometry, percentages), the granule folder and absolute orbit, the mean
sun and viewing angles of ``MTD_TL.xml``, the Earth-Sun distance factor ``U`` of the
product metadata, and the list of band files on disk at every resolution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from affine import Affine

from ...bands import NATIVE_RESOLUTION
from ...safe import Product, read_product
from ...safe._names import parse_band_file
from ...safe._xml import local_name, parse_xml

__all__ = ["ImageFile", "ProductFacts", "product_facts"]

#: ESA's ``bandId`` order in ``MTD_TL.xml`` angle lists.
_BAND_IDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10",
             "B11", "B12")  # fmt: skip
_GRANULE = re.compile(r"^L(?:1C|2A)_T\w{5}_A(\d{6})_\d{8}T\d{6}$")


@dataclass(frozen=True)
class ImageFile:
    """One band raster inside the ``.SAFE`` folder, at one resolution.

    Attributes
    ----------
    band : str
        ``"B04"``, ``"B8A"``, ``"SCL"``...
    resolution : int
        Nominal resolution of the file name (10, 20 or 60).
    member : str
        Path inside the ``.SAFE`` folder (``/`` separated).
    shape : tuple of int
        ``(rows, cols)``.
    transform : affine.Affine
        Pixel-to-map transform in the product's CRS.
    native : bool
        Whether ``resolution`` is the band's native resolution.
    """

    band: str
    resolution: int
    member: str
    shape: tuple[int, int]
    transform: Affine
    native: bool

    @property
    def bbox(self) -> list[float]:
        """``[left, bottom, right, top]`` in the product's CRS."""
        rows, cols = self.shape
        left, top = self.transform.c, self.transform.f
        return [left, top + self.transform.e * rows, left + self.transform.a * cols, top]


@dataclass(frozen=True)
class ProductFacts:
    """Facts of one generated product that its STAC items carry.

    Attributes
    ----------
    safe : pathlib.Path
        The ``.SAFE`` folder.
    product : sentinel_cube.safe.Product
        Its metadata.
    granule : str
        The folder under ``GRANULE/`` (``L2A_T34TCT_A041975_20230706T094551``).
    absolute_orbit : int
        From the granule folder name.
    sun_zenith, sun_azimuth : float
        Mean sun angles of the tile (degrees).
    view_angles : dict
        Mean viewing ``(incidence, azimuth)`` angles by band.
    earth_sun_factor : float
        ``U`` of the product metadata (``s2:reflectance_conversion_factor``).
    identifiers : dict
        ``datatakeIdentifier``, ``datastripIdentifier`` and ``granuleIdentifier`` of
        the product metadata.
    images : tuple of ImageFile
        The band files on disk, in ESA band order then resolution.
    """

    safe: Path
    product: Product
    granule: str
    absolute_orbit: int
    sun_zenith: float
    sun_azimuth: float
    view_angles: dict[str, tuple[float, float]]
    earth_sun_factor: float
    identifiers: dict[str, str]
    images: tuple[ImageFile, ...]

    @property
    def scale(self) -> int:
        """The archive scale: pixel size of the 10 m grid over 10 m."""
        native = next(iter(self.product.bands.values()))
        return round(native.transform.a / native.resolution)

    def native_images(self) -> list[ImageFile]:
        """The band files at their native resolution (one per band)."""
        return [image for image in self.images if image.native]

    def radiometry(self, band: str) -> tuple[float, float]:
        """``(scale, offset)`` that turn DN into reflectance for ``band``.

        From the product metadata: ``1 / quantification`` and ``offset /
        quantification`` (``-0.1`` from baseline 04.00, ``0`` before).
        """
        file = self.product.bands[band]
        return 1.0 / file.quantification, file.offset / file.quantification


def _text(root: object, name: str) -> str | None:
    for element in root.iter():  # type: ignore[attr-defined]
        if local_name(element.tag) == name and element.text and element.text.strip():
            return str(element.text.strip())
    return None


def _identifiers(root: object) -> dict[str, str]:
    names = ("datatakeIdentifier", "datastripIdentifier", "granuleIdentifier")
    found: dict[str, str] = {}
    for element in root.iter():  # type: ignore[attr-defined]
        for name in names:
            if name in element.attrib:
                found.setdefault(name, str(element.attrib[name]))
    return found


def _angles(tile_xml: bytes, name: str) -> tuple[float, float, dict[str, tuple[float, float]]]:
    root = parse_xml(tile_xml, name)
    zenith = azimuth = float("nan")
    views: dict[str, tuple[float, float]] = {}
    for element in root.iter():
        tag = local_name(element.tag)
        if tag == "Mean_Sun_Angle":
            zenith = float(_text(element, "ZENITH_ANGLE") or "nan")
            azimuth = float(_text(element, "AZIMUTH_ANGLE") or "nan")
        elif tag == "Mean_Viewing_Incidence_Angle":
            band = _BAND_IDS[int(element.get("bandId", "0"))]
            views[band] = (float(_text(element, "ZENITH_ANGLE") or "nan"),
                           float(_text(element, "AZIMUTH_ANGLE") or "nan"))  # fmt: skip
    return zenith, azimuth, views


def _images(safe: Path, product: Product) -> tuple[ImageFile, ...]:
    found = []
    for path in sorted(safe.glob("GRANULE/*/IMG_DATA/**/*.jp2")):
        parsed = parse_band_file(path.name)
        if parsed is None or parsed.band not in product.bands:
            continue
        native = product.bands[parsed.band]
        resolution = parsed.resolution or native.resolution
        factor = resolution / native.resolution
        transform = native.transform @ Affine.scale(factor)
        shape = (round(native.shape[0] / factor), round(native.shape[1] / factor))
        member = path.relative_to(safe).as_posix()
        is_native = resolution == NATIVE_RESOLUTION.get(parsed.band, native.resolution)
        found.append(ImageFile(parsed.band, resolution, member, shape, transform, is_native))
    order = {band: i for i, band in enumerate((*_BAND_IDS, "SCL"))}
    return tuple(sorted(found, key=lambda f: (order.get(f.band, 99), f.resolution)))


def product_facts(safe: str | Path) -> ProductFacts:
    """Read the facts of a generated L2A ``.SAFE`` folder.

    Parameters
    ----------
    safe : path
        A ``.SAFE`` folder written by :func:`sentinel_cube.testing.make_archive`
        (``zipped=False``).

    Returns
    -------
    ProductFacts

    Raises
    ------
    ValueError
        Not a ``.SAFE`` folder, or not a Level-2A product.

    Examples
    --------
    >>> facts = product_facts(paths[0])  # doctest: +SKIP
    >>> facts.product.tile_id, facts.absolute_orbit  # doctest: +SKIP
    ('34TCT', 41975)
    """
    safe = Path(safe)
    if not safe.is_dir():
        raise ValueError(f"{safe} is not a .SAFE folder; write the archive with zipped=False")
    product = read_product(safe, require_bands=None)
    if product.processing_level != "L2A":
        raise ValueError(f"{safe.name}: STAC items are made for L2A products only")
    tile_xml = next(safe.glob("GRANULE/*/MTD_TL.xml"))
    granule = tile_xml.parent.name
    match = _GRANULE.match(granule)
    zenith, azimuth, views = _angles(tile_xml.read_bytes(), str(tile_xml))
    product_xml = safe / f"MTD_MSI{product.processing_level}.xml"
    product_root = parse_xml(product_xml.read_bytes(), str(product_xml))
    factor = _text(product_root, "U")
    return ProductFacts(
        safe=safe,
        product=product,
        granule=granule,
        absolute_orbit=int(match.group(1)) if match else 0,
        sun_zenith=zenith,
        sun_azimuth=azimuth,
        view_angles=views,
        earth_sun_factor=float(factor) if factor else 1.0,
        identifiers=_identifiers(product_root),
        images=_images(safe, product),
    )
