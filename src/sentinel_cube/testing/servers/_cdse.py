"""A loopback Copernicus Data Space server: OData catalogue, identity service, downloads.

Speaks the subset of the CDSE APIs that :class:`sentinel_cube.CDSECatalog` uses,
with JSON shaped like the real answers (same keys, nesting and value formats as
``cdse-odata/*.json`` of the reference data):

* ``POST /auth/realms/CDSE/protocol/openid-connect/token`` - password and
  refresh-token grants, Keycloak-style answers and errors.
* ``GET /odata/v1/Products?$filter=...&$orderby=...&$top=...&$skip=...&$expand=Attributes``
  - filters evaluated (:mod:`._odata`), paging through ``@odata.nextLink``.
* ``GET /odata/v1/Products(<Id>)`` and ``POST /odata/v1/Products(<Id>)/OData.CSC.Order``.
* ``GET /download/odata/v1/Products(<Id>)/$value`` and
  ``.../Products(<Id>)/Nodes(<Name>.SAFE)/Nodes(...)/$value`` with a Bearer token,
  ``Range`` and the :class:`~._loopback.Faults`; optionally redirected (302) to a
  ``/zipper/`` path as the real service does.

Examples
--------
>>> with CDSEServer(zips) as server:                                  # doctest: +SKIP
...     cat = CDSECatalog("user@example.org", "secret", **server.catalog_kwargs)
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid as uuid_module
from datetime import timedelta
from typing import Any, TypedDict
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from shapely.geometry import mapping

from ._loopback import LoopbackServer, ServedProduct, iso_z, send_file, send_json
from ._odata import ODataFilterError, parse_filter

__all__ = ["CDSEServer"]

TOKEN_PATH = "/auth/realms/CDSE/protocol/openid-connect/token"
_LEVEL_FOLDER = {"L1C": "L1C", "L2A": "L2A"}


class CDSEEndpoints(TypedDict):
    """The URLs :class:`~sentinel_cube.CDSECatalog` takes as keyword arguments."""

    catalogue_url: str
    download_url: str
    token_url: str


class CDSEServer(LoopbackServer):
    """Loopback CDSE: catalogue, identity service and download service.

    Parameters
    ----------
    zips : iterable of path
        Zipped products (``make_archive(..., zipped=True)``).
    faults : Faults, optional
        File-download faults.
    users : dict, optional
        ``{username: password}``; default ``{"user@example.org": "secret"}``.
    access_lifetime, refresh_lifetime : float
        Token lifetimes in seconds (``expires_in``, ``refresh_expires_in``).
    redirect_downloads : bool
        Answer downloads with a 302 to ``/zipper/...`` on the same host.
    s3_prefix : str, optional
        Where the same products sit on an S3 store, as ``NAME.SAFE`` folders:
        ``s3://bucket/prefix`` or ``/bucket/prefix``; each product's ``S3Path`` is
        then ``/bucket/prefix/NAME.SAFE``. Default: CDSE's own layout,
        ``/eodata/Sentinel-2/MSI/<level>_N0500/<yyyy>/<mm>/<dd>/NAME.SAFE``.

    Attributes
    ----------
    grants : list of str
        Grant types requested, in order (``"password"``, ``"refresh_token"``).
    orders : list of str
        Product ids ordered.
    expire_access_after : int or None
        After this many authorized file requests, every access token expires
        (once): the next request gets 401.
    """

    def __init__(
        self,
        zips=(),
        *,
        faults=None,
        users: dict[str, str] | None = None,
        access_lifetime: float = 600.0,
        refresh_lifetime: float = 3600.0,
        redirect_downloads: bool = False,
        s3_prefix: str | None = None,
    ) -> None:
        super().__init__(zips, faults=faults)
        self.s3_prefix = s3_prefix
        self.users = users or {"user@example.org": "secret"}
        self.access_lifetime = access_lifetime
        self.refresh_lifetime = refresh_lifetime
        self.redirect_downloads = redirect_downloads
        self.grants: list[str] = []
        self.orders: list[str] = []
        self.expire_access_after: int | None = None
        self._file_requests = 0
        self._access: dict[str, float] = {}
        self._refresh: dict[str, float] = {}
        self._auth_lock = threading.Lock()

    @property
    def catalog_kwargs(self) -> CDSEEndpoints:
        """Keyword arguments pointing :class:`~sentinel_cube.CDSECatalog` at this server."""
        return {
            "catalogue_url": f"{self.url}/odata/v1",
            "download_url": f"{self.url}/download/odata/v1",
            "token_url": f"{self.url}{TOKEN_PATH}",
        }

    # -- token control -------------------------------------------------------------------
    def expire_access_tokens(self) -> None:
        """Make every access token issued so far invalid (as if they had expired)."""
        with self._auth_lock:
            self._access.clear()

    def expire_refresh_tokens(self) -> None:
        """Make every refresh token issued so far invalid."""
        with self._auth_lock:
            self._refresh.clear()

    def _issue(self) -> dict[str, Any]:
        now = time.monotonic()
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self._access[access] = now + self.access_lifetime
        self._refresh[refresh] = now + self.refresh_lifetime
        return {
            "access_token": access,
            "expires_in": int(self.access_lifetime),
            "refresh_expires_in": int(self.refresh_lifetime),
            "refresh_token": refresh,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "session_state": str(uuid_module.uuid4()),
            "scope": "AUDIENCE_PUBLIC openid email profile ondemand_processing user-context",
        }

    def _token(self, handler: Any) -> None:
        form = dict(parse_qsl(handler.body().decode()))
        grant = form.get("grant_type", "")
        with self._auth_lock:
            self.grants.append(grant)
            if form.get("client_id") != "cdse-public":
                status, error, text = 401, "invalid_client", "Invalid client credentials"
            elif grant == "password":
                if self.users.get(form.get("username", "")) == form.get("password"):
                    send_json(handler, 200, self._issue())
                    return
                status, error, text = 401, "invalid_grant", "Invalid user credentials"
            elif grant == "refresh_token":
                until = self._refresh.get(form.get("refresh_token", ""))
                if until is not None and time.monotonic() < until:
                    send_json(handler, 200, self._issue())
                    return
                status, error, text = 400, "invalid_grant", "Token is not active"
            else:
                status, error, text = 400, "unsupported_grant_type", "Unsupported grant_type"
        send_json(handler, status, {"error": error, "error_description": text})

    def _authorized(self, handler: Any) -> bool:
        header = handler.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        with self._auth_lock:
            until = self._access.get(token)
            return until is not None and time.monotonic() < until

    # -- routing -------------------------------------------------------------------------
    def handle(self, handler: Any, method: str) -> None:
        parts = urlsplit(handler.path)
        path = unquote(parts.path)
        if path == TOKEN_PATH and method == "POST":
            self._token(handler)
        elif path.startswith(("/download/odata/v1/Products(", "/zipper/odata/v1/Products(")):
            self._download(handler, path, method)
        elif path == "/odata/v1/Products" and method == "GET":
            self._search(handler, parts.query)
        elif path.startswith("/odata/v1/Products(") and path.endswith("/OData.CSC.Order"):
            self._order(handler, path)
        elif path.startswith("/odata/v1/Products(") and path.endswith(")") and method == "GET":
            product = self.by_uuid(path[len("/odata/v1/Products(") : -1])
            if product is None:
                send_json(handler, 404, {"detail": "Product not found"})
                return
            product.poll()
            entity = product_json(product, (), self.url, s3_prefix=self.s3_prefix)
            body = {"@odata.context": "$metadata#Products/$entity", **entity}
            send_json(handler, 200, body)
        else:
            send_json(handler, 404, {"detail": f"Not found: {path}"})

    def _search(self, handler: Any, query: str) -> None:
        pairs = parse_qsl(query, keep_blank_values=True)
        params = dict(pairs)
        expand = [v for k, v in pairs if k == "$expand"]
        try:
            top = int(params.get("$top", 20))
            skip = int(params.get("$skip", 0))
            if not 0 <= top <= 1000:
                raise ValueError("$top must be within 0..1000")
            predicate = parse_filter(params["$filter"]) if params.get("$filter") else None
        except (ValueError, ODataFilterError) as error:
            send_json(handler, 400, {"detail": f"Invalid query: {error}"})
            return
        matches = [p for p in self.products.values() if predicate is None or predicate(record(p))]
        order = params.get("$orderby", "")
        if order.startswith("ContentDate/Start"):
            matches.sort(key=lambda p: (p.product.sensing_start, p.name),
                         reverse=order.endswith("desc"))  # fmt: skip
        page = matches[skip : skip + top]
        context = "$metadata#Products" + (
            "(" + ",".join(f"{e}()" for e in expand) + ")" if expand else ""
        )
        body: dict[str, Any] = {"@odata.context": context}
        if params.get("$count") == "true":
            body["@odata.count"] = len(matches)
        body["value"] = [product_json(p, expand, self.url, s3_prefix=self.s3_prefix) for p in page]
        if skip + top < len(matches):
            following = [(k, v) for k, v in pairs if k != "$skip"] + [("$skip", str(skip + top))]
            body["@odata.nextLink"] = f"{self.url}/odata/v1/Products?{urlencode(following)}"
        send_json(handler, 200, body)

    def _order(self, handler: Any, path: str) -> None:
        handler.body()
        if not self._authorized(handler):
            send_json(handler, 401, {"detail": "Unauthorized"})
            return
        uid = path[len("/odata/v1/Products(") : -len(")/OData.CSC.Order")]
        product = self.by_uuid(uid)
        if product is None:
            send_json(handler, 404, {"detail": "Product not found"})
            return
        product.ordered = True
        self.orders.append(uid)
        send_json(handler, 200, {
            "@odata.context": "$metadata#OData.CSC.Order",
            "value": {"Id": str(uuid_module.uuid4()), "Status": "queued",
                      "StatusMessage": "request is queued", "OrderSize": len(product.data),
                      "SubmissionDate": iso_z(product.product.sensing_start),
                      "EstimatedDate": None, "CompletedDate": None, "Priority": 1},
        })  # fmt: skip

    def _download(self, handler: Any, path: str, method: str) -> None:
        if not self._authorized(handler):
            send_json(handler, 401, {"detail": "Expired signature!"})
            return
        with self._auth_lock:
            self._file_requests += 1
            limit = self.expire_access_after
            if limit is not None and self._file_requests > limit:
                self.expire_access_after = None
                self._access.clear()
                expired = True
            else:
                expired = False
        if expired:
            send_json(handler, 401, {"detail": "Expired signature!"})
            return
        if self.redirect_downloads and path.startswith("/download/"):
            handler.send_response(302)
            handler.send_header("Location", f"{self.url}/zipper/{path[len('/download/') :]}")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        tail = path.split("/Products(", 1)[1]
        uid, _, rest = tail.partition(")")
        product = self.by_uuid(uid)
        if product is None:
            send_json(handler, 404, {"detail": "Product not found"})
            return
        if not product.online:
            send_json(handler, 409, {"detail": "Product is offline; order it first"})
            return
        if rest == "/$value":
            send_file(handler, self, product.data, f"{product.name}.SAFE.zip",
                      head=method == "HEAD")  # fmt: skip
            return
        nodes = [n[len("Nodes(") : -1] for n in rest.strip("/").split("/")[:-1]]
        if not nodes or nodes[0] != f"{product.name}.SAFE" or not rest.endswith("/$value"):
            send_json(handler, 404, {"detail": "Node not found"})
            return
        member = product.members.get("/".join(nodes[1:]))
        if member is None:
            send_json(handler, 404, {"detail": "Node not found"})
            return
        send_file(handler, self, member, nodes[-1], head=method == "HEAD")


def record(product: ServedProduct) -> dict[str, Any]:
    """The fields the OData filter evaluator sees for a product."""
    meta = product.product
    return {
        "Name": f"{product.name}.SAFE",
        "Online": product.online,
        "Collection/Name": "SENTINEL-2",
        "ContentDate/Start": meta.sensing_start,
        "ContentDate/End": meta.sensing_start,
        "geometry": meta.footprint,
        "attributes": [
            (n, t, float(v) if t in ("Double", "Integer") else v) for n, t, v in attributes(product)
        ],  # fmt: skip
    }


def attributes(product: ServedProduct) -> list[tuple[str, str, Any]]:
    """``(Name, ValueType, Value)`` of the Sentinel-2 attributes, in CDSE's order."""
    meta = product.product
    level = meta.processing_level
    baseline = meta.processing_baseline
    generation = meta.generation_time or meta.sensing_start
    start = iso_z(meta.sensing_start)
    stamp = f"{meta.sensing_start:%Y%m%dT%H%M%S}"
    centre = "2APS" if level == "L2A" else "2BPS"
    datastrip = (f"{meta.platform}_OPER_MSI_{level}_DS_{centre}_{generation:%Y%m%dT%H%M%S}_"
                 f"S{stamp}_N{baseline}")  # fmt: skip
    ptype = meta.producttype
    return [
        ("origin", "String", "ESA"),
        ("tileId", "String", meta.tile_id),
        ("cloudCover", "Double", meta.cloud_cover),
        ("datastripId", "String", datastrip),
        ("orbitNumber", "Integer", product.absolute_orbit),
        ("processingDate", "DateTimeOffset", iso_z(generation)),
        ("productGroupId", "String",
         f"G{meta.platform}_{stamp}_{product.absolute_orbit:06d}_N{baseline}"),
        ("operationalMode", "String", "INS-NOBS"),
        ("processingLevel", "String", ptype),
        ("processorVersion", "String", baseline),
        ("platformShortName", "String", "SENTINEL-2"),
        ("instrumentShortName", "String", "MSI"),
        ("relativeOrbitNumber", "Integer", meta.relative_orbit),
        ("platformSerialIdentifier", "String", meta.platform[-1]),
        ("productType", "String", ptype),
        ("beginningDateTime", "DateTimeOffset", start),
        ("endingDateTime", "DateTimeOffset", start),
    ]  # fmt: skip


