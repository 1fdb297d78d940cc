"""A loopback STAC API serving the synthetic archive as STAC items.

* ``GET /`` - landing page with ``conformsTo`` (core, item search, query) and links.
* ``POST /search`` (and ``GET``) - ``collections``, ``ids``, ``intersects``,
  ``bbox``, ``datetime``, ``limit``, ``query`` (``eo:cloud_cover``), paging with a
  ``next`` link carrying a POST body, as Earth Search does.
* ``GET /data/<Name>.SAFE/<path>`` - the product files (``Range`` and faults).

Items of the zipped products given as ``zips`` have the keys, ``s2:*`` properties and
asset layout of Planetary Computer ``sentinel-2-l2a`` items (``stac-items/*.json`` of
the reference data): band assets and ``product-metadata``/``granule-metadata``/
``safe-manifest`` inside a ``.SAFE`` path under ``/data/``, plus ``file:size`` and
``file:checksum`` (MD5 multihash). Item dicts given as ``items`` (any provider's
shape, e.g. from :func:`sentinel_cube.testing.stac.publish_items`) are served as they
are, their hrefs pointing wherever they point; searches filter both the same way (on
the items' ``collection``, ``id``, ``geometry``, ``datetime`` and ``eo:cloud_cover``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import shapely
from shapely.geometry import mapping, shape

from sentinel_cube.safe._names import parse_band_file
from sentinel_cube.testing.servers._loopback import (
    LoopbackServer,
    ServedProduct,
    iso_z,
    send_file,
    send_json,
)

__all__ = ["STACServer", "stac_item"]

COLLECTION = "sentinel-2-l2a"
_CONFORMS = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#query",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
_PERCENTAGES = (
    "water", "snow_ice", "vegetation", "thin_cirrus", "cloud_shadow", "nodata_pixel",
    "unclassified", "dark_features", "not_vegetated", "degraded_msi_data",
    "high_proba_clouds", "medium_proba_clouds", "saturated_defective_pixel",
)  # fmt: skip
_TITLES = {"B02": "Band 2 - Blue - 10m", "B03": "Band 3 - Green - 10m",
           "B04": "Band 4 - Red - 10m", "B08": "Band 8 - NIR - 10m"}  # fmt: skip


def _pc_id(name: str) -> str:
    """Planetary Computer item id: the product name without the ``_Nxxxx`` part."""
    parts = name.split("_")
    return "_".join(p for p in parts if not (p.startswith("N") and p[1:].isdigit()))


def stac_item(product: ServedProduct, base: str) -> dict[str, Any]:
    """A Planetary-Computer-shaped STAC item for a served product."""
    meta = product.product
    quality = {k.removesuffix("_percentage"): v for k, v in (meta.quality or {}).items()}
    values = {"water": meta.water, "snow_ice": meta.snow_ice, "vegetation": meta.vegetation,
              "not_vegetated": meta.not_vegetated}  # fmt: skip
    granule = next((m.split("/")[1] for m in product.members if m.startswith("GRANULE/")), "")
    stamp = f"{meta.sensing_start:%Y%m%dT%H%M%S}"
    generation = meta.generation_time or meta.sensing_start
    centre = f"{meta.platform[-1]}APS"
    properties: dict[str, Any] = {
        "datetime": iso_z(meta.sensing_start),
        "platform": f"Sentinel-2{meta.platform[-1]}",
        "proj:epsg": meta.epsg,
        "instruments": ["msi"],
        "s2:mgrs_tile": meta.tile_id,
        "constellation": "Sentinel 2",
        "s2:granule_id": f"{meta.platform}_OPER_MSI_{meta.processing_level}_TL_{centre}_"
        f"{generation:%Y%m%dT%H%M%S}_A{product.absolute_orbit:06d}_T{meta.tile_id}_"
        f"N{meta.processing_baseline}",
        "eo:cloud_cover": meta.cloud_cover,
        "s2:datatake_id": f"G{meta.platform}_{stamp}_{product.absolute_orbit:06d}_"
        f"N{meta.processing_baseline}",
        "s2:product_uri": f"{product.name}.SAFE",
        "s2:datastrip_id": f"{meta.platform}_OPER_MSI_{meta.processing_level}_DS_{centre}_"
        f"{generation:%Y%m%dT%H%M%S}_S{stamp}_N{meta.processing_baseline}",
        "s2:product_type": meta.producttype,
        "sat:orbit_state": (meta.orbit_direction or "DESCENDING").lower(),
        "s2:datatake_type": "INS-NOBS",
        "s2:generation_time": iso_z(generation, 3),
        "sat:relative_orbit": meta.relative_orbit,
        "s2:mean_solar_zenith": 35.0,
        "s2:mean_solar_azimuth": 160.0,
        "s2:processing_baseline": meta.processing_baseline,
        "s2:reflectance_conversion_factor": 1.0,
    }
    for name in _PERCENTAGES:
        value = values.get(name, quality.get(name))
        properties[f"s2:{name}_percentage"] = float(value) if value is not None else 0.0
    data = f"{base}/data/{product.name}.SAFE"
    assets: dict[str, Any] = {}
    for path, content in product.members.items():
        parsed = parse_band_file(path) if path.endswith(".jp2") and "/IMG_DATA/" in path else None
        if parsed is None or parsed.band not in meta.bands:
            continue
        band = meta.bands[parsed.band]
        if band.resolution != (parsed.resolution or band.resolution):
            continue
        left, top = band.transform.c, band.transform.f
        rows, cols = band.shape
        res = band.resolution
        assets[parsed.band] = {
            "href": f"{data}/{path}",
            "type": "image/jp2",
            "title": _TITLES.get(parsed.band, f"Band {parsed.band} - {res}m"),
            "roles": ["data"],
            "gsd": float(res),
            "eo:bands": [{"name": parsed.band}],
            "proj:bbox": [left, top + band.transform.e * rows, left + band.transform.a * cols, top],
            "proj:shape": [rows, cols],
            "proj:transform": list(band.transform)[:6],
            "file:size": len(content),
            "file:checksum": "d50110" + hashlib.md5(content).hexdigest(),
        }
    metadata = {
        "safe-manifest": ("manifest.safe", "SAFE manifest"),
        "granule-metadata": (f"GRANULE/{granule}/MTD_TL.xml", "Granule metadata"),
        "product-metadata": (f"MTD_MSI{meta.processing_level}.xml", "Product metadata"),
    }
    for key, (path, title) in metadata.items():
        content = product.members[path]
        assets[key] = {"href": f"{data}/{path}", "type": "application/xml", "title": title,
                       "roles": ["metadata"], "file:size": len(content),
                       "file:checksum": "d50110" + hashlib.md5(content).hexdigest()}  # fmt: skip
    item_id = _pc_id(product.name)
    footprint = meta.footprint
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "properties": properties,
        "geometry": json.loads(json.dumps(mapping(footprint))),
        "links": [
            {
                "rel": "collection",
                "href": f"{base}/collections/{COLLECTION}",
                "type": "application/json",
            },
            {
                "rel": "parent",
                "href": f"{base}/collections/{COLLECTION}",
                "type": "application/json",
            },
            {"rel": "root", "href": f"{base}/", "type": "application/json"},
            {
                "rel": "self",
                "href": f"{base}/collections/{COLLECTION}/items/{item_id}",
                "type": "application/geo+json",
            },
        ],  # fmt: skip
        "assets": assets,
        "bbox": list(footprint.bounds),
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
            "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.0.0/schema.json",
            "https://stac-extensions.github.io/file/v2.1.0/schema.json",
        ],
        "collection": COLLECTION,
    }


def _datetime_range(text: str | None) -> tuple[datetime | None, datetime | None]:
    if not text:
        return None, None
    parts = text.split("/") if "/" in text else [text, text]

    def parse(value: str) -> datetime | None:
        if value in ("", ".."):
            return None
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    return parse(parts[0]), parse(parts[1])


def _when(item: Mapping[str, Any]) -> datetime:
    props = item["properties"]
    text = props.get("datetime") or props.get("start_datetime")
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


class STACServer(LoopbackServer):
    """Loopback STAC API (see the module docstring); :attr:`url` is its root.

    Parameters
    ----------
    zips : iterable of path
        Zipped products, served as Planetary-Computer-style items with their files.
    items : iterable of dict
        Further STAC item dicts, served as they are.
    faults : Faults, optional
        Faults of the ``/data/`` file downloads.

    Attributes
    ----------
    searches : list of dict
        The search bodies (or query parameters) received, in order.
    """

    def __init__(self, zips=(), *, items: Iterable[Mapping[str, Any]] = (), faults=None) -> None:
        super().__init__(zips, faults=faults)
        self.items = [dict(item) for item in items]
        self.searches: list[dict[str, Any]] = []

    def handle(self, handler: Any, method: str) -> None:
        parts = urlsplit(handler.path)
        path = unquote(parts.path)
        if path in ("", "/"):
            send_json(handler, 200, self._landing())
        elif path == "/search":
            if method == "POST":
                body = json.loads(handler.body() or b"{}")
            else:
                body = {k: v for k, v in parse_qsl(parts.query)}
                for key in ("collections", "ids"):
                    if key in body:
                        body[key] = body[key].split(",")
                if "intersects" in body:
                    body["intersects"] = json.loads(body["intersects"])
            self._search(handler, body)
        elif path.startswith("/data/"):
            name, _, member = path[len("/data/") :].partition(".SAFE/")
            product = self.products.get(name)
            content = product.members.get(member) if product else None
            if content is None:
                send_json(handler, 404, {"code": "NotFound", "description": "no such file"})
                return
            send_file(handler, self, content, member.rsplit("/", 1)[-1], head=method == "HEAD")
        else:
            send_json(handler, 404, {"code": "NotFound", "description": f"{path} not found"})

    def _landing(self) -> dict[str, Any]:
        return {
            "type": "Catalog",
            "id": "loopback-stac",
            "title": "Loopback STAC API",
            "description": "A synthetic Sentinel-2 archive for tests",
            "stac_version": "1.0.0",
            "conformsTo": _CONFORMS,
            "links": [
                {"rel": "self", "type": "application/json", "href": f"{self.url}/"},
                {"rel": "root", "type": "application/json", "href": f"{self.url}/"},
                {"rel": "data", "type": "application/json", "href": f"{self.url}/collections"},
                {"rel": "search", "type": "application/geo+json", "href": f"{self.url}/search",
                 "method": "GET"},
                {"rel": "search", "type": "application/geo+json", "href": f"{self.url}/search",
                 "method": "POST"},
            ],
        }  # fmt: skip

    def catalogue(self) -> list[dict[str, Any]]:
        """Every item served: the products' then the given ones, by time then id."""
        items = [stac_item(p, self.url) for p in self.products.values()] + self.items
        return sorted(items, key=lambda i: (_when(i), i["id"]))

    def _search(self, handler: Any, body: dict[str, Any]) -> None:
        self.searches.append(body)
        start, end = _datetime_range(body.get("datetime"))
        area = shape(body["intersects"]) if body.get("intersects") else None
        if body.get("bbox"):
            area = shapely.box(*[float(v) for v in str(body["bbox"]).strip("[]").split(",")]) \
                if isinstance(body["bbox"], str) else shapely.box(*body["bbox"])  # fmt: skip
        cloud = (body.get("query") or {}).get("eo:cloud_cover", {})
        ids = set(body.get("ids") or [])
        collections = set(body.get("collections") or [COLLECTION])
        items = []
        for item in self.catalogue():
            when = _when(item)
            cover = item["properties"].get("eo:cloud_cover") or 0.0
            if item.get("collection", COLLECTION) not in collections:
                continue
            if ids and item["id"] not in ids:
                continue
            if (start and when < start) or (end and when > end):
                continue
            if area is not None and not shape(item["geometry"]).intersects(area):
                continue
            low, high = cloud.get("gte", -1.0), cloud.get("lte", 101.0)
            if not low <= cover <= high:
                continue
            items.append(item)
        limit = int(body.get("limit") or 10)
        offset = int(body.get("next") or 0)
        page = items[offset : offset + limit]
        links: list[dict[str, Any]] = [{"rel": "root", "type": "application/json",
                                        "href": f"{self.url}/"}]  # fmt: skip
        if offset + limit < len(items):
            links.insert(
                0,
                {
                    "rel": "next",
                    "title": "Next page of Items",
                    "method": "POST",
                    "type": "application/geo+json",
                    "href": f"{self.url}/search",
                    "merge": False,
                    "body": {**body, "next": str(offset + limit)},
                },
            )
        send_json(handler, 200, {
            "type": "FeatureCollection", "stac_version": "1.0.0", "stac_extensions": [],
            "context": {"limit": limit, "matched": len(items), "returned": len(page)},
            "numberMatched": len(items), "numberReturned": len(page),
            "features": page, "links": links,
        })  # fmt: skip
