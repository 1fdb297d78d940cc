"""What a catalogue download did: downloaded, skipped, pending and failed products."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..exceptions import CatalogError

__all__ = ["DownloadResult"]


@dataclass
class DownloadResult:
    """Outcome of ``catalog.download(...)``, by product id.

    Attributes
    ----------
    downloaded : dict of str to Path
        Products fetched (fully or partly) by this call, and where they are.
    skipped : dict of str to Path
        Products that were already complete on disk: nothing was fetched.
    pending : dict of str to str
        Offline (long-term archive) products whose retrieval was ordered, with
        the reason they are not here yet; run the same download again later.
    failed : dict of str to str
        Products that could not be downloaded, with the reason.

    Examples
    --------
    >>> result = DownloadResult(downloaded={"S2B_X": Path("S2B_X.zip")}, failed={"S2A_Y": "404"})
    >>> result.ok, [p.name for p in result.paths]
    (False, ['S2B_X.zip'])
    >>> print(result.report())
    1 downloaded, 0 already complete, 0 pending (offline), 1 failed
      failed  S2A_Y: 404
    """

    downloaded: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, Path] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def paths(self) -> list[Path]:
        """Paths of every product now on disk (downloaded or already complete)."""
        return [*self.downloaded.values(), *self.skipped.values()]

    @property
    def ok(self) -> bool:
        """True when every product is on disk (nothing pending or failed)."""
        return not self.pending and not self.failed

    def report(self) -> str:
        """A short human-readable summary, one line per pending or failed product."""
        lines = [
            f"{len(self.downloaded)} downloaded, {len(self.skipped)} already complete, "
            f"{len(self.pending)} pending (offline), {len(self.failed)} failed"
        ]
        lines += [f"  pending {pid}: {why}" for pid, why in self.pending.items()]
        lines += [f"  failed  {pid}: {why}" for pid, why in self.failed.items()]
        return "\n".join(lines)

    def raise_for_failures(self) -> None:
        """Raise :class:`~sentinel_cube.exceptions.CatalogError` listing failed products."""
        if self.failed:
            details = "; ".join(f"{pid}: {why}" for pid, why in self.failed.items())
            raise CatalogError(f"{len(self.failed)} product(s) failed to download: {details}")

    def __str__(self) -> str:
        return self.report()
