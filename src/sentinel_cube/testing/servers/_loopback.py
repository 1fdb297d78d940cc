"""Loopback HTTP servers that serve a synthetic archive, with switchable faults.

Base machinery shared by the CDSE, DHuS and STAC test servers
(:mod:`._cdse`, :mod:`._dhus`, :mod:`._stac`):

* :class:`LoopbackServer` - a :class:`http.server.ThreadingHTTPServer` bound to
  ``127.0.0.1`` on a free port, run in a daemon thread, used as a context
  manager; it records every request (:attr:`LoopbackServer.requests`).
* :class:`ServedProduct` - one zipped product of :func:`~sentinel_cube.testing.make_archive`
  (``zipped=True``): its bytes, checksums, members and metadata.
* :class:`Faults` - what goes wrong with file downloads: the connection dropped
  after K bytes, ``Range`` ignored, N failures with 500/503, 429 with
  ``Retry-After``, corrupted bytes.
* :func:`send_file` - serve bytes with ``Range`` support and the faults.

Nothing here ever listens on another interface than the loopback one.

Examples
--------
>>> from sentinel_cube.testing import make_archive, default_specs
>>> from sentinel_cube.testing.servers._cdse import CDSEServer
>>> zips = make_archive(tmp, default_specs(("34TCT",), ["2023-07-06"]), scale=61, zipped=True)
... # doctest: +SKIP
>>> with CDSEServer(zips, faults=Faults(drop_after=5000, drop_times=1)) as server:
...     cat = sc.CDSECatalog("user@example.org", "secret", **server.catalog_kwargs)
...     cat.download(cat.search(), "out/")                              # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
import uuid as uuid_module
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

__all__ = [
    "Faults",
    "LoopbackServer",
    "RequestRecord",
    "ServedProduct",
    "load_products",
    "served_archive",
    "send_file",
    "send_json",
]

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


@dataclass
class Faults:
    """Faults injected into file downloads; counters count down as faults fire.

    Parameters
    ----------
    drop_after : int, optional
        Bytes of the body sent before the connection is cut (the headers promise
        the full length, so the client sees a short read).
    drop_times : int
        How many responses are cut that way.
    ignore_range : bool
        Answer ``Range`` requests with ``200`` and the whole file.
    fail_times : int
        How many file requests answer ``fail_status`` instead of the file.
    fail_status : int
        500, 503 or 429.
    retry_after : float, optional
        ``Retry-After`` seconds sent with the failures.
    corrupt_times : int
        How many responses have one byte flipped in the middle of the file.
    slow : float
        Seconds to pause in the middle of every file body (to observe concurrency).
    only : str, optional
        Apply the faults only to request paths containing this text.

    Examples
    --------
    >>> faults = Faults(fail_times=2, fail_status=503)
    >>> faults.take("fail_times"), faults.take("fail_times"), faults.take("fail_times")
    (True, True, False)
    """

    drop_after: int | None = None
    drop_times: int = 0
    ignore_range: bool = False
    fail_times: int = 0
    fail_status: int = 503
    retry_after: float | None = None
    corrupt_times: int = 0
    slow: float = 0.0
    only: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def take(self, counter: str) -> bool:
        """Use one occurrence of ``counter`` if any is left (thread-safe)."""
        with self._lock:
            left = getattr(self, counter)
            if left > 0:
                setattr(self, counter, left - 1)
                return True
            return False

    def applies(self, path: str) -> bool:
        """Whether the faults concern a request for ``path``."""
        return self.only is None or self.only in path


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it (no credentials are kept)."""

    method: str
    path: str
    range: str | None
    authorized: bool
    time: float


