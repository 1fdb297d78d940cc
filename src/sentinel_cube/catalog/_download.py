"""One robust file downloader for every catalogue: resume, verify, rename.

Each file is streamed to ``<name>.part`` next to its final path and renamed with
:func:`os.replace` only after its size and checksum have been verified, so a
final name on disk always means a complete, verified file; a rerun skips it.

* Interrupted downloads (dropped connection, killed process) resume from the
  bytes in ``.part`` with ``Range: bytes=N-``; the answer must be ``206`` with a
  ``Content-Range`` starting at ``N``, anything else (a ``200`` from a server
  that ignores ``Range``) restarts the file cleanly from byte 0.
* Connection errors, timeouts, 5xx and 429 are retried with exponential backoff
  (429/503 honour ``Retry-After``), bounded by :class:`RetryPolicy` attempts and
  total time.
* A checksum mismatch deletes the copy and downloads once more; a second
  mismatch raises :class:`ChecksumMismatchError` quoting both copies' checksums.
* 401/403 ask the catalogue to refresh its credentials once, then retry.
* Redirects are followed by hand so that a bearer token goes only to the same
  site (or a trusted suffix) and never over a downgrade to plain HTTP.

Why not a library: urllib3/requests retry a *request* but not a half-received
body; resuming needs the bytes on disk, a ``Range`` request and a check of the
``206``/``Content-Range`` answer, and that has to be tied to verification and the
atomic rename. No maintained Python library does those three together (requests,
urllib3, tqdm-based helpers and sentinelsat each do part), so the loop lives
here and uses :mod:`requests` for the HTTP itself.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import requests
import urllib3

from ._checksum import file_digest, strongest
from ._errors import (
    AuthenticationError,
    ChecksumMismatchError,
    DownloadError,
    ProductOfflineError,
)
from ._http import RETRY_STATUSES, RetryPolicy, download_session, redact_url, retry_after_seconds
from ._http import same_site as _same_site
from ._paths import safe_join

__all__ = ["FetchOutcome", "FileDownloader", "ProgressCallback", "RemoteFile"]

#: Called with the number of bytes just written (negative when a file restarts).
ProgressCallback = Callable[[int], None]

_MAX_REDIRECTS = 5
_MAX_REFRESHES = 3  # credential renewals per file before giving up
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
_QUERY = re.compile(r"\?[^\s'\"]*")
_TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.HTTPError,  # ProtocolError, ReadTimeoutError while streaming
    TimeoutError,
    ConnectionError,
)


@dataclass(frozen=True)
class RemoteFile:
    """A file to download.

    Parameters
    ----------
    url : str
        Where to GET it.
    path : str
        Destination relative to the download root, ``/`` separated; checked by
        :func:`~sentinel_cube.catalog._paths.safe_relpath`.
    size : int, optional
        Expected size in bytes.
    checksums : mapping, optional
        ``{"MD5": hex, "BLAKE3": hex, ...}``; the strongest available is verified.

    Examples
    --------
    >>> RemoteFile("https://host/x/$value", "S2B_X.zip", 10, {"MD5": "ab"}).path
    'S2B_X.zip'
    """

    url: str
    path: str
    size: int | None = None
    checksums: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FetchOutcome:
    """Result of :meth:`FileDownloader.fetch`: the final path and what it took."""

    path: Path
    skipped: bool
    bytes_received: int = 0
    attempts: int = 0


class _Transient(Exception):
    """A failure worth retrying; ``retry_after`` is the server's wish in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Restart(Exception):
    """The partial file is unusable: delete it and start again (counts as an attempt).

    ``total`` is the full size the server reported, when it did (416 answers).
    """

    def __init__(self, message: str, total: int | None = None) -> None:
        super().__init__(message)
        self.total = total


def describe(error: BaseException) -> str:
    """``Type: message`` with query strings (signed URLs) removed from URLs."""
    return f"{type(error).__name__}: {_QUERY.sub('?...', str(error))}"


