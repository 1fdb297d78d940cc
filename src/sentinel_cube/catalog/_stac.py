"""STAC APIs (Earth Search, Planetary Computer, CDSE STAC) through pystac-client.

:func:`stac_products_frame` maps STAC items onto the products table (``s2:*``
properties onto the sentinelsat column names: ``s2:vegetation_percentage`` ->
``vegetationpercentage``...). :func:`item_files` picks the assets to download for
a list of bands: the band files (JPEG 2000 where the catalogue offers them over
HTTP, else the GeoTIFF/COG) and the metadata files. Items whose assets live
inside a ``.SAFE`` layout (Planetary Computer, CDSE) are rebuilt as a partial
``.SAFE`` that :func:`sentinel_cube.read_product` reads; other items (Earth
Search's flat COG folders) are saved as a folder named after the item.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import geopandas as gpd
from shapely.geometry import mapping, shape

from ..bands import L2A_BANDS, normalize_band
from ..exceptions import CatalogError, ProductError, SentinelCubeError
from ..mgrs import tile_epsg
from ..safe._names import parse_product_name
from ..schema import INDEX_NAME, STAC_ITEM
from ..stac import item_record
from ._base import Catalog, DownloadRequest, Wanted, rows_frame, text_or_none
from ._batch import Batch, ProductBar
from ._checksum import decode_multihash
from ._download import FileDownloader, RemoteFile, describe
from ._http import RetryPolicy, download_session
from ._paths import safe_name, safe_relpath
from ._query import SearchQuery
from ._result import DownloadResult
from ._safe_parts import fetch_files

__all__ = ["STACCatalog", "asset_band", "item_files", "stac_products_frame"]

#: Earth Search asset keys (common names) -> band.
COMMON_NAMES: dict[str, str] = {
    "coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05",
    "rededge2": "B06", "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09",
    "cirrus": "B10", "swir16": "B11", "swir22": "B12", "scl": "SCL", "aot": "AOT",
    "wvp": "WVP", "visual": "TCI",
}  # fmt: skip
_METADATA_KEYS = {
    "product-metadata", "product_metadata", "granule-metadata", "granule_metadata",
    "safe-manifest", "inspire-metadata", "tileinfo_metadata", "metadata",
}  # fmt: skip
_LEVELS = {"S2MSI1C": "Level-1C", "S2MSI2A": "Level-2A"}
_IMAGE_CONTENT = {
    "s2:vegetation_percentage": "vegetationpercentage",
    "s2:not_vegetated_percentage": "notvegetatedpercentage",
    "s2:water_percentage": "waterpercentage",
    "s2:snow_ice_percentage": "snowicepercentage",
}


def _tile(props: Mapping[str, Any], product_id: str) -> str | None:
    if props.get("s2:mgrs_tile"):
        return str(props["s2:mgrs_tile"]).upper()
    zone, band, square = (props.get(k) for k in
                          ("mgrs:utm_zone", "mgrs:latitude_band", "mgrs:grid_square"))  # fmt: skip
    if zone and band and square:
        return f"{int(zone):02d}{band}{square}".upper()
    code = str(props.get("grid:code") or "")
    if code.upper().startswith("MGRS-"):
        return code[5:].upper().zfill(5)
    named = parse_product_name(product_id)
    return named.tile_id if named else None


def _platform(props: Mapping[str, Any]) -> str | None:
    text = str(props.get("platform") or "").strip()
    if not text:
        return None
    return "Sentinel-2" + text[-1].upper() if text.lower().startswith("sentinel-2") else text


def _epsg(props: Mapping[str, Any], tile: str | None) -> int | None:
    if props.get("proj:epsg"):
        return int(props["proj:epsg"])
    code = str(props.get("proj:code") or "")
    if code.upper().startswith("EPSG:"):
        return int(code[5:])
    try:
        return tile_epsg(tile) if tile else None
    except ValueError:
        return None


def item_row(item: Mapping[str, Any], catalog: str) -> dict[str, Any]:
    """One products-table row from a STAC item (dict)."""
    props = item.get("properties") or {}
    uri = props.get("s2:product_uri") or props.get("sentinel:product_id") or item["id"]
    product_id = str(uri).removesuffix(".SAFE")
    named = parse_product_name(product_id)
    ptype = props.get("s2:product_type") or (
        f"S2MSI{named.processing_level[1:]}" if named else None
    )
    tile = _tile(props, product_id)
    family = "Sentinel-2" if str(props.get("constellation", "")).lower().replace(" ", "-") in (
        "sentinel-2", "") else props.get("constellation")  # fmt: skip
    direction = props.get("sat:orbit_state")
    row: dict[str, Any] = {
        INDEX_NAME: product_id,
        "title": product_id,
        "beginposition": props.get("datetime") or props.get("start_datetime"),
        "endposition": props.get("datetime") or props.get("end_datetime"),
        "ingestiondate": props.get("s2:generation_time") or props.get("created"),
        "platformname": family,
        "platformserialidentifier": _platform(props),
        "producttype": ptype,
        "processinglevel": _LEVELS.get(str(ptype)),
        "processingbaseline": props.get("s2:processing_baseline")
        or (named.processing_baseline if named else None),
        "tileid": tile,
        "relativeorbitnumber": props.get("sat:relative_orbit")
        or (named.relative_orbit if named else None),
        "orbitdirection": str(direction).upper() if direction else None,
        "cloudcoverpercentage": props.get("eo:cloud_cover"),
        "online": True,
        "epsg": _epsg(props, tile),
        "stac_id": item["id"],
        "collection": item.get("collection"),
        "catalog": catalog,
        "geometry": shape(item["geometry"]) if item.get("geometry") else None,
        STAC_ITEM: _record(item),
    }
    for key, value in props.items():
        if key in _IMAGE_CONTENT:
            row[_IMAGE_CONTENT[key]] = value
        elif key.startswith("s2:") and key.endswith("_percentage"):
            row.setdefault(key[3:].replace("_", ""), value)
    return row


def _record(item: Mapping[str, Any]) -> str | None:
    try:
        return item_record(item)
    except SentinelCubeError:  # not an item open_cube could read: the row has no record
        return None


def stac_products_frame(items: Iterable[Mapping[str, Any]], catalog: str) -> gpd.GeoDataFrame:
    """The products table from STAC item dicts (``ItemSearch.items_as_dicts()``).

    Extra columns: ``stac_id``, ``collection``, ``catalog``, ``stac_item`` (the item
    as compact JSON, hrefs without signatures: :func:`sentinel_cube.open_cube` reads
    rows without a local ``path`` from it) and every other ``s2:*_percentage``
    (``s2:high_proba_clouds_percentage`` -> ``highprobacloudspercentage``).

    Examples
    --------
    >>> import json
    >>> page = json.load(open("earth_search_v1_s2l2a_search_trimmed.json"))  # doctest: +SKIP
    >>> stac_products_frame(page["features"], "stac:https://earth-search.aws.element84.com/v1")
    ... # doctest: +SKIP
    """
    rows = (item_row(item, catalog) for item in items)
    return rows_frame(rows, ("stac_id", "collection", "catalog", STAC_ITEM), unique=True)


def asset_band(key: str, asset: Mapping[str, Any]) -> str | None:
    """The band an asset holds (``"red-jp2"`` -> ``"B04"``), or None.

    Examples
    --------
    >>> asset_band("red-jp2", {}), asset_band("B8A", {}), asset_band("thumbnail", {})
    ('B04', 'B8A', None)
    """
    base = key.lower().removesuffix("-jp2").removesuffix("_jp2")
    if base in COMMON_NAMES:
        return COMMON_NAMES[base]
    try:
        return normalize_band(base)
    except ValueError:
        pass
    names = [b.get("name") for b in asset.get("eo:bands") or [] if isinstance(b, Mapping)]
    if len(names) == 1 and names[0]:
        try:
            return normalize_band(str(names[0]))
        except ValueError:
            return COMMON_NAMES.get(str(names[0]).lower())
    return None


def _http(href: str) -> bool:
    return urlsplit(href).scheme in ("http", "https")


def _checksums(asset: Mapping[str, Any]) -> dict[str, str]:
    decoded = decode_multihash(asset["file:checksum"]) if asset.get("file:checksum") else None
    return {decoded[0]: decoded[1]} if decoded else {}


def item_files(
    item: Mapping[str, Any], bands: Sequence[str] | None
) -> tuple[str, str, list[RemoteFile]]:
    """What to download for ``bands`` of an item: ``(layout, folder name, files)``.

    ``layout`` is ``"safe"`` when every chosen asset sits inside a ``.SAFE``
    folder (``folder`` is then the product name), else ``"flat"`` (``folder`` is
    the item id and files keep their base names).

    Raises
    ------
    CatalogError
        A band has no asset downloadable over HTTP(S).
    """
    wanted = L2A_BANDS if bands is None else tuple(dict.fromkeys(normalize_band(b) for b in bands))
    by_band: dict[str, tuple[int, str, Mapping[str, Any]]] = {}
    metadata: list[tuple[str, Mapping[str, Any]]] = []
    for key, asset in (item.get("assets") or {}).items():
        href = str(asset.get("href", ""))
        if not _http(href):
            continue
        roles = set(asset.get("roles") or [])
        if key in _METADATA_KEYS or ("metadata" in roles and "datastrip" not in key):
            metadata.append((key, asset))
            continue
        band = asset_band(key, asset)
        if band is None or band not in wanted or "thumbnail" in roles or "overview" in roles:
            continue
        rank = 0 if "jp2" in str(asset.get("type", "")).lower() else 1
        if band not in by_band or rank < by_band[band][0]:
            by_band[band] = (rank, key, asset)
    missing = [b for b in wanted if b not in by_band and (bands is not None or b == "B04")]
    if missing:
        raise CatalogError(
            f"STAC item {item.get('id')!r} has no asset downloadable over HTTP(S) for band(s) "
            f"{', '.join(missing)} (assets: {', '.join(item.get('assets') or {})}); choose "
            "other bands or another catalogue"
        )
    chosen = [(k, a) for k, a in metadata] + [(k, a) for _, k, a in by_band.values()]
    paths = [unquote(urlsplit(str(a["href"])).path) for _, a in chosen]
    if paths and all(".SAFE/" in p for p in paths):
        product = posixpath.basename(paths[0].split(".SAFE/", 1)[0])
        relative = [p.split(".SAFE/", 1)[1] for p in paths]
        layout, folder = "safe", product
    else:
        relative = [posixpath.basename(p) for p in paths]
        layout, folder = "flat", str(item["id"])
    files = [
        RemoteFile(
            str(asset["href"]),
            safe_relpath(rel, "asset path"),
            asset.get("file:size"),
            _checksums(asset),
        )  # fmt: skip
        for (_, asset), rel in zip(chosen, relative, strict=True)
    ]
    return layout, folder, files


class STACCatalog(Catalog):
    """Search a STAC API with pystac-client; download band assets.

    Parameters
    ----------
    url : str
        The STAC API root (``https://earth-search.aws.element84.com/v1``,
        ``https://planetarycomputer.microsoft.com/api/stac/v1``,
        ``https://stac.dataspace.copernicus.eu/v1``).
    collection : str
        The Sentinel-2 collection id.
    headers : dict, optional
        Extra HTTP headers (API keys).
    modifier : callable, optional
        pystac-client item modifier, e.g. ``planetary_computer.sign_inplace``
        to sign Planetary Computer asset URLs.
    retry : RetryPolicy, optional
        Retries of searches and downloads.
    max_connections : int
        Concurrent file downloads.

    Notes
    -----
    The AOI, dates and (when the API supports the query extension) the cloud
    range go to the server; every criterion is applied again locally. Downloads
    fetch the band assets (all bands when ``bands`` is None) plus the metadata of
    each product; STAC assets are always online, so ``wait``, ``timeout`` and
    ``poll_interval`` have no effect.

    Examples
    --------
    >>> cat = STACCatalog("https://earth-search.aws.element84.com/v1")   # doctest: +SKIP
    >>> products = cat.search((19.0, 47.4, 19.2, 47.6), date=("2023-07-01", "2023-07-31"),
    ...                       cloudcoverpercentage=(0, 20))            # doctest: +SKIP
    >>> cat.download(products, "archive/", bands=["B04", "B08", "SCL"])  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str,
        collection: str = "sentinel-2-l2a",
        *,
        headers: Mapping[str, str] | None = None,
        modifier: Callable[[Any], Any] | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 8,
    ) -> None:
        self.url = url.rstrip("/")
        self.collection = collection
        self.headers = dict(headers or {})
        self.modifier = modifier
        self.retry = retry or RetryPolicy()
        self.max_connections = max(1, int(max_connections))
        self._client: Any = None
        session = download_session(max(16, self.max_connections))
        session.headers.update(self.headers)
        self._downloader = FileDownloader(session, policy=self.retry,
                                          max_connections=self.max_connections)  # fmt: skip

    @property
    def spec(self) -> str:
        return f"stac:{self.url}"

    def __repr__(self) -> str:
        return f"STACCatalog({self.url!r}, collection={self.collection!r})"

    def _open(self) -> Any:
        if self._client is None:
            from pystac_client import Client
            from pystac_client.stac_api_io import StacApiIO

            io = StacApiIO(max_retries=self.retry.urllib3_retry(), timeout=self.retry.timeout)
            try:
                self._client = Client.open(self.url, headers=self.headers or None,
                                           modifier=self.modifier, stac_io=io)  # fmt: skip
            except Exception as error:  # pystac-client raises APIError, requests errors...
                raise CatalogError(
                    f"the STAC API {self.url} cannot be opened ({describe(error)}); check the "
                    "URL and the network"
                ) from None
        return self._client

    def _items(self, **kwargs: Any) -> list[dict[str, Any]]:
        client = self._open()
        try:
            search = client.search(collections=[self.collection], **kwargs)
            return list(search.items_as_dicts())
        except Exception as error:  # noqa: BLE001 - APIError, requests errors
            raise CatalogError(
                f"the STAC API {self.url} failed the search in {self.collection!r} "
                f"({describe(error)}); check the collection id and the arguments"
            ) from None

    def _search(self, query: SearchQuery) -> gpd.GeoDataFrame:
        """The AOI, dates and (with the query extension) the cloud range go to the server."""
        kwargs: dict[str, Any] = {}
        if query.aoi is not None:
            kwargs["intersects"] = mapping(query.aoi)
        if query.date is not None:
            kwargs["datetime"] = "/".join(
                s.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if s is not None else ".."
                for s in (query.start, query.end)
            )
        cloud = query.cloudcoverpercentage
        client = self._open()
        if cloud is not None and client.conforms_to("QUERY"):
            kwargs["query"] = {"eo:cloud_cover": {"gte": cloud[0], "lte": cloud[1]}}
        local_only = any(
            x is not None
            for x in (query.platformname, query.producttype, query.tileid,
                      query.relativeorbitnumber)
        ) or (cloud is not None and "query" not in kwargs)  # fmt: skip
        if query.limit is not None and not local_only:  # else the local filters need every item
            kwargs["max_items"] = query.limit
        return stac_products_frame(self._items(**kwargs), self.spec)

    def _on_disk(self, directory: Path, name: str, bands: Sequence[str] | None) -> Path | None:
        """A ``.SAFE`` already holding ``bands`` (read without network), or None."""
        from ..safe import read_product

        safe = directory / f"{name}.SAFE"
        if not safe.is_dir():
            return None
        try:
            read_product(safe, require_bands=list(bands) if bands is not None else "all")
        except (ProductError, ValueError):
            return None
        return safe

    def _fetch(self, wanted: list[Wanted], request: DownloadRequest, result: DownloadResult):
        """Fetch the items again by id (so signed URLs are fresh), then their assets."""
        ids = {w.product_id: text_or_none(w.row.get("stac_id")) or w.product_id for w in wanted}
        workers = request.max_workers or self.max_connections
        with Batch(len(ids), workers, request.progress, "STAC items", result=result) as batch:
            try:
                found = {i["id"]: i for i in self._items(ids=list(ids.values()))}
            except CatalogError as error:
                for pid in ids:
                    batch.fail(pid, str(error))
                return
            for pid, item_id in ids.items():
                item = found.get(item_id)
                if item is None:
                    batch.fail(pid, f"STAC item {item_id!r} not found in {self.collection!r}")
                    continue
                batch.submit(pid, self._job(item, request.directory, request.bands,
                                            request.checksum))  # fmt: skip

    def _job(self, item: Mapping[str, Any], target: Path, bands, checksum: bool):
        def run(bar: ProductBar) -> tuple[Path, bool]:
            layout, folder, files = item_files(item, bands)
            name = safe_name(folder, "product name")
            final = target / (f"{name}.SAFE" if layout == "safe" else name)
            return fetch_files(final, files, self._downloader, verify=checksum, progress=bar)

        return run
