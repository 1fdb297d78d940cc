"""Safe parsing of the XML files of a Sentinel-2 ``.SAFE`` product.

Reads the product metadata (``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml``), the tile
metadata (``GRANULE/*/MTD_TL.xml``) and ``manifest.safe`` into plain values.

The XML comes from the network and is untrusted: it is parsed with
:mod:`defusedxml`, which refuses entity declarations (no "billion laughs"
expansion) and external entities or DTDs (no file or network access).
Elements are matched by local name, so namespace prefixes (``n1:``) and the
schema version do not matter; the element names of the older Level-2A schema
(PSD 14.2: ``IMAGE_FILE_2A``, ``L2A_BOA_QUANTIFICATION_VALUE``...) are accepted
as aliases.

Every problem raises :class:`MetadataError` whose message names the file and the
element; the reader turns it into a :class:`~sentinel_cube.exceptions.ProductError`
naming the product.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from ..bands import SPECTRAL_BANDS, normalize_band
from ..exceptions import SentinelCubeError

__all__ = [
    "ManifestEntry",
    "MetadataError",
    "ProductMetadata",
    "TileMetadata",
    "local_name",
    "parse_manifest",
    "parse_product_metadata",
    "parse_tile_metadata",
    "parse_xml",
]


class MetadataError(SentinelCubeError):
    """A metadata file of a product is malformed or lacks an element.

    Raised by the parsers here, with the file name in the message;
    :func:`~sentinel_cube.safe.read_product` re-raises it as a
    :class:`~sentinel_cube.exceptions.ProductError` naming the product.
    """


#: Band values are uint16 DN: offsets and special values lie within +-65535.
_DN_MAX = 65535
#: Sentinel-2 repeats its ground track every 143 orbits.
_RELATIVE_ORBITS = 143
#: Largest raster side accepted (a 10 m band is 10980 px).
_MAX_SIDE = 1_000_000
#: Largest map coordinate or pixel size accepted, in metres (UTM stays within 2e7).
_MAX_COORD = 1e8

# --------------------------------------------------------------------------- generic XML


def local_name(tag: object) -> str:
    """The tag without its ``{namespace}`` (``"{urn:x}Size"`` -> ``"Size"``).

    Examples
    --------
    >>> local_name("{https://psd-14.sentinel2.eo.esa.int/PSD/x.xsd}General_Info")
    'General_Info'
    """
    text = tag if isinstance(tag, str) else ""  # comments and processing instructions
    return text.rsplit("}", 1)[-1]


def _syntax_error(name: str, exc: Exception) -> MetadataError:
    if isinstance(exc, defusedxml.DefusedXmlException):
        return MetadataError(
            f"{name} declares XML entities or a DTD ({type(exc).__name__}), which Sentinel-2 "
            "metadata never does (possible entity-expansion or external-entity attack); "
            "the file was not parsed - do not trust this product, download it again from ESA"
        )
    return MetadataError(
        f"{name} is not well-formed XML ({exc}); the product is damaged or truncated - "
        "download it again"
    )


def parse_xml(data: bytes, name: str) -> Element:
    """Parse untrusted XML ``data`` into its root element, refusing entities.

    Parameters
    ----------
    data : bytes
        The file content.
    name : str
        The file name used in error messages (e.g. ``"MTD_MSIL2A.xml"``).

    Raises
    ------
    MetadataError
        If the XML is malformed or declares entities.

    Examples
    --------
    >>> parse_xml(b"<a><b>1</b></a>", "x.xml").find("b").text
    '1'
    """
    try:
        return SafeET.fromstring(data)
    except (ParseError, defusedxml.DefusedXmlException) as exc:
        raise _syntax_error(name, exc) from exc


class _Index:
    """Elements of a tree by local name, in document order."""

    def __init__(self, root: Element) -> None:
        self.root = root
        self._by_name: dict[str, list[Element]] = {}
        names: dict[object, str] = {}  # tag -> local name; tags repeat a lot
        for element in root.iter():
            tag = element.tag
            name = names.get(tag)
            if name is None:
                name = names[tag] = local_name(tag)
            self._by_name.setdefault(name, []).append(element)

    def all(self, *names: str) -> list[Element]:
        found: list[Element] = []
        for name in names:
            found.extend(self._by_name.get(name, ()))
        return found

    def names(self) -> Iterable[str]:
        return self._by_name.keys()

    def text(self, *names: str) -> str | None:
        """Stripped text of the first non-empty element among ``names``."""
        for element in self.all(*names):
            if element.text and element.text.strip():
                return element.text.strip()
        return None


def _required(value: str | None, element: str, name: str) -> str:
    if value is None:
        raise MetadataError(
            f"{name} lacks the required element <{element}>; the metadata is incomplete or "
            "not Sentinel-2 product metadata - download the product again"
        )
    return value


def _float(
    value: str,
    element: str,
    name: str,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    strict: bool = False,
) -> float:
    """``value`` as a finite float within ``[low, high]`` (``(low, high)`` if ``strict``)."""
    try:
        number = float(value)
    except ValueError:
        raise MetadataError(f"{name}: <{element}> is {value!r}, not a number") from None
    if not math.isfinite(number):
        raise MetadataError(f"{name}: <{element}> is {value!r}, not a finite number")
    inside = low < number < high if strict else low <= number <= high
    if not inside:
        brackets = "()" if strict else "[]"
        raise MetadataError(
            f"{name}: <{element}> is {value!r}, outside {brackets[0]}{low:g}, {high:g}"
            f"{brackets[1]}; the metadata is corrupt - download the product again"
        )
    return number


def _int(
    value: str, element: str, name: str, low: int | None = None, high: int | None = None
) -> int:
    """``value`` as an integer within ``[low, high]``."""
    try:
        number = int(value)
    except ValueError:  # also for numbers of more than 4300 digits
        raise MetadataError(f"{name}: <{element}> is {value[:40]!r}, not an integer") from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise MetadataError(
            f"{name}: <{element}> is {value[:40]!r}, outside [{low}, {high}]; the metadata "
            "is corrupt - download the product again"
        )
    return number


def _time(value: str, element: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:  # ESA writes "Z"; treat a naive time as UTC
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # overflow: year 1 or 9999 shifted out of range
        raise MetadataError(f"{name}: <{element}> is {value!r}, not an ISO 8601 time") from None


# --------------------------------------------------------------------------- product MTD


@dataclass(frozen=True)
class ProductMetadata:
    """Values of a product-level ``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml``.

    Attributes
    ----------
    product_uri : str or None
        ``PRODUCT_URI`` (with ``.SAFE``) if present.
    platform : str
        ``"S2A"``... from ``SPACECRAFT_NAME``.
    processing_level : str
        ``"L1C"`` or ``"L2A"``.
    product_type : str
        ``PRODUCT_TYPE`` (``"S2MSI2A"``).
    processing_baseline : str
        ``PROCESSING_BASELINE`` (``"05.09"``).
    sensing_start, generation_time : datetime
        ``PRODUCT_START_TIME`` and ``GENERATION_TIME`` (None if absent), tz-aware UTC.
    relative_orbit : int
        ``SENSING_ORBIT_NUMBER``.
    orbit_direction : str or None
        ``SENSING_ORBIT_DIRECTION``, upper case.
    image_files : tuple of str
        The ``IMAGE_FILE`` entries (relative, without extension), in document order.
    image_format : str or None
        The ``imageFormat`` attribute of the granule (``"JPEG2000"``, ``"GeoTIFF"``).
    footprint : tuple of (lon, lat)
        ``EXT_POS_LIST`` of the global footprint, reordered to (lon, lat).
    quantification : float
        ``QUANTIFICATION_VALUE`` (L1C) or ``BOA_QUANTIFICATION_VALUE`` (L2A).
    offsets : Mapping[str, float]
        ``RADIO_ADD_OFFSET`` / ``BOA_ADD_OFFSET`` by band; empty before baseline 04.00.
    nodata, saturated : int
        ``Special_Values`` NODATA and SATURATED (0 and 65535 when absent).
    cloud_cover : float or None
        ``Cloud_Coverage_Assessment``.
    percentages : Mapping[str, float]
        Every ``*_PERCENTAGE`` element, keyed by lower-case local name.
    """

    product_uri: str | None
    platform: str
    processing_level: str
    product_type: str
    processing_baseline: str
    sensing_start: datetime
    generation_time: datetime | None
    relative_orbit: int
    orbit_direction: str | None
    image_files: tuple[str, ...]
    image_format: str | None
    footprint: tuple[tuple[float, float], ...]
    quantification: float
    offsets: Mapping[str, float] = field(default_factory=dict)
    nodata: int = 0
    saturated: int = 65535
    cloud_cover: float | None = None
    percentages: Mapping[str, float] = field(default_factory=dict)


_PLATFORM_RE = re.compile(r"SENTINEL[-_ ]?2([A-Z])", re.IGNORECASE)
_LEVEL_RE = re.compile(r"(?:LEVEL-?|MSIL?|^L)(1C|2A)", re.IGNORECASE)


def _level(index: _Index, hint: str | None, name: str) -> str:
    for candidate in (
        index.text("PROCESSING_LEVEL"),
        index.text("PRODUCT_TYPE"),
        local_name(index.root.tag),
        hint,
    ):
        if candidate:
            match = _LEVEL_RE.search(candidate)
            if match:
                return "L" + match.group(1).upper()
    raise MetadataError(
        f"{name}: cannot tell Level-1C from Level-2A (<PROCESSING_LEVEL> and <PRODUCT_TYPE> "
        "are missing or unknown); this is not Sentinel-2 MSI product metadata"
    )


def _spectral_order(index: _Index) -> dict[int, str]:
    """``bandId`` -> band name, from ``Spectral_Information`` or the standard order."""
    order = dict(enumerate(SPECTRAL_BANDS))
    for element in index.all("Spectral_Information"):
        band_id, physical = element.get("bandId"), element.get("physicalBand")
        if band_id is None or physical is None:
            continue
        try:
            order[int(band_id)] = normalize_band(physical)
        except ValueError:
            continue
    return order


def _footprint(index: _Index, name: str) -> tuple[tuple[float, float], ...]:
    # The product footprint; EXT_POS_LIST also appears in datastrip metadata, take the first.
    text = _required(index.text("EXT_POS_LIST"), "EXT_POS_LIST", name)
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        raise MetadataError(f"{name}: <EXT_POS_LIST> holds a value that is not a number") from None
    if len(values) % 2 or len(values) < 6:
        raise MetadataError(
            f"{name}: <EXT_POS_LIST> must hold at least three 'lat lon' pairs, "
            f"found {len(values)} numbers"
        )
    points = tuple((values[i + 1], values[i]) for i in range(0, len(values), 2))
    for lon, lat in points:
        if not (-90.0 <= lat <= 90.0 and -540.0 <= lon <= 540.0):
            raise MetadataError(
                f"{name}: <EXT_POS_LIST> has the point lat={lat} lon={lon}, outside the globe"
            )
    return points


def parse_product_metadata(
    data: bytes, name: str, *, level_hint: str | None = None
) -> ProductMetadata:
    """Parse a product-level ``MTD_MSIL1C.xml`` or ``MTD_MSIL2A.xml``.

    Parameters
    ----------
    data : bytes
        Content of the file.
    name : str
        File name for messages (its ``MSIL1C``/``MSIL2A`` is the level of last resort).
    level_hint : str, optional
        ``"L1C"``/``"L2A"`` if known from elsewhere (the file name).

    Returns
    -------
    ProductMetadata

    Raises
    ------
    MetadataError
        Malformed XML, entity declarations, or a missing or invalid required element.

    Examples
    --------
    >>> from pathlib import Path
    >>> mtd = Path("S2B_MSIL2A_....SAFE/MTD_MSIL2A.xml")  # doctest: +SKIP
    >>> parse_product_metadata(mtd.read_bytes(), mtd.name).quantification  # doctest: +SKIP
    10000.0
    """
    index = _Index(parse_xml(data, name))
    level = _level(index, level_hint or name, name)

    def required(*names: str) -> str:
        return _required(index.text(*names), names[0], name)

    spacecraft = required("SPACECRAFT_NAME")
    match = _PLATFORM_RE.search(spacecraft)
    if match is None:
        raise MetadataError(f"{name}: <SPACECRAFT_NAME> is {spacecraft!r}, not Sentinel-2A/B/C/D")
    generation = index.text("GENERATION_TIME")
    direction = index.text("SENSING_ORBIT_DIRECTION")

    if level == "L1C":
        quant_names: tuple[str, ...] = ("QUANTIFICATION_VALUE",)
        offset_names: tuple[str, ...] = ("RADIO_ADD_OFFSET",)
    else:
        quant_names = ("BOA_QUANTIFICATION_VALUE", "L2A_BOA_QUANTIFICATION_VALUE")
        offset_names = ("BOA_ADD_OFFSET", "L2A_BOA_ADD_OFFSET")
    # reflectance = (DN + offset) / quantification: it must be a positive number.
    quantification = _float(required(*quant_names), quant_names[0], name, 0.0, strict=True)

    order = _spectral_order(index)
    offsets: dict[str, float] = {}
    for element in index.all(*offset_names):
        band_id = element.get("band_id", element.get("bandId"))
        text = (element.text or "").strip()
        if band_id is None or not text:
            raise MetadataError(f"{name}: a <{offset_names[0]}> lacks its band_id or value")
        band = order.get(_int(band_id, f"{offset_names[0]} band_id", name))
        if band is None:
            raise MetadataError(f"{name}: <{offset_names[0]} band_id={band_id!r}> is not a band")
        offsets[band] = _float(text, offset_names[0], name, -_DN_MAX, _DN_MAX)

    special: dict[str, int] = {}
    for element in index.all("Special_Values"):
        label = value = None
        for child in element:
            if local_name(child.tag) == "SPECIAL_VALUE_TEXT":
                label = (child.text or "").strip().upper()
            elif local_name(child.tag) == "SPECIAL_VALUE_INDEX":
                value = (child.text or "").strip()
        if label and value:
            special[label] = _int(value, "SPECIAL_VALUE_INDEX", name, 0, _DN_MAX)

    percentages: dict[str, float] = {}
    for tag in index.names():
        if tag.upper().endswith("_PERCENTAGE"):
            found = index.text(tag)
            if found is None:
                continue
            try:
                number = float(found)
            except ValueError:
                continue
            if math.isfinite(number):  # optional values: skip what is not a number
                percentages[tag.lower()] = number
    cloud = index.text("Cloud_Coverage_Assessment")

    granules = index.all("Granule", "Granules")
    return ProductMetadata(
        product_uri=index.text("PRODUCT_URI", "PRODUCT_URI_2A"),
        platform="S2" + match.group(1).upper(),
        processing_level=level,
        product_type=required("PRODUCT_TYPE"),
        processing_baseline=required("PROCESSING_BASELINE"),
        sensing_start=_time(required("PRODUCT_START_TIME"), "PRODUCT_START_TIME", name),
        generation_time=_time(generation, "GENERATION_TIME", name) if generation else None,
        relative_orbit=_int(
            required("SENSING_ORBIT_NUMBER"), "SENSING_ORBIT_NUMBER", name, 1, _RELATIVE_ORBITS
        ),
        orbit_direction=direction.upper() if direction else None,
        image_files=tuple(
            e.text.strip()
            for e in index.all("IMAGE_FILE", "IMAGE_FILE_2A")
            if e.text and e.text.strip()
        ),
        image_format=granules[0].get("imageFormat") if granules else None,
        footprint=_footprint(index, name),
        quantification=quantification,
        offsets=offsets,
        nodata=special.get("NODATA", 0),
        saturated=special.get("SATURATED", 65535),
        cloud_cover=_float(cloud, "Cloud_Coverage_Assessment", name, 0.0, 100.0) if cloud else None,
        percentages=percentages,
    )


# --------------------------------------------------------------------------- tile MTD_TL


@dataclass(frozen=True)
class TileMetadata:
    """The tile geocoding of a granule's ``MTD_TL.xml``.

    Attributes
    ----------
    tile_id : str or None
        ``TILE_ID`` (``S2A_OPER_MSI_L1C_TL_..._T46RER_N03.01``).
    epsg : int or None
        From ``HORIZONTAL_CS_CODE`` (``"EPSG:32646"``).
    sizes : Mapping[int, tuple[int, int]]
        ``(NROWS, NCOLS)`` by the ``resolution`` attribute of ``Size``.
    geopositions : Mapping[int, tuple[float, float, float, float]]
        ``(ULX, ULY, XDIM, YDIM)`` by the ``resolution`` attribute of ``Geoposition``.
    """

    tile_id: str | None
    epsg: int | None
    sizes: Mapping[int, tuple[int, int]]
    geopositions: Mapping[int, tuple[float, float, float, float]]


def _children(element: Element, name: str, wanted: tuple[str, ...]) -> dict[str, str]:
    found = {local_name(c.tag): (c.text or "").strip() for c in element}
    missing = [w for w in wanted if not found.get(w)]
    if missing:
        raise MetadataError(
            f"{name}: <{local_name(element.tag)} resolution={element.get('resolution')!r}> "
            f"lacks <{'>, <'.join(missing)}>"
        )
    return found


def parse_tile_metadata(source: IO[bytes], name: str) -> TileMetadata:
    """Parse the tile geocoding of an ``MTD_TL.xml`` from a binary stream.

    Parsing stops at the end of ``Tile_Geocoding``: the sun and view angle grids
    that make up most of the file are never read.

    Parameters
    ----------
    source : binary file object
        The open ``MTD_TL.xml`` (a file or a zip member).
    name : str
        Path of the file inside the product, for messages.

    Raises
    ------
    MetadataError
        Malformed XML, entity declarations, or a malformed ``Size``/``Geoposition``.

    Examples
    --------
    >>> import io
    >>> xml = (b"<T><TILE_ID>X_T34TCT_N05.09</TILE_ID><Tile_Geocoding>"
    ...        b"<HORIZONTAL_CS_CODE>EPSG:32634</HORIZONTAL_CS_CODE>"
    ...        b"<Size resolution='10'><NROWS>2</NROWS><NCOLS>3</NCOLS></Size>"
    ...        b"</Tile_Geocoding></T>")
    >>> tile = parse_tile_metadata(io.BytesIO(xml), "MTD_TL.xml")
    >>> tile.epsg, dict(tile.sizes)
    (32634, {10: (2, 3)})
    """
    tile_id: str | None = None
    epsg_text: str | None = None
    sizes: dict[int, tuple[int, int]] = {}
    geopositions: dict[int, tuple[float, float, float, float]] = {}
    try:
        for _event, element in SafeET.iterparse(source, events=("end",)):
            tag = local_name(element.tag)
            if tag in ("TILE_ID", "TILE_ID_2A") and tile_id is None:
                tile_id = (element.text or "").strip() or None
            elif tag == "HORIZONTAL_CS_CODE":
                epsg_text = (element.text or "").strip()
            elif tag in ("Size", "Geoposition"):
                res_text = element.get("resolution", "")
                resolution = _int(res_text, f"{tag} resolution", name, 1)
                if tag == "Size":
                    v = _children(element, name, ("NROWS", "NCOLS"))
                    sizes[resolution] = (
                        _int(v["NROWS"], "NROWS", name, 1, _MAX_SIDE),
                        _int(v["NCOLS"], "NCOLS", name, 1, _MAX_SIDE),
                    )
                else:
                    v = _children(element, name, ("ULX", "ULY", "XDIM", "YDIM"))
                    geopositions[resolution] = (
                        _float(v["ULX"], "ULX", name, -_MAX_COORD, _MAX_COORD),
                        _float(v["ULY"], "ULY", name, -_MAX_COORD, _MAX_COORD),
                        # north-up grids: columns go east, rows go south
                        _float(v["XDIM"], "XDIM", name, 0.0, _MAX_COORD, strict=True),
                        _float(v["YDIM"], "YDIM", name, -_MAX_COORD, 0.0, strict=True),
                    )
            elif tag == "Tile_Geocoding":
                break  # all we need has been read; skip the angle grids
    except (ParseError, defusedxml.DefusedXmlException) as exc:
        raise _syntax_error(name, exc) from exc

    epsg: int | None = None
    if epsg_text:
        match = re.fullmatch(r"(?:EPSG:)?(\d{4,6})", epsg_text, re.IGNORECASE)
        if match is None:
            raise MetadataError(f"{name}: <HORIZONTAL_CS_CODE> is {epsg_text!r}, not 'EPSG:nnnnn'")
        epsg = int(match.group(1))
    return TileMetadata(tile_id=tile_id, epsg=epsg, sizes=sizes, geopositions=geopositions)


# --------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class ManifestEntry:
    """One ``dataObject`` of ``manifest.safe``.

    Attributes
    ----------
    href : str
        Path relative to the product root, without a leading ``./``.
    size : int or None
        Size in bytes.
    checksum : str or None
        Checksum value (lower case hex).
    checksum_name : str or None
        Algorithm (``"MD5"``, ``"SHA3-256"``).
    """

    href: str
    size: int | None
    checksum: str | None
    checksum_name: str | None


def parse_manifest(data: bytes, name: str = "manifest.safe") -> tuple[ManifestEntry, ...]:
    """List the files that ``manifest.safe`` declares, with sizes and checksums.

    Useful to verify a download; :func:`~sentinel_cube.safe.read_product` does not
    need it.

    Examples
    --------
    >>> xml = (b'<XFDU><dataObjectSection><dataObject ID="a"><byteStream size="3">'
    ...        b'<fileLocation href="./MTD_MSIL1C.xml"/>'
    ...        b'<checksum checksumName="MD5">ABC</checksum></byteStream></dataObject>'
    ...        b'</dataObjectSection></XFDU>')
    >>> parse_manifest(xml)[0]
    ManifestEntry(href='MTD_MSIL1C.xml', size=3, checksum='abc', checksum_name='MD5')
    """
    root = parse_xml(data, name)
    entries = []
    for obj in root.iter():
        if local_name(obj.tag) != "byteStream":
            continue
        href = size = checksum = algorithm = None
        size_text = (obj.get("size") or "").strip()
        if size_text.isascii() and size_text.isdigit() and len(size_text) <= 20:
            size = int(size_text)  # optional: anything else (text, 5000 digits) is no size
        for child in obj:
            tag = local_name(child.tag)
            if tag == "fileLocation":
                href = child.get("href")
            elif tag == "checksum":
                checksum = (child.text or "").strip().lower() or None
                algorithm = child.get("checksumName")
        if href:
            href = href.strip()
            while href.startswith("./"):
                href = href[2:]
            entries.append(ManifestEntry(href, size, checksum, algorithm))
    return tuple(entries)
