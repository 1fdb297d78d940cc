"""A loopback DHuS hub: OpenSearch JSON, OData product and node access, LTA behaviour.

Speaks what sentinelsat uses, shaped like the recorded SciHub exchanges
(``dhus-cassettes/*.yaml`` of the reference data):

* ``GET /dhus/search?format=json&rows=&start=&orderby=&q=...`` - a Solr-style
  query (``beginPosition:[".." TO ".."] platformname:"Sentinel-2"
  footprint:"Intersects(POLYGON((...)))" (tileid:"34TCT" OR tileid:"34TDT")``)
  evaluated against the served products; the Atom-like ``feed`` JSON.
* ``GET /dhus/odata/v1/Products('<uuid>')?$format=json`` (``{"d": {...}}``),
  ``.../Online/$value``, ``.../Attributes('Filename')/Value/$value``.
* ``GET|HEAD /dhus/odata/v1/Products('<uuid>')/$value`` with ``Range`` (206) and
  the faults; an offline product answers ``202 Accepted`` and is ordered.
* ``.../Nodes('<Name>.SAFE')/Nodes('manifest.safe')?$format=json`` and any
  ``.../Nodes(...)/$value`` file of the product.

Every request needs HTTP Basic authentication (401 with Tomcat's HTML otherwise).
"""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import shapely

from sentinel_cube.testing.servers._loopback import (
    LoopbackServer,
    ServedProduct,
    send_bytes,
    send_file,
    send_json,
)

__all__ = ["DHuSServer", "opensearch_entry", "parse_solr_query"]

_TERM = re.compile(
    r'\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<or>OR\b)|(?P<key>\w+):(?P<val>"[^"]*"|\[[^\]]*\]|[^\s()]+))'
)
_UNAUTHORIZED = (
    '<!doctype html><html lang="en"><head><title>HTTP Status 401 – Unauthorized</title></head>'
    '<body><h1>HTTP Status 401 – Unauthorized</h1><hr class="line" /><p><b>Type</b> Status '
    "Report</p><p><b>Message</b> Unauthorized</p><p><b>Description</b> The request has not been "
    "applied because it lacks valid authentication credentials for the target resource.</p>"
    '<hr class="line" /><h3>Apache Tomcat/8.5.42</h3></body></html>'
)


