"""The Copernicus Data Space Ecosystem (CDSE) catalogue: OData search, token login, downloads.

A thin class over pure functions: :mod:`._cdse_query` builds the ``$filter`` and
parses the answers, :mod:`._cdse_auth` manages tokens, :mod:`._download` moves
the bytes, :mod:`._safe_parts` lays out partial products.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import geopandas as gpd
import pandas as pd
import requests

from ..exceptions import CatalogError, SentinelCubeWarning
from ..safe._product_mtd import parse_product_metadata
from ..safe._xml import MetadataError
from ..schema import normalize_products
from ._base import Catalog, DownloadRequest, Wanted, product_name, text_or_none
from ._batch import Batch, ProductBar
from ._cdse_auth import TokenManager
from ._cdse_query import odata_filter, parse_products, percentage_columns, search_params
from ._credentials import resolve_credentials
from ._download import FileDownloader, RemoteFile, describe
from ._errors import AuthenticationError
from ._http import BearerAuth, RetryPolicy, api_session, download_session, redact_url, same_site
from ._query import SearchQuery
from ._result import DownloadResult
from ._safe_parts import fetch_safe, node_path

__all__ = ["CDSECatalog"]

CATALOGUE_URL = "https://catalogue.dataspace.copernicus.eu/odata/v1"
DOWNLOAD_URL = "https://download.dataspace.copernicus.eu/odata/v1"
TOKEN_URL = (
    "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"
)
_UUID = re.compile(r"^[0-9A-Za-z-]{8,64}$")


class CDSECatalog(Catalog):
    """Search and download Sentinel-2 products from the Copernicus Data Space Ecosystem.

    Searching needs no account; downloads and ``search(enrich=True)`` log in to
    the CDSE identity service with the account's user name and password (or use
    an access ``token``).

    Parameters
    ----------
    username, password : str, optional
        The CDSE account. Default: ``CDSE_USERNAME``/``CDSE_PASSWORD``, then the
        ``identity.dataspace.copernicus.eu`` entry of ``~/.netrc``.
    token : str, optional
        An access token obtained elsewhere (used until it expires).
    catalogue_url, download_url, token_url : str, optional
        Service endpoints; default ``CDSE_CATALOGUE_URL``, ``CDSE_DOWNLOAD_URL``,
        ``CDSE_TOKEN_URL`` if set, else the public CDSE ones.
    max_connections : int
        Concurrent download connections (CDSE allows 4 per account).
    page_size : int
        Products per search page (``$top``, at most 1000).
    retry : RetryPolicy, optional
        Attempts, backoff and time bounds for requests and files.

    Examples
    --------
    >>> import sentinel_cube as sc
    >>> cat = sc.CDSECatalog()           # credentials from the environment  # doctest: +SKIP
    >>> products = cat.search("budapest.geojson", date=("2023-06-01", "2023-08-31"),
    ...                       producttype="S2MSI2A", cloudcoverpercentage=(0, 30),
    ...                       enrich=True)           # doctest: +SKIP
    >>> result = cat.download(products, "archive/", bands=["B02", "B03", "B04", "SCL"])
    ... # doctest: +SKIP
    >>> result.downloaded, result.pending, result.failed  # doctest: +SKIP
    """

    spec = "cdse"

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        *,
        catalogue_url: str | None = None,
        download_url: str | None = None,
        token_url: str | None = None,
        max_connections: int = 4,
        page_size: int = 100,
        retry: RetryPolicy | None = None,
        trusted_suffixes: tuple[str, ...] = (".dataspace.copernicus.eu",),
    ) -> None:
        catalogue_url = catalogue_url or os.environ.get("CDSE_CATALOGUE_URL") or CATALOGUE_URL
        download_url = download_url or os.environ.get("CDSE_DOWNLOAD_URL") or DOWNLOAD_URL
        token_url = token_url or os.environ.get("CDSE_TOKEN_URL") or TOKEN_URL
        self.catalogue_url = catalogue_url.rstrip("/")
        self.download_url = download_url.rstrip("/")
        self.max_connections = max(1, int(max_connections))
        self.page_size = max(1, min(int(page_size), 1000))
        self.retry = retry or RetryPolicy()
        hosts = tuple(dict.fromkeys(
            h for h in ("identity.dataspace.copernicus.eu", urlsplit(token_url).hostname) if h
        ))  # fmt: skip
        self.credentials = resolve_credentials(
            username, password, env_prefix="CDSE", hosts=hosts,
            service="Copernicus Data Space", required=False,
        )  # fmt: skip
        self._api = api_session(self.retry)
        self._tokens = TokenManager(self._api, token_url, self.credentials, token)
        self._downloader = FileDownloader(
            download_session(max(16, self.max_connections)),
            policy=self.retry,
            auth=BearerAuth(self._access_token),
            refresh_auth=self._tokens.invalidate,
            trusted_suffixes=trusted_suffixes,
            max_connections=self.max_connections,
        )

    def __repr__(self) -> str:
        user = self.credentials.username if self.credentials else None
        return f"CDSECatalog(user={user!r}, catalogue_url={self.catalogue_url!r})"

    # -- search --------------------------------------------------------------------------
    def search(self, *args: Any, enrich: bool = False, **kwargs: Any) -> gpd.GeoDataFrame:
        """Products matching every criterion; the arguments of :meth:`Catalog.search`.

        The AOI goes to the server as its convex hull and is then applied
        exactly. ``enrich=True`` fetches each product's ``MTD_MSIL2A.xml`` (a few
        hundred kB, in parallel; needs an account) to fill the vegetation, water,
        snow and other percentages the CDSE catalogue does not have.

        Every product also sits on CDSE's S3 (bucket ``eodata``); its ``s3path``
        column holds that ``s3://eodata/Sentinel-2/.../NAME.SAFE`` URL, so
        :func:`~sentinel_cube.open_cube` reads the search result in place, with no
        download, when S3 keys are configured (``CDSE_S3_ACCESS_KEY`` and
        ``CDSE_S3_SECRET_KEY``, from the CDSE S3 keys manager; endpoint
        ``eodata.dataspace.copernicus.eu`` or ``CDSE_S3_ENDPOINT``). Without them
        ``open_cube`` says to download the products or set the keys.

        Returns
        -------
        geopandas.GeoDataFrame
            The products table plus ``uuid`` (CDSE product id), ``blake3``,
            ``catalog`` and ``s3path`` columns; ``checksum`` is the product zip's MD5.

        Examples
        --------
        >>> import sentinel_cube as sc
        >>> products = sc.CDSECatalog().search("budapest.geojson", date="2023-08-10",
        ...                                    producttype="S2MSI2A")  # doctest: +SKIP
        >>> products["s3path"].iloc[0]  # doctest: +SKIP
        's3://eodata/Sentinel-2/MSI/L2A/2023/08/10/S2B_MSIL2A_20230810T...SAFE'
        >>> cube = sc.open_cube(products, bands=["B04", "B08"])  # CDSE_S3_* set  # doctest: +SKIP
        """
        frame = super().search(*args, **kwargs)
        return self.enrich(frame) if enrich and len(frame) else frame

    def _search(self, query: SearchQuery) -> gpd.GeoDataFrame:
        pages = self._pages(odata_filter(query), query.limit)
        return parse_products(list(pages), catalog=self.spec)

    def _pages(self, filter_: str, limit: int | None) -> Iterator[dict[str, Any]]:
        top = min(self.page_size, int(limit)) if limit else self.page_size
        url: str | None = f"{self.catalogue_url}/Products"
        params: dict[str, str] | None = search_params(filter_, top=max(top, 1))
        count = 0
        while url:
            page = self._get_json(url, params)
            for value in page.get("value") or []:
                yield value
                count += 1
                if limit is not None and count >= limit:
                    return
            url, params = page.get("@odata.nextLink"), None
            if url and not same_site(self.catalogue_url, url):
                raise CatalogError(
                    f"the CDSE catalogue sent a next-page link to another site "
                    f"({redact_url(url)}); refusing to follow it"
                )

    def _get_json(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            response = self._api.get(url, params=params, timeout=self.retry.timeout)
        except requests.RequestException as error:
            raise CatalogError(
                f"the CDSE catalogue {redact_url(url)} cannot be reached ({describe(error)}); "
                "check the network connection and try again"
            ) from None
        if response.status_code != 200:
            raise CatalogError(
                f"the CDSE catalogue answered HTTP {response.status_code} to "
                f"{redact_url(url)}: {_detail(response)}; check the search arguments"
                + (" or try again later" if response.status_code >= 500 else "")
            )
        try:
            payload = response.json()
        except ValueError:
            raise CatalogError(
                f"the CDSE catalogue sent something that is not JSON from {redact_url(url)}"
            ) from None
        if not isinstance(payload, dict):
            raise CatalogError(f"unexpected answer from {redact_url(url)}: not a JSON object")
        return payload

    # -- enrichment ----------------------------------------------------------------------
    def enrich(self, products: gpd.GeoDataFrame, max_workers: int | None = None):
        """Fill image-content percentages from each product's ``MTD_MSIL*.xml`` node.

        Offline products and products whose metadata cannot be read keep empty
        values and produce one :class:`~sentinel_cube.SentinelCubeWarning` each; a
        refused login raises :class:`AuthenticationError`.
        """
        frame = products.copy()
        rows = [(pid, row) for pid, row in frame.iterrows()]

        def one(item: tuple[Any, pd.Series]) -> tuple[str, dict[str, float] | str]:
            pid, row = item
            if _offline(row):
                return str(pid), "offline (long-term archive); order it or download it first"
            name = product_name(row, pid)
            level = "L1C" if "MSIL1C" in name else "L2A"
            url = self._node_url(self._uuid(row, name), name, f"MTD_MSI{level}.xml")
            try:
                data = self._downloader.fetch_bytes(url)
                meta = parse_product_metadata(data, f"{name}.SAFE/MTD_MSI{level}.xml")
            except AuthenticationError:
                raise  # concerns every product: stop here
            except (CatalogError, MetadataError) as error:
                return str(pid), str(error)
            return str(pid), percentage_columns(meta.percentages)

        workers = max_workers or self.max_connections
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mtd") as pool:
            outcomes = list(pool.map(one, rows))
        for pid, outcome in outcomes:
            if isinstance(outcome, str):
                warnings.warn(f"{pid}: not enriched ({outcome})", SentinelCubeWarning, stacklevel=2)
                continue
            for column, value in outcome.items():
                if column not in frame.columns:
                    frame[column] = pd.Series(float("nan"), index=frame.index, dtype="float64")
                frame.loc[pid, column] = value
        return normalize_products(frame)

    # -- offline products ----------------------------------------------------------------
    def is_online(self, uuid: str) -> bool:
        """Whether the product with CDSE id ``uuid`` is online (downloadable now)."""
        product = self._get_json(f"{self.catalogue_url}/Products({_quote_id(uuid)})")
        return bool(product.get("Online", True))

    def order(self, uuid: str) -> dict[str, Any]:
        """Order the retrieval of an offline product (``OData.CSC.Order``); needs an account."""
        url = f"{self.catalogue_url}/Products({_quote_id(uuid)})/OData.CSC.Order"
        for attempt in range(2):
            try:
                response = self._api.post(
                    url, auth=BearerAuth(self._access_token), json={},
                    timeout=self.retry.timeout,
                )  # fmt: skip
            except requests.RequestException as error:
                raise CatalogError(
                    f"ordering {uuid} failed: {redact_url(url)} cannot be reached "
                    f"({describe(error)})"
                ) from None
            if response.status_code in (401, 403) and attempt == 0:
                self._tokens.invalidate()
                continue
            if response.status_code >= 300:
                raise CatalogError(
                    f"ordering {uuid} failed: HTTP {response.status_code} {_detail(response)}"
                )
            try:
                payload = response.json()
            except ValueError:
                payload = {}
            return payload.get("value", payload) if isinstance(payload, dict) else {}
        raise CatalogError(f"ordering {uuid} failed: the credentials were refused")

    # -- download ------------------------------------------------------------------------
    def _fetch(self, wanted: list[Wanted], request: DownloadRequest, result: DownloadResult):
        """Download in a :class:`Batch`; order offline products and wait for them if asked."""
        workers = request.max_workers or self.max_connections
        batch = Batch(len(wanted), workers, request.progress, "CDSE products", result=result)
        offline: dict[str, Any] = {}
        jobs: dict[str, Any] = {}
        with batch:
            for item in wanted:
                pid, name, row = item.product_id, item.name, item.row
                try:
                    uuid = self._uuid(row, name)
                except CatalogError as error:
                    batch.fail(pid, str(error))
                    continue
                jobs[pid] = self._job(row, name, uuid, request)
                if _offline(row):
                    offline[pid] = uuid
                else:
                    batch.submit(pid, jobs[pid])
            notes: dict[str, str] = {}
            for pid, uuid in offline.items():
                try:
                    self.order(uuid)
                except CatalogError as error:
                    notes[pid] = f" (ordering failed: {error})"
            if offline and request.wait:
                still = batch.wait_offline(
                    {pid: partial(self.is_online, uuid) for pid, uuid in offline.items()},
                    lambda pid: batch.submit(pid, jobs[pid]),
                    timeout=request.timeout, poll_interval=request.poll_interval,
                )  # fmt: skip
            else:
                still = {
                    pid: "offline (long-term archive): retrieval ordered; run the same "
                    "download again later, or pass wait=True to wait for it"
                    for pid in offline
                }
            for pid, reason in still.items():
                batch.pend(pid, reason + notes.get(pid, ""))

    def _job(self, row: pd.Series, name: str, uuid: str, request: DownloadRequest):
        target, bands, checksum = request.directory, request.bands, request.checksum

        def run(bar: ProductBar) -> tuple[Path, bool]:
            if bands is None:
                size = _int(row.get("size"))
                pairs = (("MD5", row.get("checksum")), ("BLAKE3", row.get("blake3")))
                sums = {k: v for k, v in pairs if text_or_none(v)}
                bar.set_total(size)
                remote = RemoteFile(
                    f"{self.download_url}/Products({_quote_id(uuid)})/$value", f"{name}.zip",
                    size, sums,
                )  # fmt: skip
                outcome = self._downloader.fetch(
                    remote, target, verify=checksum, progress=bar.update
                )
                return outcome.path, not outcome.skipped
            return fetch_safe(
                name, target, bands, node_url=lambda href: self._node_url(uuid, name, href),
                downloader=self._downloader, verify=checksum, progress=bar,
            )  # fmt: skip

        return run

    # -- helpers -------------------------------------------------------------------------
    def _access_token(self) -> str:
        return self._tokens.access_token()

    def _node_url(self, uuid: str, name: str, href: str) -> str:
        parts = [f"{name}.SAFE", *node_path(href)]
        nodes = "/".join(f"Nodes({quote(p, safe='')})" for p in parts)
        return f"{self.download_url}/Products({_quote_id(uuid)})/{nodes}/$value"

    def _uuid(self, row: pd.Series, name: str) -> str:
        uuid = text_or_none(row.get("uuid"))
        if uuid:
            return uuid
        filter_ = f"Name eq '{name}.SAFE'"
        page = self._get_json(f"{self.catalogue_url}/Products", {"$filter": filter_, "$top": "1"})
        values = page.get("value") or []
        if not values:
            raise CatalogError(f"{name}: not found in the CDSE catalogue; check the product name")
        return str(values[0]["Id"])


def _offline(row: pd.Series) -> bool:
    """True only when the table says ``online`` is false (missing means unknown)."""
    value = row.get("online")
    if text_or_none(value) is None:
        return False
    return str(value).strip().lower() in ("false", "0", "0.0")


def _quote_id(uuid: str) -> str:
    if not _UUID.match(uuid):
        raise CatalogError(f"{uuid!r} is not a CDSE product id (a UUID)")
    return uuid


def _int(value: Any) -> int | None:
    text = text_or_none(value)
    try:
        return int(float(text)) if text is not None else None
    except ValueError:
        return None


def _detail(response: requests.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return " ".join(response.text.split())[:200] or response.reason
    if isinstance(payload, dict):
        detail = payload.get("detail") or payload.get("error") or payload.get("message")
        if isinstance(detail, dict):
            detail = detail.get("message") or detail
        return str(detail or payload)[:300]
    return str(payload)[:300]
