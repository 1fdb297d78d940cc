"""Products on object storage (``s3://``) or HTTP(S), read in place.

Metadata bytes come through fsspec (:mod:`s3fs` for ``s3://``, fsspec's HTTP file
system for ``https://``), not through GDAL. Why: this module belongs to the pure
metadata layer, which must not import rasterio; fsspec gives ranged reads of any
object as a seekable file, so :mod:`zipfile` reads a remote zip's directory and its
XML members with a few small range GETs (never the whole zip), and s3fs reads the
same AWS variables, profiles and endpoint settings users already keep. Pixels are
read later by GDAL through ``/vsis3/``, ``/vsicurl/`` and ``/vsizip/`` over them.

A remote ``.SAFE`` folder is never listed: the product metadata is fetched (one GET;
two when the name does not tell the level), the tile metadata path and the band
files are derived from its ``IMAGE_FILE`` entries. A band file missing from the
folder is therefore found when its pixels are read, not when its metadata is.
"""

from __future__ import annotations

import io
import posixpath
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from .. import _cloud
from ..exceptions import MissingExtraError, ProductError
from ._container import _MAX_XML_BYTES, MTD_RE, REDOWNLOAD, ProductContainer, ZipContainer

__all__ = ["RemoteFolderContainer", "filesystem", "open_remote_container", "remote_error"]

_GRANULE_RE = re.compile(rb"<IMAGE_FILE[^>]*>\s*GRANULE/([^/<\s]+)/")
#: Bytes fetched per range request of a remote zip: its directory and XML members are
#: small (a product's central directory is ~10 kB), s3fs's 5 MB default would fetch
#: band pixels too.
_ZIP_BLOCK = 64 * 1024

#: Times s3fs makes a call. Each of its calls is already retried by botocore (see
#: :meth:`sentinel_cube._cloud.Remote.storage_options`: 4 attempts, jittered exponential
#: back-off, longer after throttling); s3fs's default of 5 calls on top made a throttled
#: metadata read 20 requests and ~25 s before its error showed (measured against 503
#: SlowDown). A second call is kept: it also repeats a body cut mid-transfer, which
#: botocore does not retry.
_S3FS_CALLS = 2

#: What to check when access is refused (no secret is ever shown).
_CHECK_KEYS = (
    "check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
    "CDSE_S3_ACCESS_KEY/CDSE_S3_SECRET_KEY or storage_options=) and that they may read it"
)


def filesystem(url: str, remote: _cloud.Remote) -> Any:
    """The fsspec file system for ``url`` (s3fs with ``remote``'s options, or HTTP)."""
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise MissingExtraError("s3", "fsspec", "reading products on object storage") from exc
    if url.lower().startswith("s3://"):
        try:
            import s3fs
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise MissingExtraError("s3", "s3fs", "reading products on s3://") from exc
        fs = s3fs.S3FileSystem(**remote.storage_options())
        fs.retries = _S3FS_CALLS  # an instance attribute of s3fs; fsspec reuses instances
        return fs
    return fsspec.filesystem("http")


def remote_error(
    url: str, exc: BaseException, remote: _cloud.Remote, what: str = ""
) -> ProductError:
    """A :class:`ProductError` naming ``url`` (without secrets) for a failed access."""
    shown = _cloud.redact(url)
    where = f" ({what})" if what else ""
    if isinstance(exc, FileNotFoundError):
        problem = (
            f"does not exist{where}: no such bucket, key or URL; check the URL (and the "
            "endpoint, AWS_ENDPOINT_URL or storage_options={'endpoint_url': ...})"
        )
    elif isinstance(exc, PermissionError):
        problem = f"access was refused{where}; {_CHECK_KEYS}"
    elif (status := _cloud.http_status(exc)) in _cloud.RETRY_STATUSES or isinstance(
        exc, TimeoutError
    ):
        problem = f"cannot be read{where}: {_cloud.unavailable(status, 'timed out')}"
    else:
        endpoint = remote.endpoint_url or "the AWS default endpoint"
        detail = _cloud.scrub(f"{type(exc).__name__}: {exc}", remote.secrets())[:300]
        if not shown.lower().startswith("s3://"):
            endpoint = "its server"
        problem = (
            f"cannot be read{where} ({detail}); check that {endpoint} answers (the endpoint "
            "comes from AWS_ENDPOINT_URL, AWS_S3_ENDPOINT, CDSE_S3_ENDPOINT or "
            f"storage_options), the network, and {_CHECK_KEYS.removeprefix('check ')}"
        )
    return ProductError(shown, problem)


