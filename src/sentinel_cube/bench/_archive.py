"""Generated archives for benchmarks, made once and cached on disk.

Each archive lives in its own folder named after a hash of its parameters. It is
generated in a hidden temporary folder and renamed into place only when complete, so an
interrupted generation is never reused (its leftovers are removed on the next call).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["FORMAT", "archive_dates", "cached_archive"]

#: Bump when the generator's output changes so old cached archives are not reused.
FORMAT = 1

#: Relative orbit 79 passes over Budapest every 5 days from this day (S2B, then S2A).
FIRST_DATE = dt.date(2023, 6, 1)


def archive_dates(n: int) -> tuple[str, ...]:
    """``n`` acquisition days of relative orbit 79, every 5 days from 2023-06-01.

    Examples
    --------
    >>> archive_dates(3)
    ('2023-06-01', '2023-06-06', '2023-06-11')
    """
    return tuple((FIRST_DATE + dt.timedelta(days=5 * i)).isoformat() for i in range(n))


def cached_archive(
    parent: str | os.PathLike[str],
    name: str,
    *,
    tiles: Sequence[str],
    dates: Sequence[str],
    bands: Sequence[str] | None,
    scale: int,
    zipped: bool = False,
    all_resolutions: bool = False,
) -> tuple[Path, tuple[Path, ...]]:
    """The archive of these parameters under ``parent``, generated first if needed.

    Products are those of :func:`sentinel_cube.testing.default_specs` for ``tiles`` x
    ``dates`` with no swath edge (every product covers its whole tile), written by
    :func:`sentinel_cube.testing.make_archive`.

    Returns
    -------
    (Path, tuple of Path)
        The archive's folder (``parent/NAME-sSCALE-HASH``) and its product paths in
        spec order (by date, then tile).

    Raises
    ------
    ValueError
        A ``scale`` that does not divide 1830, or an unknown tile.
    """
    from ..testing import ALLOWED_SCALES, default_specs, make_archive

    if scale not in ALLOWED_SCALES:
        raise ValueError(f"scale={scale} must divide 1830 (e.g. 1, 10, 30, 61)")
    params = {
        "format": FORMAT,
        "tiles": list(tiles),
        "dates": list(dates),
        "bands": None if bands is None else list(bands),
        "scale": int(scale),
        "zipped": bool(zipped),
        "all_resolutions": bool(all_resolutions),
    }
    digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    parent = Path(parent)
    final = parent / f"{name}-s{scale}-{digest}"
    specs = default_specs(tiles=tuple(tiles), dates=tuple(dates), partial=None)
    suffix = ".zip" if zipped else ".SAFE"
    paths = tuple(final / f"{spec.name}{suffix}" for spec in specs)

    def make(work: Path) -> None:
        make_archive(
            work, specs, scale=scale, bands=bands, zipped=zipped,
            all_resolutions=all_resolutions,
        )  # fmt: skip
        (work / "archive.json").write_text(json.dumps(params, indent=1), encoding="utf-8")

    build_once(final, make, marker="archive.json")
    return final, paths


def build_once(final: Path, make: Callable[[Path], None], marker: str = "done") -> Path:
    """Folder ``final``, filled once by ``make(folder)`` and then reused.

    ``make`` fills a hidden temporary sibling folder, which gets a ``marker`` file (if
    ``make`` did not write it) and is renamed into place when ``make`` returns: an
    interrupted run is never reused, and its leftovers are removed once its process is
    gone. Of two processes building the same folder, the first rename wins.
    """
    if (final / marker).exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(final.parent)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", dir=final.parent))
    try:
        make(work)
        if not (work / marker).exists():
            (work / marker).write_text("ok", encoding="utf-8")
        try:
            os.replace(work, final)
        except OSError:  # another process finished the same folder first
            if not (final / marker).exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def _remove_stale(parent: Path) -> None:
    """Delete temporary folders left by generations whose process is gone."""
    for entry in parent.glob(".*.*.*"):
        try:
            pid = int(entry.name.rsplit(".", 2)[-2])
        except (ValueError, IndexError):
            continue
        if not _alive(pid):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
