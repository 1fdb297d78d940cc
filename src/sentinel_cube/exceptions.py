"""Errors and warnings raised by sentinel_cube.

Every error derives from :class:`SentinelCubeError`, so callers can catch one
type. Messages name the file, argument or band at fault and say how to fix it.
"""

from __future__ import annotations

__all__ = [
    "AOIError",
    "CatalogError",
    "MissingExtraError",
    "ProductError",
    "SentinelCubeError",
    "SentinelCubeWarning",
]


class SentinelCubeError(Exception):
    """Base class of every error raised by sentinel_cube."""


class ProductError(SentinelCubeError):
    """A Sentinel-2 product (``.SAFE`` folder or ``.zip``) is unreadable or incomplete.

    Attributes
    ----------
    path : str
        The product path (or the file inside it) at fault.
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class AOIError(SentinelCubeError, ValueError):
    """An area of interest could not be read or is not a polygon."""


class CatalogError(SentinelCubeError):
    """A catalogue could not be searched or listed."""


class MissingExtraError(SentinelCubeError, ImportError):
    """An optional dependency is missing; the message holds the install command."""

    def __init__(self, extra: str, package: str, purpose: str) -> None:
        self.extra = extra
        super().__init__(
            f"{purpose} needs the optional package {package!r}: "
            f"pip install 'sentinel-cube[{extra}]'"
        )


class SentinelCubeWarning(UserWarning):
    """Something was skipped or repaired; the message says what and where."""
