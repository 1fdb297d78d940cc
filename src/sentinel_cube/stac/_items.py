"""STAC items -> :class:`~sentinel_cube.safe.Product`: the same plain description as a ``.SAFE``.

Each item becomes one :class:`~sentinel_cube.safe.Product` whose band files are the
item's band assets, read by href (COG or JPEG 2000; local paths, ``https://`` through
GDAL's ``/vsicurl/``, ``s3://`` through ``/vsis3/``). From there the cube is planned,
read, mosaicked and converted exactly as for ``.SAFE`` products.

Where each field comes from (first found wins):

============================ ==========================================================
Product field                item
============================ ==========================================================
``product_id``               the item ``id`` (so every message names the item)
``path``                     ``stac://<host of the self link>/<collection>/<id>``
                             (an identifier, not a file; see :func:`registered`)
``bands``                    band assets (:func:`~sentinel_cube.stac.band_assets`);
                             grid from :mod:`~sentinel_cube.stac._proj` (asset, else
                             item), else the file header; radiometry from
                             :mod:`~sentinel_cube.stac._radiometry`
``epsg``                     ``proj:code``/``proj:epsg`` of the band assets (else of the
                             item), else the file headers, else the MGRS tile's zone
``sensing_start``            ``datetime``, ``start_datetime``, the product name
``generation_time``          ``s2:generation_time``, ``processing:datetime``
``tile_id``                  ``s2:mgrs_tile``, ``mgrs:utm_zone`` + ``mgrs:latitude_band``
                             + ``mgrs:grid_square``, ``grid:code`` (``MGRS-13TDE``),
                             ``sentinel:utm_zone``..., the product name or id
``relative_orbit``           ``sat:relative_orbit``, the product name (``R079``), else 0
``orbit_direction``          ``sat:orbit_state``
``platform``                 ``platform`` (``sentinel-2a`` -> ``S2A``), the product name
``processing_level``         ``s2:product_type``, the product name, ``processing:level``,
                             the collection id (``...l2a``), an SCL asset (L2A)
``processing_baseline``      ``s2:processing_baseline``, ``processing:version``,
                             ``sentinel:processing_baseline``, the product name (``N0509``)
``footprint``                the item ``geometry``, else its ``bbox``
``cloud_cover``              ``eo:cloud_cover``
percentages                  ``s2:vegetation_percentage``... and every other
                             ``s2:*_percentage`` (``quality``)
============================ ==========================================================

The product name is ``s2:product_uri``, ``sentinel:product_id`` or the item id, when
it is an ESA compact name (``S2B_MSIL2A_20230810T094549_N0509_R079_T34TCT_...``).

Grids come from metadata: no file is opened, except for items that give no grid for
a band (no ``proj:shape`` with ``proj:transform``/``proj:bbox``): for those, one asset
per resolution is opened and its header read (a :class:`SentinelCubeWarning` says so).

Pure, apart from those header reads and Planetary Computer's token request
(:mod:`~sentinel_cube.stac._sign`).
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import antimeridian
import pandas as pd
from affine import Affine
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from .. import _cloud, mgrs
from ..aoi import reproject_geometry
from ..bands import NATIVE_RESOLUTION, normalize_band
from ..exceptions import SentinelCubeError, SentinelCubeWarning
from ..safe._georef import FileGrid, GeoreferenceError, read_file_grid
from ..safe._model import BandFile, Product
from ..safe._names import ProductName, parse_product_name, tile_from_name
from ._bands import AssetChoice, band_assets, describe_assets
from ._proj import ProjError, proj_epsg, proj_grid
from ._radiometry import asset_radiometry
from ._sign import (
    PC_BLOB_SUFFIX,
    is_planetary_computer,
    is_signed,
    sign_hrefs,
    strip_signature,
)

__all__ = [
    "STAC_PATH_PREFIX",
    "as_items",
    "detect_provider",
    "is_stac_item",
    "is_stac_items",
    "item_record",
    "item_to_product",
    "items_to_products",
    "registered",
]

#: Prefix of :attr:`Product.path` for products made from STAC items.
STAC_PATH_PREFIX = "stac://"

_IMAGE_CONTENT = ("vegetation", "not_vegetated", "water", "snow_ice")
_LEVEL_OF_TYPE = {"S2MSI1C": "L1C", "S2MSI2A": "L2A", "S2MSI2AP": "L2A"}


# --------------------------------------------------------------------------- input shapes


def _is_item_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and obj.get("type") == "Feature" and "assets" in obj


def _is_pystac_item(obj: Any) -> bool:
    return hasattr(obj, "to_dict") and hasattr(obj, "assets") and hasattr(obj, "properties")


def _is_item_collection(obj: Any) -> bool:
    """A ``pystac.ItemCollection`` (its ``items`` is a list; a DataFrame's is a method)."""
    return (
        hasattr(obj, "to_dict")
        and isinstance(getattr(obj, "items", None), list)
        and not isinstance(obj, Mapping)
    )


def is_stac_item(obj: Any) -> bool:
    """Whether ``obj`` is one STAC item: a ``pystac.Item`` or a dict of type ``Feature``.

    Examples
    --------
    >>> is_stac_item({"type": "Feature", "id": "x", "assets": {}}), is_stac_item("x.SAFE")
    (True, False)
    """
    return _is_item_dict(obj) or _is_pystac_item(obj)


def is_stac_items(obj: Any) -> bool:
    """Whether ``obj`` is STAC: an item or a FeatureCollection (dicts or pystac objects).

    A list is STAC when its first element is an item.

    Examples
    --------
    >>> is_stac_items({"type": "FeatureCollection", "features": []}), is_stac_items(["a.SAFE"])
    (True, False)
    """
    if isinstance(obj, Mapping):
        return obj.get("type") == "FeatureCollection" or _is_item_dict(obj)
    if _is_pystac_item(obj) or _is_item_collection(obj):
        return True
    if isinstance(obj, list | tuple) and obj:
        return _is_item_dict(obj[0]) or _is_pystac_item(obj[0])
    return False


def _item_dict(obj: Any) -> dict[str, Any]:
    """A pystac ``Item`` or an item dict as a dict with absolute asset hrefs."""
    if _is_pystac_item(obj):
        item = obj.to_dict(include_self_link=True, transform_hrefs=False)
        for key, asset in obj.assets.items():
            absolute = asset.get_absolute_href()
            if absolute and key in item.get("assets", {}):
                item["assets"][key]["href"] = absolute
        return item
    if not _is_item_dict(obj):
        raise SentinelCubeError(
            f"expected a STAC item (a dict with type 'Feature' and assets, or a pystac.Item), "
            f"got {type(obj).__name__}"
        )
    item = dict(obj)
    base = _self_href(item)
    if base:
        assets = {}
        for key, asset in (item.get("assets") or {}).items():
            href = str(asset.get("href") or "") if isinstance(asset, Mapping) else ""
            if href and "://" not in href and not os.path.isabs(href):
                asset = {**asset, "href": urljoin(base, href)}
            assets[key] = asset
        item["assets"] = assets
    return item


def as_items(obj: Any) -> list[dict[str, Any]]:
    """Item dicts from a pystac ``ItemCollection``, items, item dicts or a FeatureCollection.

    Examples
    --------
    >>> as_items({"type": "FeatureCollection", "features": []})
    []
    """
    if isinstance(obj, Mapping):
        if obj.get("type") == "FeatureCollection":
            return [_item_dict(f) for f in obj.get("features") or []]
        return [_item_dict(obj)]
    if _is_pystac_item(obj):
        return [_item_dict(obj)]
    if _is_item_collection(obj):
        return [_item_dict(i) for i in obj.items]
    return [_item_dict(i) for i in obj]


# --------------------------------------------------------------------------- properties


def _self_href(item: Mapping[str, Any]) -> str | None:
    for link in item.get("links") or []:
        if isinstance(link, Mapping) and link.get("rel") == "self" and link.get("href"):
            return str(link["href"])
    return None


def detect_provider(item: Mapping[str, Any]) -> str:
    """``"earth-search"``, ``"planetary-computer"``, ``"cdse"`` or ``"stac"`` (other).

    From the item's shape: Earth Search's ``earthsearch:*`` properties or common-name
    asset keys (``red``, ``nir08``, ``scl``); Planetary Computer's hrefs on
    ``*.blob.core.windows.net``; CDSE's ``s3://eodata/`` hrefs or ``B04_10m``-style
    keys; then the host of the self link.

    Examples
    --------
    >>> detect_provider({"properties": {}, "assets": {"red": {"href": "https://x/B04.tif"}}})
    'earth-search'
    >>> detect_provider({"properties": {}, "assets": {"B04_10m": {"href": "s3://eodata/a.jp2"}}})
    'cdse'
    """
    props = item.get("properties") or {}
    assets = item.get("assets") or {}
    hrefs = [str(a.get("href") or "") for a in assets.values() if isinstance(a, Mapping)]
    if any(PC_BLOB_SUFFIX + "/" in h and is_planetary_computer(h) for h in hrefs):
        return "planetary-computer"
    if any(k.startswith("earthsearch:") for k in props) or {"red", "nir08", "scl"} & set(assets):
        return "earth-search"
    if any(h.startswith("s3://eodata/") for h in hrefs) or any(
        k.upper().endswith(("_10M", "_20M", "_60M")) for k in assets
    ):
        return "cdse"
    host = urlsplit(_self_href(item) or "").hostname or ""
    if "planetarycomputer" in host:
        return "planetary-computer"
    if "element84" in host:
        return "earth-search"
    if "dataspace.copernicus.eu" in host:
        return "cdse"
    return "stac"


def _product_name(item: Mapping[str, Any]) -> ProductName | None:
    props = item.get("properties") or {}
    for value in (props.get("s2:product_uri"), props.get("sentinel:product_id"), item.get("id")):
        if value:
            named = parse_product_name(str(value))
            if named is not None:
                return named
    return None


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        stamp = pd.Timestamp(str(value))
    except (ValueError, TypeError):
        return None
    if pd.isna(stamp):
        return None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    result: datetime = stamp.to_pydatetime()
    return result


def _baseline(props: Mapping[str, Any], named: ProductName | None) -> str | None:
    for key in ("s2:processing_baseline", "processing:version", "sentinel:processing_baseline"):
        value = props.get(key)
        if value is None:
            continue
        try:
            return f"{float(value):05.2f}"
        except (TypeError, ValueError):
            continue
    return named.processing_baseline if named else None


def _tile(item: Mapping[str, Any], named: ProductName | None) -> str | None:
    props = item.get("properties") or {}
    if props.get("s2:mgrs_tile"):
        return str(props["s2:mgrs_tile"]).upper().removeprefix("T").zfill(5)
    for prefix in ("mgrs", "sentinel"):
        zone, band, square = (
            props.get(f"{prefix}:{k}") for k in ("utm_zone", "latitude_band", "grid_square")
        )
        if zone and band and square:
            return f"{int(zone):02d}{band}{square}".upper()
    code = str(props.get("grid:code") or "").upper()
    if code.startswith("MGRS-"):
        return code[5:].removeprefix("T").zfill(5)
    if named is not None:
        return named.tile_id
    return tile_from_name(str(item.get("id") or ""))


def _platform(props: Mapping[str, Any], named: ProductName | None) -> str:
    text = str(props.get("platform") or "").strip().lower().replace(" ", "-")
    if text.startswith("sentinel-2") and len(text) > len("sentinel-2"):
        return "S2" + text[-1].upper()
    if named is not None:
        return named.platform
    return str(props.get("platform") or "S2")


def _level(item: Mapping[str, Any], named: ProductName | None, has_scl: bool) -> str:
    props = item.get("properties") or {}
    ptype = str(props.get("s2:product_type") or props.get("product:type") or "").upper()
    if ptype in _LEVEL_OF_TYPE:
        return _LEVEL_OF_TYPE[ptype]
    if named is not None:
        return named.processing_level
    level = str(props.get("processing:level") or "").upper()
    if level in ("L1C", "L2A"):
        return level
    collection = str(item.get("collection") or "").lower()
    if "l2a" in collection:
        return "L2A"
    if "l1c" in collection:
        return "L1C"
    return "L2A" if has_scl or level == "L2" else "L1C"


def _percent(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _footprint(item: Mapping[str, Any], fallback: Callable[[], BaseGeometry]) -> BaseGeometry:
    """The item's geometry (split at the antimeridian if needed), else its bbox, else
    ``fallback()`` (the band grid's outline)."""
    geometry = item.get("geometry")
    shaped: BaseGeometry | None = None
    if isinstance(geometry, Mapping) and geometry.get("coordinates"):
        try:
            shaped = shape(geometry)
            left, _, right, _ = shaped.bounds
            if right - left > 180.0:  # a ring across the antimeridian, not split
                shaped = antimeridian.fix_shape(mapping(shaped))
                shaped = shape(shaped) if isinstance(shaped, Mapping) else shaped
            if not shaped.is_valid:
                shaped = shaped.buffer(0)
            if shaped.geom_type == "Polygon":
                shaped = orient(shaped)
        except Exception as error:  # shapely/antimeridian raise assorted errors on odd rings
            raise SentinelCubeError(
                f"STAC item {item.get('id')!r}: its geometry is not a usable polygon ({error})"
            ) from error
    if (shaped is None or shaped.is_empty) and item.get("bbox"):
        try:
            left, bottom, right, top = (float(v) for v in list(item["bbox"])[:4])
            shaped = box(left, bottom, right, top)
        except (TypeError, ValueError):
            shaped = None
    if shaped is None or shaped.is_empty:
        shaped = fallback()
    return shaped


# --------------------------------------------------------------------------- grids


def _gdal_path(href: str) -> str:
    """The GDAL path of an asset href: ``/vsis3/``, ``/vsicurl/`` or a local path."""
    if href.lower().startswith("file://"):
        return unquote(urlsplit(href).path)
    return _cloud.gdal_path(href)


def _scaled(
    grid: tuple[tuple[int, int], Affine], resolution: int | None
) -> tuple[tuple[int, int], Affine] | None:
    """An item-level grid for an asset of another announced resolution (same extent)."""
    (rows, cols), transform = grid
    if resolution is None or abs(transform.a - resolution) < 1e-9:
        return grid
    factor_x, factor_y = cols * transform.a / resolution, rows * -transform.e / resolution
    if abs(factor_x - round(factor_x)) > 1e-6 or abs(factor_y - round(factor_y)) > 1e-6:
        return None
    return (round(factor_y), round(factor_x)), Affine(
        resolution, 0.0, transform.c, 0.0, -resolution, transform.f
    )


class _ItemReader:
    """Converts one item; collects what needed a header read for the caller's warning."""

    def __init__(self, item: Mapping[str, Any], storage_options: Mapping[str, Any] | None):
        self.item = item
        self.id = str(item.get("id") or "?")
        self.props: Mapping[str, Any] = item.get("properties") or {}
        self.storage_options = storage_options
        self.opened = 0

    def error(self, problem: str) -> SentinelCubeError:
        return SentinelCubeError(f"STAC item {self.id!r}: {problem}")

    def epsg_of(self, choice: AssetChoice) -> int | None:
        try:
            return proj_epsg(choice.asset) or proj_epsg(self.props)
        except ProjError as error:
            raise self.error(
                f"asset {choice.key}: {error}; this reader needs an EPSG code (proj:code "
                "'EPSG:326zz' or proj:epsg)"
            ) from None

    def metadata_grid(self, choice: AssetChoice) -> tuple[tuple[int, int], Affine] | None:
        try:
            own = proj_grid(choice.asset)
            if own is not None:
                return own
            shared = proj_grid(self.props)
        except ProjError as error:
            raise self.error(
                f"asset {choice.key}: {error}; fix the item's projection fields"
            ) from None
        return None if shared is None else _scaled(shared, choice.resolution)

    def header_grid(self, choice: AssetChoice, path: str, href: str) -> FileGrid:
        env: dict[str, object] = {}
        credentials: dict[str, str] = {}
        if _cloud.is_remote(href):
            remote = _cloud.settings(self.storage_options, url=href)
            env = dict(remote.gdal_env())
            credentials = remote.gdal_credentials()
            secrets = remote.secrets()
        else:
            secrets = ()
        self.opened += 1
        try:
            return read_file_grid(path, env=env, credentials=credentials)
        except GeoreferenceError as error:
            detail = _cloud.scrub(str(error), secrets)
            raise self.error(
                f"gives no grid for asset {choice.key} (no proj:shape with proj:transform or "
                f"proj:bbox, on the asset or the item), and its file {_cloud.redact(href)} "
                f"{detail}: check that the href is reachable from here (network, "
                "credentials, an expired signature: search again), or add the projection "
                "extension to the item"
            ) from None


# --------------------------------------------------------------------------- conversion


def _requested(bands: Sequence[str] | str | None) -> tuple[str, ...] | None:
    if bands is None:
        return None
    names = [bands] if isinstance(bands, str) else list(bands)
    found = []
    for name in names:
        try:
            found.append(normalize_band(name))
        except ValueError:
            continue  # planning names the unknown band
    return tuple(dict.fromkeys(found)) or None  # none known: planning says what is wrong


def item_to_product(
    item: Any,
    bands: Sequence[str] | str | None = None,
    *,
    sign: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> Product:
    """One STAC item as a :class:`~sentinel_cube.safe.Product`; see :func:`items_to_products`."""
    product, _ = _convert(_item_dict(item), _requested(bands), sign, storage_options)
    return product


def _convert(
    item: Mapping[str, Any],
    wanted: tuple[str, ...] | None,
    sign: bool,
    storage_options: Mapping[str, Any] | None,
) -> tuple[Product, int]:
    reader = _ItemReader(item, storage_options)
    props = reader.props
    provider = detect_provider(item)
    assets = item.get("assets") or {}
    looked_for = None if wanted is None else (*wanted, "SCL")  # SCL for mask_clouds
    choices = band_assets(assets, provider, looked_for)
    if not choices:
        raise reader.error(
            f"has no band asset ({provider} item; assets: {describe_assets(assets)}); "
            "is it a Sentinel-2 item?"
        )
    missing = [b for b in wanted or () if b not in choices]
    if missing:
        raise reader.error(
            f"has no asset for band {', '.join(missing)} (assets: {describe_assets(assets)}); "
            "ask only for bands it has, or use items of a collection that has them"
        )

    hrefs = {band: str(choice.asset["href"]) for band, choice in choices.items()}
    unsigned = [h for h in hrefs.values() if is_planetary_computer(h) and not is_signed(h)]
    if unsigned and sign:
        signed = sign_hrefs(unsigned, reader.id)
        hrefs = {band: signed.get(href, href) for band, href in hrefs.items()}

    named = _product_name(item)
    baseline = _baseline(props, named)
    tile = _tile(item, named)
    needed = set(wanted) if wanted is not None else set(choices)  # opened if need be
    epsgs = {band: reader.epsg_of(choice) for band, choice in choices.items()}
    grids: dict[str, tuple[tuple[int, int], Affine]] = {}
    headers: dict[int, FileGrid] = {}
    for band, choice in choices.items():
        grid = reader.metadata_grid(choice)
        if grid is None:
            if band not in needed:
                continue  # left out rather than opened for nothing
            resolution = choice.resolution or NATIVE_RESOLUTION[band]
            if resolution not in headers:
                headers[resolution] = reader.header_grid(
                    choice, _gdal_path(hrefs[band]), hrefs[band]
                )
            found = headers[resolution]
            grid = (found.shape, found.transform)
            if epsgs[band] is None:
                epsgs[band] = found.epsg
            elif found.epsg is not None and found.epsg != epsgs[band]:
                raise reader.error(
                    f"asset {choice.key} says EPSG:{epsgs[band]} but its file is in "
                    f"{found.crs}; fix the item's proj:code/proj:epsg"
                )
        grids[band] = grid

    codes = {epsgs[b] for b in grids if epsgs[b] is not None}
    if len(codes) > 1:
        detail = ", ".join(f"{choices[b].key} EPSG:{epsgs[b]}" for b in grids)
        raise reader.error(
            f"its band assets are in different CRSs ({detail}); a product has one CRS: "
            "fix the item's proj:code/proj:epsg"
        )
    epsg = codes.pop() if codes else None
    if epsg is None and tile:
        try:
            epsg = mgrs.tile_epsg(tile)  # a Sentinel-2 tile lies in one UTM zone
        except ValueError:
            epsg = None
    if epsg is None:
        raise reader.error(
            "gives no CRS (no proj:code or proj:epsg on its assets or properties, no MGRS "
            "tile): add the projection extension to the item"
        )

    files: dict[str, BandFile] = {}
    for band, grid in grids.items():
        choice = choices[band]
        radiometry = asset_radiometry(band, choice.asset, props, baseline, jp2=choice.jp2)
        if radiometry is None:
            raise reader.error(
                f"its radiometry is unknown: asset {choice.key} has no raster:bands scale "
                "and the item no processing baseline (s2:processing_baseline, "
                "processing:version, or an ESA product name with _Nxxxx_): add one of them"
            )
        shape_, transform = grid
        files[band] = BandFile(
            band=band,
            path=_gdal_path(hrefs[band]),
            resolution=round(transform.a),
            shape=shape_,
            transform=transform,
            offset=radiometry.offset,
            quantification=radiometry.quantification,
            nodata=radiometry.nodata,
        )

    sensing = (
        _time(props.get("datetime"))
        or _time(props.get("start_datetime"))
        or (named.sensing_start if named else None)
    )
    if sensing is None:
        raise reader.error("has no datetime (nor start_datetime): add one")
    first = next(iter(files.values()))
    level = _level(item, named, "SCL" in choices)
    quality = {
        key[3:]: value
        for key, value in ((k, _percent(v)) for k, v in props.items())
        if key.startswith("s2:")
        and key.endswith("_percentage")
        and value is not None
        and key[3:].removesuffix("_percentage") not in _IMAGE_CONTENT
    }
    direction = props.get("sat:orbit_state")
    orbit = props.get("sat:relative_orbit") or props.get("sentinel:relative_orbit")
    product = Product(
        path=_product_path(item),
        product_id=reader.id,
        platform=_platform(props, named),
        processing_level=level,
        producttype="S2MSI1C" if level == "L1C" else "S2MSI2A",
        processing_baseline=baseline or "",
        sensing_start=sensing,
        generation_time=_time(props.get("s2:generation_time"))
        or _time(props.get("processing:datetime")),
        tile_id=tile or "",
        relative_orbit=int(orbit) if orbit else (named.relative_orbit if named else 0),
        orbit_direction=str(direction).upper() if direction else None,
        epsg=epsg,
        footprint=_footprint(item, lambda: reproject_geometry(box(*first.bounds), epsg, 4326)),
        bands=files,
        cloud_cover=_percent(props.get("eo:cloud_cover")),
        vegetation=_percent(props.get("s2:vegetation_percentage")),
        not_vegetated=_percent(props.get("s2:not_vegetated_percentage")),
        water=_percent(props.get("s2:water_percentage")),
        snow_ice=_percent(props.get("s2:snow_ice_percentage")),
        quality=quality,
    )
    return product, reader.opened


def _product_path(item: Mapping[str, Any]) -> str:
    host = urlsplit(_self_href(item) or "").hostname
    collection = item.get("collection") or "items"
    parts = [p for p in (host, str(collection), str(item.get("id"))) if p]
    return STAC_PATH_PREFIX + "/".join(parts)


def items_to_products(
    items: Any,
    bands: Sequence[str] | str | None = None,
    *,
    sign: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> list[Product]:
    """Turn STAC items into Products, the plain description :func:`open_cube` stacks.

    Parameters
    ----------
    items
        A ``pystac.ItemCollection``, a list of ``pystac.Item`` or of item dicts, a
        FeatureCollection dict, or one item.
    bands
        Bands that must be there (ESA names: ``"B04"``, not ``"red"``); the Products
        hold those bands and SCL (for :func:`sentinel_cube.mask_clouds`). None: every
        band asset of the items, no check.
    sign
        Sign unsigned Planetary Computer hrefs (needs ``planetary-computer``). With
        ``False`` they are kept as they are (and fail when read).
    storage_options
        For assets on ``s3://`` whose grid must be read from the file header:
        credentials and endpoint, as :func:`sentinel_cube.open_cube` takes them.

    Returns
    -------
    list of Product
        In the order of ``items``; each is also remembered in this process by its
        :attr:`~Product.path` (see :func:`registered`).

    Raises
    ------
    SentinelCubeError
        An item lacks a band of ``bands`` (the message lists its asset keys and the
        bands they map to), gives no grid and its file cannot be opened, has
        unusable projection fields, band assets in different CRSs, no datetime, or
        no way to tell its radiometry. Every message names the item id.
    MissingExtraError
        Planetary Computer hrefs are unsigned and ``planetary-computer`` is missing.

    Warns
    -----
    SentinelCubeWarning
        Items whose grids had to be read from file headers (once per call).

    Examples
    --------
    >>> import json
    >>> page = json.load(open("earth_search_v1_s2l2a_search_trimmed.json"))  # doctest: +SKIP
    >>> [p] = items_to_products(page, ["B04", "SCL"])                      # doctest: +SKIP
    >>> p.band("B04").path, p.band("B04").offset, p.processing_baseline   # doctest: +SKIP
    ('/vsicurl/https://sentinel-cogs.s3.us-west-2.amazonaws.com/.../B04.tif', 0.0, '05.09')
    """
    wanted = _requested(bands)
    products = []
    opened: list[str] = []
    for item in as_items(items):
        product, count = _convert(item, wanted, sign, storage_options)
        if count:
            opened.append(product.product_id)
        products.append(product)
    if opened:
        shown = ", ".join(opened[:5]) + (f" and {len(opened) - 5} more" if len(opened) > 5 else "")
        warnings.warn(
            f"{len(opened)} STAC item(s) give no grid for some band assets (no proj:shape with "
            f"proj:transform or proj:bbox): {shown}; their grids were read from the files' "
            "headers, one asset per resolution. Items with the projection extension are "
            "planned without opening any file",
            SentinelCubeWarning,
            stacklevel=2,
        )
    _remember(products)
    return products


#: Asset fields left out of :func:`item_record` (text for people, other access routes).
_RECORD_DROPS = frozenset({"title", "description", "alternate", "file:checksum", "auth:refs"})


def item_record(item: Any) -> str:
    """A compact JSON text of ``item`` for a products table: enough to open it, no secret.

    Keeps the id, collection, properties, geometry, bbox, the self link and the band
    assets :func:`~sentinel_cube.stac.band_assets` picks (their hrefs without any
    signing query string: Planetary Computer hrefs are signed again when opened).

    Examples
    --------
    >>> text = item_record({"type": "Feature", "id": "x", "properties": {}, "assets": {
    ...     "B04": {"href": "https://a.blob.core.windows.net/c/B04.tif?st=1&sig=S",
    ...             "title": "Red"}, "thumbnail": {"href": "https://h/t.jpg"}}})
    >>> "sig=" in text, json.loads(text)["assets"]
    (False, {'B04': {'href': 'https://a.blob.core.windows.net/c/B04.tif'}})
    """
    item = _item_dict(item)
    chosen = band_assets(item.get("assets") or {}, detect_provider(item))
    assets = {
        choice.key: {
            **{k: v for k, v in choice.asset.items() if k not in _RECORD_DROPS},
            "href": strip_signature(str(choice.asset["href"])),
        }
        for choice in chosen.values()
    }
    record: dict[str, Any] = {
        "type": "Feature",
        "stac_version": item.get("stac_version", "1.0.0"),
        "id": item.get("id"),
        "collection": item.get("collection"),
        "properties": item.get("properties") or {},
        "geometry": item.get("geometry"),
        "assets": assets,
    }
    if item.get("bbox"):
        record["bbox"] = item["bbox"]
    self_href = _self_href(item)
    if self_href:
        record["links"] = [{"rel": "self", "href": strip_signature(self_href)}]
    return json.dumps(record, separators=(",", ":"), default=str)


# --------------------------------------------------------------------------- registry

#: Products made from items in this process, by path, for operations that read a band
#: the cube left out (``mask_clouds`` reads SCL by :attr:`Product.path`). Bounded.
_REGISTRY: OrderedDict[str, Product] = OrderedDict()
_REGISTRY_LOCK = threading.Lock()
REGISTRY_SIZE = 100_000


def _remember(products: Iterable[Product]) -> None:
    with _REGISTRY_LOCK:
        for product in products:
            _REGISTRY[product.path] = product
            _REGISTRY.move_to_end(product.path)
        while len(_REGISTRY) > REGISTRY_SIZE:
            _REGISTRY.popitem(last=False)


def registered(path: str) -> Product | None:
    """The Product made in this process from the STAC item whose path is ``path``, or None.

    Examples
    --------
    >>> registered("stac://nowhere/sentinel-2-l2a/unknown") is None
    True
    """
    with _REGISTRY_LOCK:
        return _REGISTRY.get(path)
