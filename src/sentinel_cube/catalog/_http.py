"""HTTP plumbing shared by the remote catalogues: sessions, retries, redirects, auth.

* :func:`api_session` - a :class:`requests.Session` for small JSON requests
  (searches, token requests) whose adapter retries connection errors, 5xx and
  429 with exponential backoff and honours ``Retry-After``
  (:class:`urllib3.util.Retry`). TLS certificates are always verified.
* :class:`RetryPolicy` - the bounds our own download loop uses (attempts,
  backoff, total time), see :mod:`sentinel_cube.catalog._download`.
* :func:`retry_after_seconds` - parse a ``Retry-After`` header.
* :class:`BearerAuth` - a ``requests`` auth object adding a token that can be
  refreshed; being an auth object it also stops ``requests`` from replacing it
  with ``~/.netrc`` credentials.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from .._cloud import RETRY_STATUSES  # status codes worth retrying, shared with object storage

__all__ = [
    "BearerAuth",
    "RetryPolicy",
    "api_session",
    "download_session",
    "redact_url",
    "retry_after_seconds",
    "same_site",
    "user_agent",
]


def user_agent() -> str:
    """``sentinel-cube/<version>``, sent with every request."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"sentinel-cube/{version('sentinel-cube')}"
    except PackageNotFoundError:
        return "sentinel-cube/0+unknown"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up on a request or a file.

    Parameters
    ----------
    attempts : int
        Attempts per file for transient failures (connection errors, 5xx, 429),
        counting the first one.
    backoff : float
        Delay before the second attempt in seconds; doubles each time.
    max_backoff : float
        Cap of one delay, also of a server's ``Retry-After``.
    max_time : float
        Give up on a file after this many seconds, whatever the attempts left.
    timeout : float
        Seconds to wait for a connection or for the next bytes of a response.

    Examples
    --------
    >>> RetryPolicy(backoff=1.0).delay(3)
    4.0
    >>> RetryPolicy(backoff=1.0, max_backoff=3).delay(3)
    3.0
    """

    attempts: int = 6
    backoff: float = 1.0
    max_backoff: float = 60.0
    max_time: float = 3600.0
    timeout: float = 60.0

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to sleep before retry number ``retry`` (1 for the first retry)."""
        if retry_after is not None:
            return float(min(max(retry_after, 0.0), self.max_backoff))
        return float(min(self.backoff * 2 ** (retry - 1), self.max_backoff))

    def urllib3_retry(self) -> Retry:
        """The equivalent :class:`urllib3.util.Retry` for small idempotent requests."""
        retries = max(self.attempts - 1, 0)
        return Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            backoff_factor=self.backoff / 2,  # urllib3: 1st retry at once, n-th after f * 2**(n-1)
            backoff_max=self.max_backoff,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD", "POST"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )


def api_session(policy: RetryPolicy | None = None) -> requests.Session:
    """A session for catalogue API calls with retries and a sentinel-cube User-Agent.

    Examples
    --------
    >>> session = api_session(RetryPolicy(attempts=3))
    >>> session.get_adapter("https://x").max_retries.total
    2
    """
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=(policy or RetryPolicy()).urllib3_retry())
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = user_agent()
    session.verify = True
    return session


def download_session(pool_size: int = 16) -> requests.Session:
    """A session for file downloads: no adapter-level retries (the download loop retries).

    Examples
    --------
    >>> download_session().get_adapter("https://x").max_retries.total
    0
    """
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=0, pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = user_agent()
    session.verify = True
    return session


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or None.

    Examples
    --------
    >>> retry_after_seconds("3")
    3.0
    >>> retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0)
    10.0
    >>> retry_after_seconds("soon") is None
    True
    """
    if not value:
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def same_site(url: str, other: str, trusted_suffixes: tuple[str, ...] = ()) -> bool:
    """Whether credentials meant for ``url`` may be sent to ``other`` (a redirect target).

    Same scheme-and-host, or an ``https`` host ending with a trusted suffix.
    An ``https`` -> ``http`` downgrade is never trusted.

    Examples
    --------
    >>> same_site("https://download.example.eu/a", "https://zipper.example.eu/b", (".example.eu",))
    True
    >>> same_site("https://download.example.eu/a", "https://evil.com/b", (".example.eu",))
    False
    """
    a, b = urlsplit(url), urlsplit(other)
    if a.scheme == "https" and b.scheme != "https":
        return False
    if (a.hostname, a.port) == (b.hostname, b.port) and a.scheme == b.scheme:
        return True
    host = b.hostname or ""
    return b.scheme == "https" and any(host.endswith(s) for s in trusted_suffixes if s)


def redact_url(url: str) -> str:
    """The URL without user information or query string (for messages).

    Examples
    --------
    >>> redact_url("https://user:pw@host/path?token=x")
    'https://host/path'
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


class BearerAuth(requests.auth.AuthBase):
    """Add ``Authorization: Bearer <token>`` from a callable returning a fresh token.

    Examples
    --------
    >>> request = requests.Request("GET", "https://x", auth=BearerAuth(lambda: "t")).prepare()
    >>> request.headers["Authorization"]
    'Bearer t'
    """

    def __init__(self, token: Callable[[], str]) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token()}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(<hidden>)"