class FileDownloader:
    """Download files with resume, retries, verification and atomic renames.

    Parameters
    ----------
    session : requests.Session, optional
        Default: :func:`~sentinel_cube.catalog._http.download_session` (TLS verified,
        no adapter retries).
    policy : RetryPolicy, optional
        Attempts, backoff and time bounds.
    auth : requests auth, optional
        Applied to the first URL and to redirects on the same site only.
    refresh_auth : callable, optional
        Called after a 401/403 to renew the credentials behind ``auth``.
    trusted_suffixes : tuple of str
        Host suffixes (``".dataspace.copernicus.eu"``) that may receive ``auth``
        after a redirect.
    max_connections : int, optional
        At most this many files stream at once through this downloader.
    chunk_size : int
        Bytes per read.
    sleep : callable
        ``time.sleep``; replaceable in tests.

    Examples
    --------
    >>> downloader = FileDownloader(policy=RetryPolicy(attempts=3, backoff=0.5))
    >>> outcome = downloader.fetch(RemoteFile(url, "S2B_X.zip", size, {"MD5": md5}), "archive/")
    ... # doctest: +SKIP
    >>> outcome.path, outcome.skipped  # doctest: +SKIP
    (PosixPath('archive/S2B_X.zip'), False)
    """

    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        policy: RetryPolicy | None = None,
        auth: requests.auth.AuthBase | None = None,
        refresh_auth: Callable[[], None] | None = None,
        trusted_suffixes: tuple[str, ...] = (),
        max_connections: int | None = None,
        chunk_size: int = 1 << 20,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.session = session or download_session()
        self.policy = policy or RetryPolicy()
        self.auth = auth
        self.refresh_auth = refresh_auth
        self.trusted_suffixes = trusted_suffixes
        self.chunk_size = chunk_size
        self.sleep = sleep
        self._limit = threading.BoundedSemaphore(max_connections) if max_connections else None

    # -- public --------------------------------------------------------------------------
    def fetch(
        self,
        remote: RemoteFile,
        root: str | os.PathLike[str],
        *,
        verify: bool = True,
        progress: ProgressCallback | None = None,
    ) -> FetchOutcome:
        """Download ``remote`` to ``root / remote.path`` unless it is already there.

        Raises
        ------
        DownloadError
            Permanent HTTP error, or transient errors beyond the policy's bounds.
        ChecksumMismatchError
            Two downloaded copies both failed verification.
        AuthenticationError
            The server still refuses the credentials after a refresh.
        ProductOfflineError
            The server answers 202 (offline product, retrieval triggered).
        UnsafeNameError
            ``remote.path`` would leave ``root``.
        """
        final = safe_join(root, remote.path)
        if final.is_file() and (remote.size is None or final.stat().st_size == remote.size):
            return FetchOutcome(final, skipped=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        part = final.with_name(final.name + ".part")
        report = progress or (lambda n: None)
        check = strongest(remote.checksums) if verify else None
        expected_size = remote.size
        bad_copies: list[str] = []
        retry = received = attempts = 0
        refreshes = 0
        started = time.monotonic()
        last_error = "no attempt made"
        while True:
            attempts += 1
            offset = part.stat().st_size if part.exists() else 0
            if expected_size is not None and offset > expected_size:
                part.unlink()
                report(-offset)
                offset = 0
            try:
                if expected_size is None or offset < expected_size:
                    got, total = self._stream(remote.url, part, offset, report)
                    received += got
                    if expected_size is None and total is not None:
                        expected_size = total
                size_now = part.stat().st_size
                if expected_size is not None and size_now != expected_size:
                    raise _Transient(
                        f"received {size_now} of {expected_size} bytes (response ended early)"
                    )
                if check is not None:
                    algorithm, value = check
                    actual = file_digest(part, algorithm)
                    if actual != value:
                        bad_copies.append(actual)
                        part.unlink()
                        report(-size_now)
                        if len(bad_copies) >= 2:
                            raise self._mismatch(remote, final, algorithm, value, bad_copies)
                        continue  # a second, clean download
                os.replace(part, final)
                _fsync_dir(final.parent)
                return FetchOutcome(final, False, received, attempts)
            except _Restart as error:
                last_error = str(error)
                if error.total is not None and expected_size not in (None, error.total):
                    part.unlink(missing_ok=True)
                    raise DownloadError(
                        f"{redact_url(remote.url)}: the server's file has {error.total} bytes, "
                        f"the catalogue announced {expected_size}; the file changed or the "
                        "catalogue is wrong - nothing was kept, search again and retry",
                        url=redact_url(remote.url),
                        path=str(final),
                    ) from None
                if part.exists():
                    report(-part.stat().st_size)
                    part.unlink()
                retry += 1
                self._pause(remote, part, retry, started, last_error, None)
            except requests.exceptions.SSLError as error:
                raise _tls_error(remote.url, error) from None
            except _Transient as error:
                last_error = str(error)
                retry += 1
                self._pause(remote, part, retry, started, last_error, error.retry_after)
            except _TRANSIENT_ERRORS as error:
                last_error = describe(error)
                retry += 1
                self._pause(remote, part, retry, started, last_error, None)
            except _Unauthorized as error:
                if refreshes >= _MAX_REFRESHES or self.refresh_auth is None:
                    raise AuthenticationError(
                        f"{redact_url(remote.url)} refused the credentials (HTTP "
                        f"{error.status}) even after renewing them; check the account's "
                        "access rights and quota"
                    ) from None
                refreshes += 1
                self.refresh_auth()

    def fetch_bytes(self, url: str, max_bytes: int = 64 << 20) -> bytes:
        """GET a small resource (metadata XML) with the same retries and auth rules."""
        retry = 0
        started = time.monotonic()
        refreshed = False
        while True:
            try:
                with self._slot():
                    response = self._open(url, 0)
                    with response:
                        self._check_status(response, url, 0)
                        data = response.content
                if len(data) > max_bytes:
                    raise DownloadError(
                        f"{redact_url(url)} sent {len(data)} bytes, more than the "
                        f"{max_bytes} expected for metadata",
                        url=redact_url(url),
                    )
                return data
            except _Unauthorized as error:
                if refreshed or self.refresh_auth is None:
                    raise AuthenticationError(
                        f"{redact_url(url)} refused the credentials (HTTP {error.status})"
                    ) from None
                refreshed = True
                self.refresh_auth()
            except requests.exceptions.SSLError as error:
                raise _tls_error(url, error) from None
            except (_Transient, _Restart, *_TRANSIENT_ERRORS) as error:
                retry += 1
                message = str(error) if isinstance(error, _Transient) else describe(error)
                wait = getattr(error, "retry_after", None)
                self._pause(RemoteFile(url, ""), None, retry, started, message, wait)

    # -- internals -----------------------------------------------------------------------
    def _slot(self):
        return self._limit if self._limit is not None else nullcontext()

    def _open(self, url: str, offset: int) -> requests.Response:
        """GET ``url`` (from byte ``offset``), following redirects with guarded auth."""
        # identity encoding: Range offsets must count the bytes stored on disk
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            trusted = _same_site(url, current, self.trusted_suffixes)
            response = self.session.get(
                current,
                headers=headers,
                stream=True,
                allow_redirects=False,
                timeout=(self.policy.timeout, self.policy.timeout),
                auth=self.auth if trusted else None,
            )
            if response.is_redirect and "location" in response.headers:
                current = urljoin(current, response.headers["location"])
                response.close()
                continue
            return response
        raise DownloadError(
            f"{redact_url(url)} redirected more than {_MAX_REDIRECTS} times; the server is "
            "misconfigured, try again later",
            url=redact_url(url),
        )

    def _check_status(self, response: requests.Response, url: str, offset: int) -> None:
        status = response.status_code
        if status in (200, 206):
            return
        if status in (401, 403):
            raise _Unauthorized(status)
        if status == 202:
            raise ProductOfflineError(
                f"{redact_url(url)} answered 202 Accepted: the product is offline (long-term "
                "archive) and its retrieval was triggered; download it again later"
            )
        if status == 416 and offset:
            found = re.match(r"bytes\s+\*/(\d+)", response.headers.get("content-range", ""))
            raise _Restart(
                f"the server cannot resume from byte {offset} (HTTP 416)",
                int(found.group(1)) if found else None,
            )
        if status in RETRY_STATUSES:
            raise _Transient(
                f"HTTP {status} from {redact_url(url)}",
                retry_after_seconds(response.headers.get("retry-after")),
            )
        try:
            detail = next(response.iter_content(300), b"").decode("utf-8", "replace").strip()
        except requests.RequestException:
            detail = ""
        detail = " ".join(detail.split())[:200]
        raise DownloadError(
            f"{redact_url(url)} answered HTTP {status} {response.reason}"
            + (f" ({detail})" if detail else "")
            + "; check the product id and your access rights",
            url=redact_url(url),
        )

    def _stream(
        self, url: str, part: Path, offset: int, report: ProgressCallback
    ) -> tuple[int, int | None]:
        """Append the response body to ``part``; returns (bytes received, total size)."""
        received = 0
        with self._slot():
            response = self._open(url, offset)
            with response:
                self._check_status(response, url, offset)
                total = _total_size(response)
                if offset and response.status_code == 200:
                    # the server ignored Range: restart the file from its first byte
                    report(-offset)
                    offset = 0
                elif response.status_code == 206:
                    match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
                    if match is None or int(match.group(1)) != offset:
                        raise _Restart(
                            f"{redact_url(url)} answered a Range request for byte {offset} "
                            f"with Content-Range {response.headers.get('content-range')!r}"
                        )
                # read1 hands over whatever arrived, so the bytes received before a dropped
                # connection reach the disk (iter_content would discard a partial chunk)
                read = getattr(response.raw, "read1", response.raw.read)
                with open(part, "ab" if offset else "wb") as handle:
                    try:
                        while chunk := read(self.chunk_size):
                            handle.write(chunk)
                            received += len(chunk)
                            report(len(chunk))
                    finally:
                        handle.flush()
                        os.fsync(handle.fileno())
        return received, total

    def _pause(
        self,
        remote: RemoteFile,
        part: Path | None,
        retry: int,
        started: float,
        last_error: str,
        retry_after: float | None,
    ) -> None:
        delay = self.policy.delay(retry, retry_after)
        elapsed = time.monotonic() - started
        if retry >= self.policy.attempts or elapsed + delay > self.policy.max_time:
            kept = (
                f"; the partial file {part} is kept - run the same download again to resume it"
                if part is not None and part.exists()
                else ""
            )
            raise DownloadError(
                f"{redact_url(remote.url)}: gave up after {retry} attempt(s) in {elapsed:.0f} s "
                f"(limits: {self.policy.attempts} attempts, {self.policy.max_time:.0f} s); "
                f"last error: {last_error}{kept}",
                url=redact_url(remote.url),
                path=str(part or ""),
            )
        self.sleep(delay)

    @staticmethod
    def _mismatch(
        remote: RemoteFile, final: Path, algorithm: str, expected: str, copies: list[str]
    ) -> ChecksumMismatchError:
        return ChecksumMismatchError(
            f"{final.name} from {redact_url(remote.url)} fails verification twice: {algorithm} "
            f"should be {expected}, the two downloads gave {copies[0]} and {copies[1]}; nothing "
            "was kept. The server's copy or its published checksum is wrong - try again later "
            "or report it to the catalogue operator",
            url=redact_url(remote.url),
            path=str(final),
            algorithm=algorithm,
            expected=expected,
            actual=tuple(copies),
        )


class _Unauthorized(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _tls_error(url: str, error: Exception) -> DownloadError:
    return DownloadError(
        f"{redact_url(url)}: the TLS certificate could not be verified ({type(error).__name__}); "
        "verification is never switched off - update the system's CA certificates (or the "
        "'certifi' package), or set REQUESTS_CA_BUNDLE to your organisation's CA bundle",
        url=redact_url(url),
    )


def _total_size(response: requests.Response) -> int | None:
    """Full size of the resource from Content-Range (206) or Content-Length (200)."""
    if response.status_code == 206:
        match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
        if match and match.group(3) != "*":
            return int(match.group(3))
        return None
    length = response.headers.get("content-length")
    encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
    return int(length) if length and length.isdigit() and not encoded else None


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
