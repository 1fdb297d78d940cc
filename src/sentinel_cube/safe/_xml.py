"""Safe parsing of the XML files of a Sentinel-2 ``.SAFE`` product.

What the parsers of the product metadata (:mod:`._product_mtd`), the tile metadata
(:mod:`._tile_mtd`) and ``manifest.safe`` (:mod:`._manifest`) share: safe parsing,
matching by local name, typed values with range checks, one error type.

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
from collections.abc import Iterable
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from ..exceptions import SentinelCubeError

__all__ = ["MetadataError", "local_name", "parse_xml"]


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
