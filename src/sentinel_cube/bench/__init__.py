"""``sentinel-cube bench``: measure ingest and analysis on your own machine or cluster."""

from ._archive import archive_dates, cached_archive

__all__ = ["archive_dates", "cached_archive"]
