"""Copernicus Data Space OData: build product queries and parse their answers. No IO.

Queries follow the CDSE OData catalogue
(``https://catalogue.dataspace.copernicus.eu/odata/v1/Products``)::

    $filter=Collection/Name eq 'SENTINEL-2'
        and ContentDate/Start ge 2023-06-01T00:00:00.000Z
        and ContentDate/Start le 2023-08-31T23:59:59.999Z
        and OData.CSC.Intersects(area=geography'SRID=4326;POLYGON ((19 47.3, ...))')
        and Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType'
            and att/OData.CSC.StringAttribute/Value eq 'S2MSI2A')
        and Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'cloudCover'
            and att/OData.CSC.DoubleAttribute/Value le 30.0)
    &$orderby=ContentDate/Start asc&$top=100&$expand=Attributes

Attribute types are those CDSE declares (``Attributes(SENTINEL-2)``): ``tileId``,
``productType``, ``platformSerialIdentifier`` are strings, ``cloudCover`` a double,
``relativeOrbitNumber`` an integer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from shapely.geometry import shape

from ..aoi import aoi_hull
from ..mgrs import tile_epsg
from ..safe._names import parse_product_name
from ..schema import INDEX_NAME, S3PATH
from ._base import rows_frame
from ._query import SearchQuery

__all__ = [
    "ATTRIBUTE_TYPES",
    "attribute_condition",
    "build_filter",
    "odata_filter",
    "odata_time",
    "parse_products",
    "percentage_columns",
    "s3_url",
    "search_params",
]

#: OData attribute type of each Sentinel-2 attribute we filter on.
ATTRIBUTE_TYPES: dict[str, str] = {
    "productType": "String",
    "tileId": "String",
    "platformSerialIdentifier": "String",
    "cloudCover": "Double",
    "relativeOrbitNumber": "Integer",
}
_LEVELS = {"S2MSI1C": "Level-1C", "S2MSI2A": "Level-2A", "S2MSI2AP": "Level-2Ap"}
_IMAGE_CONTENT = {
    "vegetation_percentage": "vegetationpercentage",
    "not_vegetated_percentage": "notvegetatedpercentage",
    "water_percentage": "waterpercentage",
    "snow_ice_percentage": "snowicepercentage",
}


def odata_time(stamp: pd.Timestamp) -> str:
    """A UTC timestamp as CDSE writes it in filters (millisecond precision, ``Z``).

    Examples
    --------
    >>> odata_time(pd.Timestamp("2023-08-31 23:59:59.999999", tz="UTC"))
    '2023-08-31T23:59:59.999Z'
    """
    utc = stamp.tz_convert("UTC")
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _literal(value: Any, kind: str) -> str:
    if kind == "String":
        return "'" + str(value).replace("'", "''") + "'"
    if kind == "Integer":
        return str(int(value))
    return repr(float(value))


def attribute_condition(name: str, op: str, value: Any) -> str:
    """One ``Attributes/.../any(...)`` condition with the attribute's OData type.

    Examples
    --------
    >>> print(attribute_condition("cloudCover", "le", 30))  # doctest: +NORMALIZE_WHITESPACE
    Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'cloudCover' and
    att/OData.CSC.DoubleAttribute/Value le 30.0)
    """
    kind = ATTRIBUTE_TYPES[name]
    typed = f"OData.CSC.{kind}Attribute"
    return (
        f"Attributes/{typed}/any(att:att/Name eq '{name}' and att/{typed}/Value {op} "
        f"{_literal(value, kind)})"
    )


def _any_of(name: str, values: Iterable[Any]) -> str:
    parts = [attribute_condition(name, "eq", v) for v in dict.fromkeys(values)]
    return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"


def _serials(values: Iterable[Any]) -> list[str] | None:
    """``"Sentinel-2B"`` / ``"S2B"`` -> ``"B"``; None when the whole family is meant."""
    serials = []
    for item in values:
        text = str(item).upper().replace("SENTINEL-", "S").replace(" ", "")
        if text in ("S2", "SENTINEL2"):
            return None
        if not text.startswith("S2") or len(text) != 3:
            raise ValueError(
                f"platformname {item!r} is not Sentinel-2 "
                "(use 'Sentinel-2', 'Sentinel-2A' or 'S2A'...)"
            )
        serials.append(text[2])
    return serials


def _polygon_wkt(aoi: Any) -> str:
    hull = aoi_hull(aoi)
    ring = ", ".join(f"{_num(x)} {_num(y)}" for x, y in hull.exterior.coords)
    return f"POLYGON (({ring}))"


def _num(value: float) -> str:
    """Degrees with at most 6 decimals (11 cm), no trailing zeros."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def build_filter(collection: str = "SENTINEL-2", **criteria: Any) -> str:
    """The OData ``$filter`` for the keyword arguments of ``Catalog.search``.

    The AOI is sent as its convex hull (CDSE limits URL length); callers refine
    with the exact AOI afterwards.

    Examples
    --------
    >>> print(build_filter(date=("2023-06-01", "2023-06-30"), producttype="L2A", tileid="T34TCT"))
    ... # doctest: +NORMALIZE_WHITESPACE
    Collection/Name eq 'SENTINEL-2' and ContentDate/Start ge 2023-06-01T00:00:00.000Z and
    ContentDate/Start le 2023-06-30T23:59:59.999Z and
    Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and
    att/OData.CSC.StringAttribute/Value eq 'S2MSI2A') and
    Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'tileId' and
    att/OData.CSC.StringAttribute/Value eq '34TCT')
    """
    return odata_filter(SearchQuery.from_arguments(**criteria), collection)


