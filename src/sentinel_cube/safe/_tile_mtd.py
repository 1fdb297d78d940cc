"""The tile geocoding of a granule's ``MTD_TL.xml``: CRS, and per resolution the
upper-left corner, pixel size and raster shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from ._xml import _MAX_COORD, _MAX_SIDE, MetadataError, _float, _int, _syntax_error, local_name

__all__ = ["TileMetadata", "parse_tile_metadata"]


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
