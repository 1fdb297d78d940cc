"""A loopback S3 server: moto's S3 on ``127.0.0.1``, in a thread.

The real S3 protocol (signed requests, ranged GETs, listings, conditional writes) that
:func:`~sentinel_cube.read_product`, :func:`~sentinel_cube.open_cube` and the Zarr stores
speak to object storage, with no network and no account: the demo's ``--s3`` stage and
the tests use it. moto and its standalone server are an optional extra
(``pip install 'sentinel-cube[demo-s3]'``); they are imported when a server is made.

moto keeps buckets and objects in the memory of this process, shared by every moto
server in it: the buckets a server made with :meth:`S3Server.create_bucket` are emptied
and removed when it stops.

Examples
--------
>>> with S3Server() as s3:                                            # doctest: +SKIP
...     s3.create_bucket("eodata")
...     url = s3.upload(Path("S2B_MSIL2A_..._T34TCT_....SAFE"), "Sentinel-2/MSI/L2A", "eodata")
...     product = sc.read_product(url, storage_options=s3.storage_options())
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from ...exceptions import MissingExtraError, SentinelCubeError

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

__all__ = ["DEMO_S3_EXTRA", "S3Server", "Traffic"]

#: The extra that installs moto's S3 server.
DEMO_S3_EXTRA = "demo-s3"

#: Fixed keys of the loopback server (moto accepts any; clients must sign with some).
DEMO_KEY_ID = "AKIALOOPBACKDEMOKEY1"
DEMO_SECRET = "loopback-demo-secret"
DEMO_REGION = "us-east-1"

#: The AWS variable of each storage option.
_ENV_NAMES = {
    "key": "AWS_ACCESS_KEY_ID",
    "secret": "AWS_SECRET_ACCESS_KEY",
    "endpoint_url": "AWS_ENDPOINT_URL",
    "region_name": "AWS_REGION",
}


@dataclass(frozen=True)
class Traffic:
    """Requests a server answered and the body bytes they carried.

    Attributes
    ----------
    requests : int
        Requests answered.
    received : int
        Bytes of request bodies (uploads, chunk writes).
    sent : int
        Bytes of response bodies (downloads, ranged reads, listings).

    Examples
    --------
    >>> Traffic(10, 2048, 512) - Traffic(4, 1024, 0)
    Traffic(requests=6, received=1024, sent=512)
    """

    requests: int = 0
    received: int = 0
    sent: int = 0

    def __sub__(self, other: Traffic) -> Traffic:
        return Traffic(
            self.requests - other.requests, self.received - other.received, self.sent - other.sent
        )


class _Counter:
    """WSGI middleware: count requests and body bytes in both directions."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.totals = Traffic()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = environ.get("HTTP_X_AMZ_DECODED_CONTENT_LENGTH") or environ.get("CONTENT_LENGTH")
        body = list(self.app(environ, start_response))
        with self.lock:
            self.totals = Traffic(
                self.totals.requests + 1,
                self.totals.received + int(length or 0),
                self.totals.sent + sum(len(chunk) for chunk in body),
            )
        return body


def _moto_app() -> Any:
    """moto's S3 as a WSGI application; MissingExtraError without the extra."""
    try:
        from moto.server import DomainDispatcherApplication, create_backend_app
    except ImportError as error:
        package = (error.name or "moto").split(".")[0]
        raise MissingExtraError(DEMO_S3_EXTRA, package, "A loopback S3 server") from error
    return DomainDispatcherApplication(create_backend_app)


class S3Server:
    """moto's S3 on ``127.0.0.1`` on a free port, served from a daemon thread.

    Parameters
    ----------
    key_id, secret, region
        The credentials and region clients of this server use (:meth:`env`,
        :meth:`storage_options`, :meth:`client`). moto accepts any key.

    Raises
    ------
    MissingExtraError
        When moto or its server's dependencies (flask, flask-cors) are not installed.

    Examples
    --------
    >>> with S3Server() as s3:                                        # doctest: +SKIP
    ...     s3.create_bucket("cubes")
    ...     sc.to_zarr(cube, "s3://cubes/cube.zarr", storage_options=s3.storage_options())
    """

    def __init__(
        self, key_id: str = DEMO_KEY_ID, secret: str = DEMO_SECRET, region: str = DEMO_REGION
    ) -> None:
        self.key_id, self.secret, self.region = key_id, secret, region
        self._counter = _Counter(self._wsgi(_moto_app()))
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._buckets: list[str] = []

    def _wsgi(self, app: Any) -> Any:
        """The WSGI application served: moto's, or a subclass's wrapper around it."""
        return app

    def start(self) -> Self:
        """Listen on ``127.0.0.1`` on a free port and serve in a daemon thread."""
        from werkzeug.serving import make_server  # installed with moto

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self._server = make_server("127.0.0.1", 0, self._counter, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Remove the buckets made by :meth:`create_bucket`, stop serving, free the port."""
        if self._server is None:
            return
        try:
            for bucket in self._buckets:
                self._remove_bucket(bucket)
        finally:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join()
            self._server = self._thread = None
            self._buckets = []

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self._server is None:
            raise SentinelCubeError("the S3 server is not started: call start() first")
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def traffic(self) -> Traffic:
        """Requests answered and bytes carried since the server was made."""
        with self._counter.lock:
            return self._counter.totals

    def storage_options(self) -> dict[str, str]:
        """``storage_options`` of the readers and stores for this endpoint."""
        return {
            "key": self.key_id,
            "secret": self.secret,
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
        }

    def env(self) -> dict[str, str]:
        """The same settings as environment variables (``AWS_*``)."""
        return {_ENV_NAMES[name]: value for name, value in self.storage_options().items()}

    def client(self) -> Any:
        """A boto3 S3 client of this endpoint."""
        import boto3  # installed with moto

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.key_id,
            aws_secret_access_key=self.secret,
            region_name=self.region,
        )

    def create_bucket(self, bucket: str) -> str:
        """Create ``bucket`` (removed again when the server stops); return ``s3://bucket``."""
        client = self.client()
        try:
            client.create_bucket(Bucket=bucket)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        if bucket not in self._buckets:
            self._buckets.append(bucket)
        return f"s3://{bucket}"

    def upload(self, local: Path, prefix: str, bucket: str) -> str:
        """Upload a file as ``prefix/NAME`` or a folder as ``prefix/NAME/...``.

        Returns
        -------
        str
            The ``s3://bucket/prefix/NAME`` URL of the file or folder.
        """
        local = Path(local)
        client = self.client()
        base = f"{prefix.strip('/')}/{local.name}".lstrip("/")
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        for path in files:
            key = base if path == local else f"{base}/{path.relative_to(local).as_posix()}"
            client.upload_file(str(path), bucket, key)
        return f"s3://{bucket}/{base}"

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Keys of the objects in ``bucket`` under ``prefix``, sorted."""
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))

    def _remove_bucket(self, bucket: str) -> None:
        client = self.client()
        keys = self.keys(bucket)
        for start in range(0, len(keys), 1000):  # at most 1000 keys per DeleteObjects
            objects = [{"Key": key} for key in keys[start : start + 1000]]
            client.delete_objects(Bucket=bucket, Delete={"Objects": objects})
        client.delete_bucket(Bucket=bucket)
