"""DHuS hubs (national mirrors, collaborative hubs) through sentinelsat.

sentinelsat speaks DHuS well: OpenSearch queries, OData product info, MD5 or
SHA3-256 verification, resume of ``.incomplete`` files, long-term-archive (LTA)
triggering, node (single file) downloads. This module maps its results onto the
products table and :class:`~sentinel_cube.catalog.DownloadResult`, and adds what
it lacks: remote names are checked before they become paths
(:class:`_GuardedAPI`), band subsets become a node filter, offline products are
either returned as pending or waited for with a timeout.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import geopandas as gpd
import pandas as pd

from ..aoi import aoi_hull
from ..bands import NATIVE_RESOLUTION, normalize_band
from ..exceptions import CatalogError
from ..mgrs import tile_epsg
from ..safe._manifest import parse_manifest
from ..safe._xml import MetadataError
from ..schema import INDEX_NAME, empty_products, normalize_products
from ._base import Catalog, DownloadRequest, Wanted
from ._credentials import Credentials, resolve_credentials
from ._errors import AuthenticationError, UnsafeNameError
from ._http import RetryPolicy
from ._paths import safe_name, safe_relpath
from ._query import SearchQuery
from ._result import DownloadResult
from ._safe_parts import (
    MANIFEST,
    METADATA_PATTERNS,
    safe_is_complete,
    select_entries,
)

__all__ = ["DHuSCatalog", "dhus_products_frame", "node_filter"]

_SIZE = re.compile(r"([\d.]+)\s*([KMGT]?B)", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_DROP = ("link", "link_alternative", "link_icon", "summary", "gmlfootprint", "footprint")


def _sentinelsat() -> Any:
    import sentinelsat

    return sentinelsat


def _size_bytes(text: Any) -> int | None:
    """``"110.44 MB"`` -> bytes (DHuS rounds, so this is approximate)."""
    match = _SIZE.search(str(text)) if text is not None else None
    if match is None:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def dhus_products_frame(frame: pd.DataFrame, catalog: str) -> gpd.GeoDataFrame:
    """The products table from ``SentinelAPI.to_geodataframe`` output.

    sentinelsat already uses the schema's column names (``beginposition``,
    ``cloudcoverpercentage``...); this sets the index to the product name,
    converts ``size`` (``"110.44 MB"``) to bytes, adds ``epsg``, ``uuid`` and
    ``catalog``, and drops links and GML.

    Examples
    --------
    >>> api_frame = SentinelAPI.to_geodataframe(products)             # doctest: +SKIP
    >>> dhus_products_frame(api_frame, "dhus:https://hub/")[["tileid", "size"]]  # doctest: +SKIP
    """
    if len(frame) == 0:
        out = empty_products()
        for column in ("uuid", "catalog"):
            out[column] = pd.Series(dtype="string")
        return out
    data = pd.DataFrame(frame.drop(columns=[c for c in _DROP if c in frame.columns]))
    geometry = frame.geometry if isinstance(frame, gpd.GeoDataFrame) else None
    data["uuid"] = data.get("uuid", pd.Series(frame.index, index=frame.index)).astype("string")
    titles = data["title"] if "title" in data else data.get("identifier")
    data.index = pd.Index(titles.astype(str), name=INDEX_NAME)
    data["size"] = [_size_bytes(v) for v in data.get("size", [None] * len(data))]
    if "tileid" in data:
        data["epsg"] = [_epsg(t) for t in data["tileid"]]
    if "online" not in data:
        data["online"] = pd.NA
    data["catalog"] = catalog
    data = data.drop(columns=["geometry"], errors="ignore")
    out = gpd.GeoDataFrame(data, geometry=list(geometry) if geometry is not None else None,
                           crs=4326)  # fmt: skip
    return normalize_products(out)


def _epsg(tile: Any) -> int | None:
    try:
        return tile_epsg(str(tile)) if isinstance(tile, str) and tile else None
    except ValueError:
        return None


def _band_patterns(bands: Sequence[str]) -> list[str]:
    patterns = []
    for band in dict.fromkeys(normalize_band(b) for b in bands):
        res = NATIVE_RESOLUTION[band]
        patterns += [f"*/IMG_DATA/R{res}m/*_{band}_{res}m.jp2", f"*/IMG_DATA/*_{band}.jp2"]
    return patterns


def node_filter(bands: Sequence[str], refused: list[str] | None = None):
    """A sentinelsat ``nodefilter`` for the metadata files and native-resolution ``bands``.

    Built from :func:`sentinelsat.products.make_path_filter` patterns (ORed).
    Node paths that would leave the product folder (``..``, absolute) are refused
    and appended to ``refused``.

    Examples
    --------
    >>> keep = node_filter(["B04"])
    >>> keep({"node_path": "GRANULE/G/IMG_DATA/R10m/T34TCT_20230810T094549_B04_10m.jp2"})
    True
    >>> keep({"node_path": "GRANULE/G/IMG_DATA/R20m/T34TCT_20230810T094549_B04_20m.jp2"})
    False
    >>> keep({"node_path": "../../etc/B04_10m.jp2"})
    False
    """
    make_path_filter = _sentinelsat().products.make_path_filter
    filters = [make_path_filter(p) for p in (*METADATA_PATTERNS, *_band_patterns(bands))]

    def keep(node_info: dict[str, Any]) -> bool:
        path = str(node_info.get("node_path", ""))
        try:
            safe_relpath(path, "node path")
        except UnsafeNameError:
            if refused is not None:
                refused.append(path)
            return False
        return any(f(node_info) for f in filters)

    return keep


def _guarded_api_class() -> type:
    from sentinelsat import SentinelAPI, SentinelAPIError

    class _UnsafeRemoteName(SentinelAPIError):
        pass

    class _GuardedAPI(SentinelAPI):
        """SentinelAPI refusing product and file names that would leave the folder.

        sentinelsat joins the server's ``Name`` and ``Content-Disposition`` file
        name to the download folder unchecked; these overrides check them first
        (raising a SentinelAPIError, which sentinelsat records per product).
        """

        def get_product_odata(self, id, full=False):  # noqa: A002 - sentinelsat's signature
            values = super().get_product_odata(id, full)
            try:
                safe_name(values["title"], "product name")
            except UnsafeNameError as error:
                raise _UnsafeRemoteName(str(error)) from None
            return values

        def _get_filename(self, product_info):
            name = super()._get_filename(product_info)
            try:
                return safe_name(name, "file name")
            except UnsafeNameError as error:
                raise _UnsafeRemoteName(str(error)) from None

    return _GuardedAPI


class DHuSCatalog(Catalog):
    """Search and download from a DHuS hub (national mirror) through sentinelsat.

    Parameters
    ----------
    url : str
        The hub's API root, e.g. ``https://colhub.met.no/`` (the URL sentinelsat
        calls ``api_url``; ``search`` and ``odata/v1`` hang below it).
    username, password : str, optional
        Default: ``DHUS_USERNAME``/``DHUS_PASSWORD``, then the hub's host in
        ``~/.netrc``.
    retry : RetryPolicy, optional
        ``attempts`` is sentinelsat's ``max_attempts``, ``backoff`` its delay
        between attempts, ``timeout`` its request timeout.

    Notes
    -----
    ``download`` runs sentinelsat's ``download_all``: whole products become
    ``NAME.zip``; with ``bands``, its node filter fetches the metadata files and
    those bands into ``NAME.SAFE``. Offline (LTA) products get their retrieval
    triggered; with ``wait=True`` sentinelsat polls every ``poll_interval`` s for
    at most ``timeout`` s.

    Examples
    --------
    >>> cat = DHuSCatalog("https://colhub.met.no/")                 # doctest: +SKIP
    >>> products = cat.search("budapest.geojson", date=("2023-06-01", "2023-06-30"),
    ...                       producttype="S2MSI2A")                # doctest: +SKIP
    >>> cat.download(products, "archive/", bands=["B04", "B08", "SCL"])  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.url = url if url.endswith("/") else url + "/"
        host = urlsplit(self.url).hostname or ""
        credentials = resolve_credentials(
            username, password, env_prefix="DHUS", hosts=(host,), service=f"DHuS hub {self.url}"
        )
        assert credentials is not None  # required=True raises instead of returning None
        self.credentials: Credentials = credentials
        self.retry = retry or RetryPolicy(backoff=10.0)
        api_class = _guarded_api_class()
        self.api = api_class(
            self.credentials.username, self.credentials.password, api_url=self.url,
            show_progressbars=False, timeout=self.retry.timeout,
        )  # fmt: skip
        self.api.dl_retry_delay = self.retry.backoff

    @property
    def spec(self) -> str:
        return f"dhus:{self.url}"

    def __repr__(self) -> str:
        return f"DHuSCatalog({self.url!r}, user={self.credentials.username!r})"

    # -- search --------------------------------------------------------------------------
    def _search(self, query: SearchQuery) -> gpd.GeoDataFrame:
        """One sentinelsat query with the criteria it understands, in time order."""
        keywords: dict[str, Any] = {"platformname": "Sentinel-2"}
        if query.platformname is not None:
            units = _units(query.platformname)
            if units:
                keywords["platformserialidentifier"] = units if len(units) > 1 else units.pop()
        for name, values in (("producttype", query.product_types()),
                             ("tileid", query.tile_ids()),
                             ("relativeorbitnumber", query.orbits())):  # fmt: skip
            if values:
                unique = set(values)
                keywords[name] = unique if len(unique) > 1 else unique.pop()
        cloud = query.cloudcoverpercentage
        if cloud is not None:
            keywords["cloudcoverpercentage"] = (f"{cloud[0]:g}", f"{cloud[1]:g}")
        when = None
        if query.date is not None:
            when = (
                query.start.to_pydatetime() if query.start is not None else None,
                query.end.to_pydatetime() if query.end is not None else "NOW",
            )
        area = aoi_hull(query.aoi).wkt if query.aoi is not None else None
        sentinelsat = _sentinelsat()
        try:
            found = self.api.query(area=area, date=when, limit=query.limit,
                                   order_by="beginposition", **keywords)  # fmt: skip
        except sentinelsat.UnauthorizedError:
            raise AuthenticationError(
                f"the DHuS hub {self.url} refused the user {self.credentials.username!r} "
                f"(credentials from {self.credentials.source}); check them"
            ) from None
        except sentinelsat.SentinelAPIError as error:
            raise CatalogError(f"the DHuS hub {self.url} failed the search: {error.msg}") from None
        except OSError as error:
            raise CatalogError(
                f"the DHuS hub {self.url} cannot be reached ({type(error).__name__}); check the "
                "URL and the network"
            ) from None
        return dhus_products_frame(self.api.to_geodataframe(found), self.spec)

    # -- download ------------------------------------------------------------------------
    def _fetch(self, wanted: list[Wanted], request: DownloadRequest, result: DownloadResult):
        """Download with sentinelsat's ``download_all`` (see the class notes)."""
        sentinelsat = _sentinelsat()
        target, bands, timeout = request.directory, request.bands, request.timeout
        todo: dict[str, str] = {}  # uuid -> product id
        for item in wanted:
            uuid = item.row.get("uuid")
            if not isinstance(uuid, str) or not uuid:
                pid = item.product_id
                result.failed[pid] = f"{pid}: no DHuS uuid in the products table; search again"
                continue
            todo[uuid] = item.product_id
        if not todo:
            return
        self.api.show_progressbars = request.progress
        offline: dict[str, str] = {}
        if not request.wait:
            for uuid, pid in list(todo.items()):
                try:
                    online = self.api.is_online(uuid)
                except sentinelsat.SentinelAPIError as error:
                    result.failed[pid] = f"{pid}: {error.msg}"
                    del todo[uuid]
                    continue
                if not online:
                    offline[uuid] = todo.pop(uuid)
        for uuid, pid in offline.items():
            try:
                self.api.trigger_offline_retrieval(uuid)
                result.pending[pid] = (
                    "offline (long-term archive): retrieval triggered; run the same download "
                    "again later, or pass wait=True to wait for it"
                )
            except sentinelsat.SentinelAPIError as error:
                result.pending[pid] = f"offline; triggering its retrieval failed: {error.msg}"
        if not todo:
            return
        self.api.lta_timeout = timeout
        self.api.lta_retry_delay = request.poll_interval
        refused: list[str] = []
        nodes = node_filter(bands, refused) if bands is not None else None
        outcome = self.api.download_all(
            list(todo), str(target), max_attempts=self.retry.attempts, checksum=request.checksum,
            n_concurrent_dl=request.max_workers, lta_retry_delay=request.poll_interval,
            nodefilter=nodes,
        )  # fmt: skip
        for uuid, info in outcome.downloaded.items():
            pid = todo[uuid]
            path = target / f"{info['title']}.SAFE" if bands is not None else Path(info["path"])
            problem = _check_partial(path, bands, pid) if bands is not None else None
            if problem:
                note = f" (refused node paths: {refused})" if refused else ""
                result.failed[pid] = problem + note
            else:
                result.downloaded[pid] = path
        for uuid, _info in outcome.retrieval_triggered.items():
            result.pending[todo[uuid]] = (
                f"offline (long-term archive): retrieval triggered, not online after {timeout:g} s"
            )
        for uuid, info in outcome.failed.items():
            cause = info.get("exception")
            message = getattr(cause, "msg", None) or (str(cause) if cause else "unknown error")
            if isinstance(cause, sentinelsat.LTAError):
                result.pending[todo[uuid]] = f"offline (long-term archive): {message}"
            else:
                result.failed[todo[uuid]] = f"{todo[uuid]}: {type(cause).__name__}: {message}"


def _units(values: Iterable[Any]) -> set[str]:
    units = set()
    for item in values:
        text = str(item).upper().replace("SENTINEL-", "S").replace(" ", "")
        if text in ("S2", "SENTINEL2"):
            return set()
        units.add(f"Sentinel-2{text[2:]}")
    return units


def _check_partial(path: Path, bands: Sequence[str], pid: str) -> str | None:
    """Why a node-filtered download is not a usable partial product, or None."""
    try:
        entries = select_entries(parse_manifest((path / MANIFEST).read_bytes()), bands, pid)
    except (OSError, MetadataError) as error:
        return f"{pid}: the downloaded manifest.safe is unreadable ({error})"
    except CatalogError as error:
        return str(error)
    if not safe_is_complete(path, entries):
        missing = [e.href for e in entries if not (path / e.href).is_file()]
        return f"{pid}: files missing after the download: {', '.join(missing[:5])}"
    return None