def s3_path(product: ServedProduct, s3_prefix: str | None = None) -> str:
    """The ``S3Path`` of a product: under ``s3_prefix``, else where CDSE keeps it.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> s3_path(SimpleNamespace(name="NAME"), "s3://eodata/tests/")
    '/eodata/tests/NAME.SAFE'
    """
    if s3_prefix is not None:
        prefix = s3_prefix.removeprefix("s3://").strip("/")
        return f"/{prefix}/{product.name}.SAFE"
    meta = product.product
    folder = f"{_LEVEL_FOLDER.get(meta.processing_level, meta.processing_level)}_N0500"
    return f"/eodata/Sentinel-2/MSI/{folder}/{meta.sensing_start:%Y/%m/%d}/{product.name}.SAFE"


def product_json(
    product: ServedProduct,
    expand: list[str] | tuple[str, ...] = (),
    base: str = "",
    *,
    s3_prefix: str | None = None,
) -> dict[str, Any]:
    """A product as the CDSE OData catalogue writes it (keys in the same order).

    ``S3Path`` is :func:`s3_path` with ``s3_prefix``.
    """
    meta = product.product
    generation = meta.generation_time or meta.sensing_start
    s3 = s3_path(product, s3_prefix)
    geometry = mapping(meta.footprint)
    body: dict[str, Any] = {
        "@odata.mediaContentType": "application/octet-stream",
        "Id": product.uuid,
        "Name": f"{product.name}.SAFE",
        "ContentType": "application/octet-stream",
        "ContentLength": len(product.data),
        "OriginDate": iso_z(generation + timedelta(hours=1)),
        "PublicationDate": iso_z(generation + timedelta(hours=2)),
        "ModificationDate": iso_z(generation + timedelta(hours=2)),
        "Online": product.online,
        "EvictionDate": "9999-12-31T23:59:59.999999Z",
        "S3Path": s3,
        "Checksum": [
            {
                "Value": product.md5,
                "Algorithm": "MD5",
                "ChecksumDate": iso_z(generation + timedelta(hours=2)),
            },
            {
                "Value": product.blake3,
                "Algorithm": "BLAKE3",
                "ChecksumDate": iso_z(generation + timedelta(hours=2)),
            },
        ],  # fmt: skip
        "ContentDate": {"Start": iso_z(meta.sensing_start), "End": iso_z(meta.sensing_start)},
        "Footprint": f"geography'SRID=4326;{meta.footprint.wkt}'",
        "GeoFootprint": _lists(geometry),
    }
    if "Attributes" in expand:
        body["Attributes"] = [
            {"@odata.type": f"#OData.CSC.{kind}Attribute", "Name": name, "Value": value,
             "ValueType": kind}
            for name, kind, value in attributes(product)
        ]  # fmt: skip
    if "Assets" in expand:
        asset = str(uuid_module.uuid5(uuid_module.NAMESPACE_URL, product.uuid + "/ql"))
        body["Assets"] = [{
            "Type": "QUICKLOOK",
            "Id": asset,
            "DownloadLink": f"{base}/odata/v1/Assets({asset})/$value",
            "S3Path": s3,
        }]  # fmt: skip
    return body


def _lists(value: Any) -> Any:
    """GeoJSON with lists instead of tuples (as parsed JSON has)."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    return value