@dataclass
class ServedProduct:
    """A zipped synthetic product and what the servers say about it.

    Attributes
    ----------
    name : str
        Product name without ``.SAFE`` (what the catalogues publish; a test may
        change it to a hostile name).
    uuid : str
        Stable catalogue id (UUID5 of the original name).
    data : bytes
        The zip.
    members : dict
        Files inside the ``.SAFE`` folder by relative path.
    product : sentinel_cube.safe.Product
        Its metadata, read with :func:`~sentinel_cube.read_product`.
    online : bool
        False for a product in the long-term archive.
    polls_to_online : int
        After an order, how many status polls before it comes online.
    """

    name: str
    uuid: str
    data: bytes
    members: dict[str, bytes]
    product: Any
    online: bool = True
    polls_to_online: int = 0
    ordered: bool = False

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data).hexdigest()

    @property
    def blake3(self) -> str:
        import blake3

        return blake3.blake3(self.data).hexdigest()

    @property
    def absolute_orbit(self) -> int:
        for member in self.members:
            match = re.search(r"GRANULE/L\w{2}_T\w{5}_A(\d{6})_", member)
            if match:
                return int(match.group(1))
        return 0

    def poll(self) -> bool:
        """A status poll: count down towards online once ordered; returns ``online``."""
        if not self.online and self.ordered:
            if self.polls_to_online <= 0:
                self.online = True
            else:
                self.polls_to_online -= 1
        return self.online


def load_products(zips: Iterable[str | Path]) -> dict[str, ServedProduct]:
    """Read zipped products (``make_archive(..., zipped=True)``) for serving, by name."""
    from ...safe import read_product

    served: dict[str, ServedProduct] = {}
    for path in zips:
        path = Path(path)
        data = path.read_bytes()
        with zipfile.ZipFile(path) as archive:
            members = {}
            for info in archive.infolist():
                if info.is_dir():
                    continue
                _, _, inner = info.filename.partition(".SAFE/")
                members[inner] = archive.read(info)
        product = read_product(path, require_bands=None)
        name = product.product_id
        uid = str(uuid_module.uuid5(uuid_module.NAMESPACE_URL, f"sentinel-cube:{name}"))
        served[name] = ServedProduct(name, uid, data, members, product)
    return served


def served_archive(
    root: str | Path,
    tiles: tuple[str, ...] = ("34TCT", "34TDT"),
    dates: tuple[str, ...] = ("2023-07-06", "2023-08-10"),
    scale: int = 61,
) -> list[Path]:
    """Zipped synthetic products for the servers, written once into ``root`` and reused.

    Examples
    --------
    >>> zips = served_archive(tmp_path_factory.getbasetemp() / "archive")  # doctest: +SKIP
    """
    from ..archive._archive import make_archive
    from ..archive._spec import default_specs

    root = Path(root)
    specs = default_specs(tiles, dates)
    paths = [root / f"{spec.name}.zip" for spec in specs]
    if not all(p.is_file() for p in paths):
        paths = make_archive(root, specs, scale=scale, zipped=True)
    return paths


def iso_z(when: datetime, digits: int = 6) -> str:
    """``2023-08-10T09:45:49.024000Z`` (microseconds) or milliseconds with ``digits=3``."""
    text = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text[: len(text) - (6 - digits)] + "Z"


def send_json(handler: BaseHTTPRequestHandler, status: int, payload: Any,
              headers: Mapping[str, str] | None = None) -> None:  # fmt: skip
    """Send a JSON body with Content-Length."""
    body = json.dumps(payload).encode()
    send_bytes(handler, status, body, "application/json", headers)