def odata_filter(query: SearchQuery, collection: str = "SENTINEL-2") -> str:
    """The OData ``$filter`` for a checked search query (see :func:`build_filter`)."""
    parts = [f"Collection/Name eq '{collection}'"]
    if query.start is not None:
        parts.append(f"ContentDate/Start ge {odata_time(query.start)}")
    if query.end is not None:
        parts.append(f"ContentDate/Start le {odata_time(query.end)}")
    if query.aoi is not None:
        parts.append(f"OData.CSC.Intersects(area=geography'SRID=4326;{_polygon_wkt(query.aoi)}')")
    if query.platformname is not None:
        serials = _serials(query.platformname)
        if serials:
            parts.append(_any_of("platformSerialIdentifier", serials))
    if query.producttype is not None:
        parts.append(_any_of("productType", query.product_types()))
    cloud = query.cloudcoverpercentage
    if cloud is not None:
        parts.append(attribute_condition("cloudCover", "ge", cloud[0]))
        parts.append(attribute_condition("cloudCover", "le", cloud[1]))
    if query.tileid is not None:
        parts.append(_any_of("tileId", query.tile_ids()))
    if query.relativeorbitnumber is not None:
        parts.append(_any_of("relativeOrbitNumber", query.orbits()))
    return " and ".join(parts)


def search_params(
    filter_: str, top: int = 100, skip: int = 0, orderby: str = "ContentDate/Start asc"
) -> dict[str, str]:
    """Query parameters of a ``Products`` request (first page).

    Examples
    --------
    >>> sorted(search_params("Collection/Name eq 'SENTINEL-2'", top=20))
    ['$expand', '$filter', '$orderby', '$top']
    """
    params = {"$filter": filter_, "$orderby": orderby, "$top": str(int(top)),
              "$expand": "Attributes"}  # fmt: skip
    if skip:
        params["$skip"] = str(int(skip))
    return params


def percentage_columns(percentages: Mapping[str, float]) -> dict[str, float]:
    """Products-table columns from the ``*_PERCENTAGE`` values of an ``MTD_MSIL*.xml``.

    Named as :func:`sentinel_cube.schema.products_frame` names them (underscores
    dropped; ``L2A_`` prefixes of old products removed).

    Examples
    --------
    >>> percentage_columns({"vegetation_percentage": 44.5, "high_proba_clouds_percentage": 1.0})
    {'vegetationpercentage': 44.5, 'highprobacloudspercentage': 1.0}
    """
    columns: dict[str, float] = {}
    for key, value in percentages.items():
        key = key.lower().removeprefix("l2a_")
        columns[_IMAGE_CONTENT.get(key, key.replace("_", ""))] = float(value)
    return columns


def _attributes(product: Mapping[str, Any]) -> dict[str, Any]:
    return {a.get("Name"): a.get("Value") for a in product.get("Attributes") or []}


def _geometry(product: Mapping[str, Any]) -> Any:
    geo = product.get("GeoFootprint")
    if geo:
        return shape(geo)
    text = product.get("Footprint")
    if text and ";" in text:  # geography'SRID=4326;POLYGON ((...))'
        return shapely.from_wkt(text.split(";", 1)[1].rstrip("'"))
    return None


