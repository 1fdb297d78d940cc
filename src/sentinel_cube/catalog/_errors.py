"""Errors of the remote catalogues and of downloads.

All derive from :class:`~sentinel_cube.exceptions.CatalogError` (itself a
:class:`~sentinel_cube.exceptions.SentinelCubeError`), so ``except CatalogError``
catches every search and download problem. Messages name the product, file or
URL and say what to do; they never contain credentials or tokens.
"""

from __future__ import annotations

from ..exceptions import CatalogError

__all__ = [
    "AuthenticationError",
    "ChecksumMismatchError",
    "DownloadError",
    "ProductOfflineError",
    "UnsafeNameError",
]


class AuthenticationError(CatalogError):
    """Login failed or the server refused the credentials or token.

    Examples
    --------
    >>> raise AuthenticationError("CDSE login refused")  # doctest: +SKIP
    """


class DownloadError(CatalogError):
    """A file could not be downloaded after every allowed attempt.

    Attributes
    ----------
    url : str
        The URL of the file (without credentials).
    path : str
        Where it was to be written.
    """

    def __init__(self, message: str, *, url: str = "", path: str = "") -> None:
        self.url = url
        self.path = path
        super().__init__(message)


class ChecksumMismatchError(DownloadError):
    """A downloaded file does not match its published checksum, even after a re-download.

    Attributes
    ----------
    algorithm : str
        ``"MD5"``, ``"BLAKE3"``, ``"SHA3-256"``...
    expected : str
        The checksum the catalogue or manifest publishes.
    actual : tuple of str
        The checksums of each downloaded copy.
    """

    def __init__(
        self, message: str, *, url: str, path: str, algorithm: str, expected: str,
        actual: tuple[str, ...],
    ) -> None:  # fmt: skip
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual
        super().__init__(message, url=url, path=path)


class ProductOfflineError(CatalogError):
    """The product is in the long-term archive; its retrieval has been ordered."""


class UnsafeNameError(CatalogError, ValueError):
    """A remote name would become a path outside the download folder (``..``, ``/x``)."""