def _ms(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _odata_date(when: datetime) -> str:
    return f"/Date({int(when.timestamp() * 1000)})/"


def _gml(geometry: Any) -> str:
    ring = " ".join(f"{lat:g},{lon:g}" for lon, lat in geometry.exterior.coords)
    return (
        '<gml:Polygon srsName="http://www.opengis.net/gml/srs/epsg.xml#4326" '
        'xmlns:gml="http://www.opengis.net/gml">\n   <gml:outerBoundaryIs>\n      '
        f"<gml:LinearRing>\n         <gml:coordinates>{ring}</gml:coordinates>\n      "
        "</gml:LinearRing>\n   </gml:outerBoundaryIs>\n</gml:Polygon>"
    )


def _fields(product: ServedProduct) -> dict[str, Any]:
    """Lower-case OpenSearch field -> value, for query evaluation."""
    meta = product.product
    return {
        "beginposition": meta.sensing_start,
        "platformname": "Sentinel-2",
        "platformserialidentifier": f"Sentinel-2{meta.platform[-1]}",
        "producttype": meta.producttype,
        "tileid": meta.tile_id,
        "relativeorbitnumber": meta.relative_orbit,
        "cloudcoverpercentage": meta.cloud_cover,
        "identifier": product.name,
        "uuid": product.uuid,
        "footprint": meta.footprint,
    }


def _bound(text: str) -> Any:
    text = text.strip().strip('"')
    if text in ("*", "NOW"):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return float(text)


def _term(key: str, value: str):
    key = key.lower()
    if key == "footprint":
        wkt = re.search(r"\w+\((.*)\)", value.strip('"')).group(1)  # type: ignore[union-attr]
        area = shapely.from_wkt(wkt)
        return lambda f: f["footprint"].intersects(area)
    if value.startswith("["):
        low, high = (_bound(v) for v in value[1:-1].split(" TO "))

        def in_range(f: dict[str, Any]) -> bool:
            got = f.get(key)
            if got is None:
                return False
            if isinstance(got, int | float):
                got = float(got)
            return (low is None or got >= low) and (high is None or got <= high)

        return in_range
    wanted = value.strip('"').lower()
    return lambda f: str(f.get(key, "")).lower() == wanted


def parse_solr_query(query: str):
    """Compile sentinelsat's OpenSearch query text into a predicate over product fields.

    Examples
    --------
    >>> match = parse_solr_query('platformname:"Sentinel-2" (tileid:"34TCT" OR tileid:"34TDT")')
    >>> match({"platformname": "Sentinel-2", "tileid": "34TDT"})
    True
    """
    groups: list[list[Any]] = []
    current: list[Any] | None = None
    pos = 0
    while pos < len(query.strip()):
        match = _TERM.match(query, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"cannot parse the query at {query[pos : pos + 30]!r}")
        pos = match.end()
        if match.group("lp"):
            current = []
        elif match.group("rp"):
            groups.append(current or [])
            current = None
        elif match.group("or"):
            continue
        else:
            term = _term(match.group("key"), match.group("val"))
            if current is not None:
                current.append(term)
            else:
                groups.append([term])
        while pos < len(query) and query[pos].isspace():
            pos += 1
    return lambda fields: all(any(t(fields) for t in group) for group in groups)


def opensearch_entry(product: ServedProduct, api_url: str) -> dict[str, Any]:
    """A product as DHuS OpenSearch JSON writes it (Level-2A entry layout)."""
    meta = product.product
    odata = f"{api_url}odata/v1/Products('{product.uuid}')"
    size_mb = len(product.data) / 1024**2
    begin = _ms(meta.sensing_start)
    pct = {k.replace("_", ""): v for k, v in (meta.quality or {}).items()}
    doubles = {
        "cloudcoverpercentage": meta.cloud_cover,
        "highprobacloudspercentage": pct.get("highprobacloudspercentage"),
        "mediumprobacloudspercentage": pct.get("mediumprobacloudspercentage"),
        "notvegetatedpercentage": meta.not_vegetated,
        "snowicepercentage": meta.snow_ice,
        "unclassifiedpercentage": pct.get("unclassifiedpercentage"),
        "vegetationpercentage": meta.vegetation,
        "waterpercentage": meta.water,
    }
    generation = meta.generation_time or meta.sensing_start
    strings = {
        "filename": f"{product.name}.SAFE",
        "gmlfootprint": _gml(meta.footprint),
        "format": "SAFE",
        "identifier": product.name,
        "instrumentshortname": "MSI",
        "instrumentname": "Multi-Spectral Instrument",
        "footprint": meta.footprint.wkt.replace("POLYGON", "MULTIPOLYGON (", 1) + ")",
        "s2datatakeid": f"G{meta.platform}_{meta.sensing_start:%Y%m%dT%H%M%S}_"
        f"{product.absolute_orbit:06d}_N{meta.processing_baseline}",
        "platformidentifier": "2017-013A" if meta.platform == "S2B" else "2015-028A",
        "orbitdirection": meta.orbit_direction or "DESCENDING",
        "platformserialidentifier": f"Sentinel-2{meta.platform[-1]}",
        "processingbaseline": meta.processing_baseline,
        "processinglevel": "Level-2A" if meta.processing_level == "L2A" else "Level-1C",
        "producttype": meta.producttype,
        "platformname": "Sentinel-2",
        "size": f"{size_mb:.2f} MB",
        "tileid": meta.tile_id,
        "uuid": product.uuid,
    }
    return {
        "title": product.name,
        "link": [
            {"href": f"{odata}/$value"},
            {"rel": "alternative", "href": f"{odata}/"},
            {"rel": "icon", "href": f"{odata}/Products('Quicklook')/$value"},
        ],
        "id": product.uuid,
        "summary": f"Date: {begin}, Instrument: MSI, Satellite: Sentinel-2, Size: {size_mb:.2f} MB",
        "ondemand": "false" if product.online else "true",
        "date": [
            {"name": "ingestiondate", "content": _ms(generation)},
            {"name": "beginposition", "content": begin},
            {"name": "endposition", "content": begin},
        ],
        "int": [
            {"name": "orbitnumber", "content": str(product.absolute_orbit)},
            {"name": "relativeorbitnumber", "content": str(meta.relative_orbit)},
        ],
        "double": [
            {"name": k, "content": str(round(float(v), 6))}
            for k, v in doubles.items()
            if v is not None
        ],  # fmt: skip
        "str": [{"name": k, "content": v} for k, v in strings.items()],
    }


def odata_product(product: ServedProduct, api_url: str) -> dict[str, Any]:
    """``Products('<uuid>')?$format=json`` of DHuS (OData v2, ``{"d": {...}}``)."""
    meta = product.product
    odata = f"{api_url}odata/v1/Products('{product.uuid}')"
    generation = meta.generation_time or meta.sensing_start
    return {"d": {
        "__metadata": {"id": odata, "uri": odata, "type": "DHuS.Product",
                       "content_type": "application/octet-stream",
                       "media_src": f"{odata}/$value", "edit_media": f"{odata}/$value"},
        "Id": product.uuid,
        "Name": product.name,
        "ContentType": "application/octet-stream",
        "ContentLength": str(len(product.data)),
        "ChildrenNumber": "1",
        "Value": None,
        "CreationDate": _odata_date(generation),
        "IngestionDate": _odata_date(generation),
        "ModificationDate": _odata_date(generation),
        "EvictionDate": None,
        "Online": product.online,
        "OnDemand": not product.online,
        "ContentDate": {"__metadata": {"type": "DHuS.TimeRange"},
                        "Start": _odata_date(meta.sensing_start),
                        "End": _odata_date(meta.sensing_start)},
        "Checksum": {"__metadata": {"type": "DHuS.Checksum"}, "Algorithm": "MD5",
                     "Value": product.md5},
        "ContentGeometry": _gml(meta.footprint),
        **{k: {"__deferred": {"uri": f"{odata}/{k}"}}
           for k in ("Products", "Nodes", "Attributes", "Class")},
    }}  # fmt: skip


class DHuSServer(LoopbackServer):
    """Loopback DHuS hub serving a synthetic archive (see the module docstring).

    Parameters
    ----------
    zips : iterable of path
        Zipped products.
    faults : Faults, optional
        Faults for ``$value`` downloads.
    users : dict, optional
        ``{username: password}``; default ``{"user": "secret"}``.

    Attributes
    ----------
    api_url : str
        The URL to give :class:`~sentinel_cube.DHuSCatalog` (ends with ``/dhus/``).
    triggered : list of str
        uuids whose LTA retrieval was triggered (202 answers).
    """

    def __init__(self, zips=(), *, faults=None, users: dict[str, str] | None = None) -> None:
        super().__init__(zips, faults=faults)
        self.users = users or {"user": "secret"}
        self.triggered: list[str] = []

    @property
    def api_url(self) -> str:
        return f"{self.url}/dhus/"

    def _authorized(self, handler: Any) -> bool:
        header = handler.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return self.users.get(user) == password

    def handle(self, handler: Any, method: str) -> None:
        if not self._authorized(handler):
            send_bytes(
                handler,
                401,
                _UNAUTHORIZED.encode(),
                "text/html;charset=utf-8",
                {"WWW-Authenticate": 'Basic realm="Sentinels Scientific Data Hub Search"'},
            )
            return  # fmt: skip
        parts = urlsplit(handler.path)
        path = unquote(parts.path)
        if path == "/dhus/search":
            self._search(handler, dict(parse_qsl(parts.query, keep_blank_values=True)))
            return
        match = re.match(r"/dhus/odata/v1/Products\('([^']+)'\)(.*)$", path)
        product = self.by_uuid(match.group(1)) if match else None
        if product is None:
            send_json(handler, 404, {"error": {"code": None, "message": {
                "lang": "en", "value": f"Invalid key ({match.group(1) if match else path}) "
                                       "to access Products"}}})  # fmt: skip
            return
        rest = match.group(2) if match else ""
        head = method == "HEAD"
        if rest == "" and parts.query.startswith("$format=json"):
            send_json(handler, 200, odata_product(product, self.api_url))
        elif rest == "/Online/$value":
            text = "true" if product.poll() else "false"
            send_bytes(handler, 200, text.encode(), "text/plain;charset=utf-8")
        elif rest == "/Attributes('Filename')/Value/$value":
            send_bytes(handler, 200, f"{product.name}.SAFE".encode(), "text/plain;charset=utf-8")
        elif rest == "/$value":
            if not product.online:
                product.ordered = True
                self.triggered.append(product.uuid)
                send_bytes(handler, 202, b"", "text/plain", head=head)
                return
            send_file(handler, self, product.data, f"{product.name}.zip", head=head,
                      extra_headers={"ETag": product.md5})  # fmt: skip
        elif rest.startswith("/Nodes("):
            self._node(handler, product, rest, parts.query, head)
        else:
            send_json(handler, 404, {"error": {"code": None, "message": {
                "lang": "en", "value": f"Unknown resource {rest}"}}})  # fmt: skip

    def _node(self, handler: Any, product: ServedProduct, rest: str, query: str,
              head: bool) -> None:  # fmt: skip
        names = re.findall(r"Nodes\('([^']*)'\)", rest)
        if not names or names[0] != f"{product.name}.SAFE":
            send_json(handler, 404, {"error": {"code": None, "message": {
                "lang": "en", "value": "Node not found"}}})  # fmt: skip
            return
        member_path = "/".join(names[1:])
        data = product.members.get(member_path)
        if data is None:
            send_json(handler, 404, {"error": {"code": None, "message": {
                "lang": "en", "value": f"Node {member_path} not found"}}})  # fmt: skip
            return
        if rest.endswith("/$value"):
            send_file(handler, self, data, names[-1], head=head,
                      extra_headers={"ETag": f"{names[-1]}-{len(data)}"})  # fmt: skip
            return
        odata = f"{self.api_url}odata/v1/Products('{product.uuid}')" + rest
        send_json(handler, 200, {"d": {
            "__metadata": {"id": odata, "uri": odata, "type": "DHuS.Node",
                           "content_type": "application/octet-stream",
                           "media_src": f"{odata}/$value", "edit_media": f"{odata}/$value"},
            "Id": names[-1], "Name": names[-1],
            "ContentType": "SAFE Manifest" if names[-1] == "manifest.safe" else "Item",
            "ContentLength": str(len(data)), "ChildrenNumber": "0", "Value": None,
            **{k: {"__deferred": {"uri": f"{odata}/{k}"}}
               for k in ("Nodes", "Attributes", "Class")},
        }})  # fmt: skip

    def _search(self, handler: Any, params: dict[str, str]) -> None:
        query = params.get("q", "")
        try:
            predicate = parse_solr_query(query)
        except (ValueError, AttributeError) as error:
            send_json(handler, 200, {"feed": {"error": {"message": f"SyntaxError: {error}"}}})
            return
        rows, start = int(params.get("rows", 10)), int(params.get("start", 0))
        matches = [p for p in self.products.values() if predicate(_fields(p))]
        matches.sort(key=lambda p: (p.product.sensing_start, p.name))
        page = [opensearch_entry(p, self.api_url) for p in matches[start : start + rows]]
        base = f"{self.api_url}search?q={query}"
        last = max(len(matches) - 1, 0)
        feed: dict[str, Any] = {
            "xmlns:opensearch": "http://a9.com/-/spec/opensearch/1.1/",
            "xmlns": "http://www.w3.org/2005/Atom",
            "title": f"Sentinels Scientific Data Hub search results for: {query}",
            "subtitle": f"Displaying {len(page)} results. Request done in 0.01 seconds.",
            "updated": _ms(datetime.now().astimezone()),
            "author": {"name": "Sentinels Scientific Data Hub"},
            "id": base,
            "opensearch:totalResults": str(len(matches)),
            "opensearch:startIndex": str(start),
            "opensearch:itemsPerPage": str(rows),
            "opensearch:Query": {"role": "request", "searchTerms": query, "startPage": "1"},
            "link": [
                {"rel": "self", "type": "application/json",
                 "href": f"{base}&start={start}&rows={rows}&format=json"},
                {"rel": "first", "type": "application/json",
                 "href": f"{base}&start=0&rows={rows}&format=json"},
                {"rel": "last", "type": "application/json",
                 "href": f"{base}&start={last}&rows={rows}&format=json"},
                {"rel": "search", "type": "application/opensearchdescription+xml",
                 "href": "opensearch_description.xml"},
            ],
        }  # fmt: skip
        if page:
            feed["entry"] = page[0] if len(page) == 1 else page
        send_json(handler, 200, {"feed": feed})