def _checksum(product: Mapping[str, Any], algorithm: str) -> str | None:
    for item in product.get("Checksum") or []:
        if str(item.get("Algorithm", "")).upper() == algorithm and item.get("Value"):
            return str(item["Value"]).lower()
    return None


def s3_url(s3path: Any) -> str | None:
    """The ``s3://`` URL of a product from the ``S3Path`` CDSE publishes for it.

    ``S3Path`` is ``/<bucket>/<key>`` on CDSE's S3 (bucket ``eodata``). Anything that
    is not such a path (missing, empty, no key, ``..`` segments, a URL) gives None.

    Examples
    --------
    >>> s3_url("/eodata/Sentinel-2/MSI/L2A/2023/08/10/NAME.SAFE")
    's3://eodata/Sentinel-2/MSI/L2A/2023/08/10/NAME.SAFE'
    >>> s3_url(None), s3_url(""), s3_url("/eodata/../etc"), s3_url("/eodata")
    (None, None, None, None)
    """
    if not isinstance(s3path, str) or "://" in s3path:
        return None
    parts = [p for p in s3path.strip().strip("/").split("/") if p]
    if len(parts) < 2 or any(p in (".", "..") or "\\" in p for p in parts):
        return None
    return "s3://" + "/".join(parts)


def product_row(product: Mapping[str, Any], catalog: str = "cdse") -> dict[str, Any]:
    """One products-table row (sentinelsat column names) from a CDSE OData product."""
    name = str(product["Name"])
    product_id = name.removesuffix(".SAFE").removesuffix(".zip")
    attrs = _attributes(product)
    named = parse_product_name(product_id)
    ptype = attrs.get("productType")
    tile = attrs.get("tileId") or (named.tile_id if named else None)
    serial = attrs.get("platformSerialIdentifier")
    family = str(attrs.get("platformShortName") or "").title() or None
    try:
        epsg = tile_epsg(tile) if tile else None
    except ValueError:
        epsg = None
    content = product.get("ContentDate") or {}
    direction = attrs.get("orbitDirection")
    return {
        INDEX_NAME: product_id,
        "title": product_id,
        "beginposition": content.get("Start"),
        "endposition": content.get("End"),
        "ingestiondate": product.get("PublicationDate"),
        "platformname": family,
        "platformserialidentifier": f"{family}{serial}" if family and serial else family,
        "producttype": ptype,
        "processinglevel": _LEVELS.get(str(ptype)),
        "processingbaseline": named.processing_baseline if named else attrs.get("processorVersion"),
        "tileid": tile,
        "relativeorbitnumber": attrs.get("relativeOrbitNumber")
        or (named.relative_orbit if named else None),
        "orbitdirection": str(direction).upper() if direction else None,
        "cloudcoverpercentage": attrs.get("cloudCover"),
        "size": product.get("ContentLength"),
        "online": product.get("Online"),
        "checksum": _checksum(product, "MD5"),
        "epsg": epsg,
        "path": None,
        "uuid": product.get("Id"),
        "blake3": _checksum(product, "BLAKE3"),
        "catalog": catalog,
        S3PATH: s3_url(product.get("S3Path")),
        "geometry": _geometry(product),
    }


def parse_products(values: Sequence[Mapping[str, Any]], catalog: str = "cdse") -> gpd.GeoDataFrame:
    """The products table from the ``value`` list of CDSE ``Products`` pages.

    Extra columns: ``uuid`` (the CDSE product ``Id``, needed to download),
    ``blake3`` (the BLAKE3 checksum; ``checksum`` holds the MD5), ``catalog`` and
    ``s3path`` (the product's ``s3://eodata/.../NAME.SAFE`` on CDSE's S3, from its
    ``S3Path``; see :data:`sentinel_cube.schema.S3PATH`).

    Examples
    --------
    >>> import json
    >>> page = json.load(open("cdse-odata/odata_products_s2_l1c_search.json"))  # doctest: +SKIP
    >>> parse_products(page["value"])[["tileid", "cloudcoverpercentage"]]  # doctest: +SKIP
    """
    extras = ("uuid", "blake3", "catalog", S3PATH)
    return rows_frame((product_row(p, catalog) for p in values), extras)