class RemoteFolderContainer(ProductContainer):
    """A ``.SAFE`` folder under an ``s3://`` prefix or an ``https://`` URL; never listed."""

    def __init__(self, url: str, remote: _cloud.Remote, fs: Any) -> None:
        self.url = url.rstrip("/")
        self.path = _cloud.redact(self.url)
        self.root_name = posixpath.basename(self.url)
        self._remote = remote
        self._fs = fs
        self._bytes: dict[str, bytes] = {}
        self._mtd: str | None = None

    def _fetch(self, member: str) -> bytes:
        found = self._bytes.get(member)
        if found is not None:
            return found
        try:
            data = self._fs.cat_file(f"{self.url}/{member}", start=0, end=_MAX_XML_BYTES + 1)
        except Exception as exc:
            raise remote_error(self.url, exc, self._remote, member) from None
        if len(data) > _MAX_XML_BYTES:
            raise self.error(
                f"{member} is larger than {_MAX_XML_BYTES >> 20} MB; "
                f"it is not Sentinel-2 metadata - {REDOWNLOAD}"
            )
        self._bytes[member] = data
        return data

    def find_product_mtd(self) -> str:
        if self._mtd is not None:
            return self._mtd
        names = ["MTD_MSIL2A.xml", "MTD_MSIL1C.xml"]
        if "MSIL1C" in self.root_name.upper():
            names.reverse()
        first: ProductError | None = None
        for name in names:
            try:
                self._fetch(name)
            except ProductError as exc:
                if not exc.problem.startswith("does not exist"):
                    raise
                first = first or exc
                continue
            self._mtd = name
            return name
        assert first is not None
        raise self.error(
            f"holds no MTD_MSIL2A.xml or MTD_MSIL1C.xml ({first.problem}); pass the URL of "
            "the .SAFE folder itself (or of the .zip), with its credentials and endpoint"
        )

    def find_tile_mtds(self) -> list[str]:
        text = self._fetch(self.find_product_mtd())
        granules = sorted({m.decode("utf-8", "replace") for m in _GRANULE_RE.findall(text)})
        return [f"GRANULE/{g}/MTD_TL.xml" for g in granules]

    def exists(self, member: str) -> bool:
        # not listed: the members the metadata names are assumed present
        return True

    def find_basename(self, basename: str) -> str | None:
        return None

    def read(self, member: str) -> bytes:
        return self._fetch(member)

    @contextmanager
    def open(self, member: str) -> Iterator[IO[bytes]]:
        yield io.BytesIO(self._fetch(member))

    def gdal_path(self, member: str) -> str:
        return _cloud.gdal_path(f"{self.url}/{member}")


def open_remote_container(url: str, remote: _cloud.Remote) -> ProductContainer:
    """The container of the product at ``url``: a remote zip or ``.SAFE`` folder.

    Raises
    ------
    ProductError
        The object does not exist, access is refused, the endpoint does not answer,
        or it is not a readable product; the message shows the URL without secrets.
    """
    url = url.rstrip("/")
    fs = filesystem(url, remote)
    name = posixpath.basename(url)
    if MTD_RE.match(name) or name.lower() == "manifest.safe":
        url, name = posixpath.dirname(url), posixpath.basename(posixpath.dirname(url))
    if not name.lower().endswith(".zip"):
        return RemoteFolderContainer(url, remote, fs)
    try:
        stream = fs.open(url, "rb", block_size=_ZIP_BLOCK, cache_type="bytes")
    except Exception as exc:
        raise remote_error(url, exc, remote) from None
    try:
        return ZipContainer(_cloud.redact(url), stream=stream, gdal_archive=_cloud.gdal_path(url))
    except ProductError:
        stream.close()
        raise
    except Exception as exc:  # network failures while reading the zip's directory
        stream.close()
        raise remote_error(url, exc, remote, "the zip directory") from None
