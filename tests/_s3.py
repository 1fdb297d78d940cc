"""Object storage and HTTP on the loopback for tests: moto's S3 server and a range server.

- :class:`S3Server`: the package's loopback S3 server
  (:class:`sentinel_cube.testing.S3Server`: moto's standalone S3, the real protocol:
  signed requests, ranged GETs, listings, on ``127.0.0.1`` on a free port, in a thread)
  behind a small WSGI gate that records every request (method, path, ``Range``, bytes
  sent) and refuses requests not signed with the expected access key id, as S3 does
  (``InvalidAccessKeyId``; moto itself accepts any key). :meth:`S3Server.faults` makes
  chosen requests answer S3's own errors instead (``503 SlowDown``, ``500
  InternalError``): throttling and outages on demand.
- :class:`FileServer`: a folder served over HTTP with ``Range`` support
  (:class:`sentinel_cube.testing.FolderServer`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentinel_cube.testing import S3Server as LoopbackS3Server
from sentinel_cube.testing.servers._files import FolderServer as FileServer

KEY_ID = "AKIALOOPBACKTESTKEY1"
SECRET = "loopback-secret-Zq8v3T0pW"
BUCKET = "products"
REGION = "us-east-1"

__all__ = ["BUCKET", "KEY_ID", "REGION", "SECRET", "FileServer", "Fault", "S3Server"]


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    sent: int
    #: the status of an injected error (see :class:`Fault`); None: answered normally
    fault: int | None = None
    #: when it arrived (``time.monotonic()``)
    at: float = field(default_factory=time.monotonic)


#: S3's error answers by status: (reason, code, message).
ERRORS = {
    403: ("Forbidden", "InvalidAccessKeyId",
          "The AWS Access Key Id you provided does not exist in our records."),
    500: ("Internal Server Error", "InternalError",
          "We encountered an internal error. Please try again."),
    503: ("Slow Down", "SlowDown", "Please reduce your request rate."),
}  # fmt: skip


@dataclass(eq=False)
class Fault:
    """Answer matching requests with S3's error ``status`` (503 ``SlowDown`` by default).

    A request matches when its method is ``method`` (None: any) and its path holds
    ``path``; the first ``times`` matching requests fail (None: every one).
    """

    status: int = 503
    path: str = ""
    method: str | None = None
    times: int | None = None
    hits: int = field(default=0, init=False)

    def take(self, method: str, path: str) -> bool:
        """Whether this request fails (counted; call under the gate's lock)."""
        if self.method not in (None, method) or self.path not in path:
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        self.hits += 1
        return True


def _error(status: int, start_response: Any) -> bytes:
    reason, code, message = ERRORS[status]
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error>"
    ).encode()
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
    )
    return body


class _Gate:
    """WSGI middleware: log requests, refuse any other access key id than ``key_id``,
    answer the requests the active :class:`Fault` rules pick with an error.

    Conditional writes (``If-None-Match``/``If-Match``) are answered one at a time:
    S3 makes each atomic, while moto checks the condition and writes in two steps
    that threads could interleave.
    """

    def __init__(self, app: Any, key_id: str) -> None:
        self.app = app
        self.key_id = key_id
        self.log: list[Request] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.conditional = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        entry = Request(
            environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), environ.get("HTTP_RANGE"), 0
        )
        with self.lock:
            self.log.append(entry)
            if f"Credential={self.key_id}/" not in auth:
                status: int | None = 403
            else:
                fault = next((f for f in self.faults if f.take(entry.method, entry.path)), None)
                status = None if fault is None else fault.status
        if status is not None:
            body = _error(status, start_response)
            if entry.method == "HEAD":  # headers only, as S3 answers
                body = b""
            entry.sent, entry.fault = len(body), status
            return [body]
        changing = entry.method in ("PUT", "POST", "DELETE")
        conditional = "HTTP_IF_MATCH" in environ or "HTTP_IF_NONE_MATCH" in environ
        with self.conditional if changing and conditional else contextlib.nullcontext():
            out = []
            for chunk in self.app(environ, start_response):
                entry.sent += len(chunk)
                out.append(chunk)
        return out


class S3Server(LoopbackS3Server):
    """The package's loopback S3 server behind a gate: request log, key check, faults."""

    def __init__(self) -> None:
        super().__init__(key_id=KEY_ID, secret=SECRET, region=REGION)

    def _wsgi(self, app: Any) -> Any:
        self.gate = _Gate(app, self.key_id)
        return self.gate

    @property
    def log(self) -> list[Request]:
        return self.gate.log

    @contextmanager
    def faults(self, *rules: Fault) -> Iterator[list[Fault]]:
        """Answer the requests ``rules`` pick with S3 errors while the block runs.

        Examples
        --------
        >>> with server.faults(Fault(503, path="/MTD_", times=2)):  # doctest: +SKIP
        ...     read_product(url)  # the first two metadata GETs are throttled
        """
        with self.gate.lock:
            self.gate.faults.extend(rules)
        try:
            yield list(rules)
        finally:
            with self.gate.lock:
                self.gate.faults = [f for f in self.gate.faults if f not in rules]

    def upload(self, local: Path, prefix: str, bucket: str = BUCKET) -> str:
        """Upload a file or a folder (as ``prefix/NAME/...``); return its ``s3://`` URL."""
        return super().upload(local, prefix, bucket)

    def upload_tree(self, root: Path, bucket: str = BUCKET, prefix: str = "") -> str:
        """Upload the files under ``root`` at ``prefix/<path under root>`` (the folder itself
        is not part of the keys); return the ``s3://bucket[/prefix]`` URL of its top."""
        client = self.client()
        top = "/".join(p for p in (bucket, prefix.strip("/")) if p)
        for path in sorted(root.rglob("*")):
            if path.is_file():
                relative = path.relative_to(root).as_posix()
                key = f"{prefix.strip('/')}/{relative}" if prefix.strip("/") else relative
                client.upload_file(str(path), bucket, key)
        return f"s3://{top}"