def send_bytes(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str,
               headers: Mapping[str, str] | None = None, head: bool = False) -> None:  # fmt: skip
    """Send a complete response."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    if not head:
        handler.wfile.write(body)


def send_file(
    handler: BaseHTTPRequestHandler,
    server: LoopbackServer,
    data: bytes,
    filename: str,
    *,
    head: bool = False,
    extra_headers: Mapping[str, str] | None = None,
) -> None:
    """Serve ``data`` honouring ``Range: bytes=N-[M]`` and the server's :class:`Faults`."""
    faults = server.faults
    path = handler.path
    headers = {"Accept-Ranges": "bytes", "Content-Disposition": f'inline;filename="{filename}"',
               **(extra_headers or {})}  # fmt: skip
    active = faults.applies(path) and not head
    if active and faults.take("fail_times"):
        status = faults.fail_status
        fail_headers = {}
        if faults.retry_after is not None:
            fail_headers["Retry-After"] = f"{faults.retry_after:g}"
        message = {429: "Too Many Requests", 500: "Internal Server Error",
                   503: "Service Unavailable"}.get(status, "Error")  # fmt: skip
        send_json(handler, status, {"detail": message}, fail_headers)
        return
    total = len(data)
    start, end = 0, total - 1
    status = 200
    wanted = handler.headers.get("Range")
    if wanted and not (active and faults.ignore_range):
        match = _RANGE.match(wanted.strip())
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)), total - 1) if match.group(2) else total - 1
            if start >= total:
                send_bytes(handler, 416, b"", "text/plain", {"Content-Range": f"bytes */{total}"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
    if status == 200:
        headers["Content-Range"] = f"bytes 0-{total - 1}/{total}"  # DHuS sends it on 200 too
    body = data[start : end + 1]
    if active and faults.take("corrupt_times"):
        # a different byte each time, so two corrupt copies differ from each other too
        spot = (len(body) // 2 + 7 * faults.corrupt_times) % max(len(body), 1)
        body = body[:spot] + bytes([body[spot] ^ 0xFF]) + body[spot + 1 :]
    handler.send_response(status)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Content-Length", str(len(body)))
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.end_headers()
    if head:
        return
    cut = faults.drop_after if active and faults.drop_after is not None else None
    with server.streaming():
        if cut is not None and cut < len(body) and faults.take("drop_times"):
            handler.wfile.write(body[:cut])
            handler.wfile.flush()
            handler.close_connection = True
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if active and faults.slow:
            handler.wfile.write(body[: len(body) // 2])
            handler.wfile.flush()
            time.sleep(faults.slow)
            body = body[len(body) // 2 :]
        handler.wfile.write(body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sentinel-cube-loopback/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the log
        return

    def _dispatch(self, method: str) -> None:
        app: LoopbackServer = self.server.app  # type: ignore[attr-defined]
        app.record(self, method)
        try:
            app.handle(self, method)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class LoopbackServer:
    """Base of the test servers: lifecycle, request log, products and faults.

    Subclasses implement :meth:`handle`. Use as a context manager; :attr:`url`
    is ``http://127.0.0.1:<port>``.

    Parameters
    ----------
    zips : iterable of path
        Zipped products to serve.
    faults : Faults, optional
        Faults for file downloads (mutable while the server runs).
    """

    def __init__(self, zips: Iterable[str | Path] = (), *, faults: Faults | None = None) -> None:
        self.products: dict[str, ServedProduct] = load_products(zips)
        self.faults = faults or Faults()
        self.requests: list[RequestRecord] = []
        #: the largest number of file bodies that were being sent at the same time
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> Self:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.app = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start the server first (use it as a context manager)"
        host, port = self._httpd.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{host_text}:{port}"

    # -- products ------------------------------------------------------------------------
    def by_uuid(self, uid: str) -> ServedProduct | None:
        return next((p for p in self.products.values() if p.uuid == uid), None)

    def rename(self, name: str, new_name: str) -> ServedProduct:
        """Publish product ``name`` under ``new_name`` (e.g. a hostile ``../`` name)."""
        product = self.products.pop(name)
        product.name = new_name
        self.products[new_name] = product
        return product

    def set_offline(self, name: str, polls: int = 0) -> None:
        """Put a product in the long-term archive; once ordered it comes online after
        ``polls`` status polls."""
        product = self.products[name]
        product.online = False
        product.ordered = False
        product.polls_to_online = polls

    # -- requests ------------------------------------------------------------------------
    @contextmanager
    def streaming(self) -> Iterator[None]:
        """Count a file body being sent (for :attr:`max_in_flight`)."""
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def record(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        authorized = bool(handler.headers.get("Authorization"))
        entry = RequestRecord(
            method, handler.path, handler.headers.get("Range"), authorized, time.monotonic()
        )
        with self._lock:
            self.requests.append(entry)

    def requests_to(self, fragment: str, method: str | None = None) -> list[RequestRecord]:
        """Recorded requests whose path contains ``fragment``."""
        with self._lock:
            return [r for r in self.requests
                    if fragment in r.path and (method is None or r.method == method)]  # fmt: skip

    def handle(self, handler: Any, method: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
