"""Turn names chosen by a remote server into safe local paths.

A catalogue controls product names, node paths and asset file names. Before any
of them becomes a path it goes through :func:`safe_relpath`: ``..`` components,
absolute paths, drive letters and NUL bytes are refused (a server that sends
them is broken or hostile, so nothing is written); characters that are invalid
in file names on common systems are replaced by ``_``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from ._errors import UnsafeNameError

__all__ = ["safe_join", "safe_name", "safe_relpath"]

_REPLACE = re.compile(r'[\x00-\x1f<>:"|?*]')
_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_name(name: str, what: str = "remote name") -> str:
    """One path component from a remote name, or raise :class:`UnsafeNameError`.

    Parameters
    ----------
    name : str
        The name as the server sent it.
    what : str
        What the name is, for the error message (``"product name"``).

    Examples
    --------
    >>> safe_name("S2B_MSIL2A_20230810T094549_N0509_R079_T34TCT_20230810T124346.zip")
    'S2B_MSIL2A_20230810T094549_N0509_R079_T34TCT_20230810T124346.zip'
    >>> safe_name("a?b")
    'a_b'
    >>> safe_name("../etc")
    Traceback (most recent call last):
    ...
    sentinel_cube.catalog._errors.UnsafeNameError: the remote name '../etc' ...
    """
    text = str(name)
    if "\x00" in text or "/" in text or "\\" in text or _DRIVE.match(text):
        raise _unsafe(name, what)
    cleaned = _REPLACE.sub("_", text).strip()
    if cleaned in ("", ".", "..") or cleaned.startswith(".."):
        raise _unsafe(name, what)
    return cleaned


def safe_relpath(path: str, what: str = "remote path") -> str:
    """A relative POSIX path whose every part passes :func:`safe_name`.

    A leading ``./`` is dropped (``manifest.safe`` writes ``./GRANULE/...``).

    Examples
    --------
    >>> safe_relpath("./GRANULE/L2A_T34TCT/IMG_DATA/R10m/T34TCT_B04_10m.jp2")
    'GRANULE/L2A_T34TCT/IMG_DATA/R10m/T34TCT_B04_10m.jp2'
    >>> safe_relpath("/etc/passwd")
    Traceback (most recent call last):
    ...
    sentinel_cube.catalog._errors.UnsafeNameError: the remote path '/etc/passwd' ...
    """
    text = str(path).replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    if not text or text.startswith("/") or _DRIVE.match(text):
        raise _unsafe(path, what)
    parts = PurePosixPath(text).parts
    if not parts:
        raise _unsafe(path, what)
    try:
        return "/".join(safe_name(part, what) for part in parts)
    except UnsafeNameError:
        raise _unsafe(path, what) from None


def safe_join(root: str | os.PathLike[str], relpath: str, what: str = "remote path") -> Path:
    """``root / relpath`` after :func:`safe_relpath`, checked to stay inside ``root``.

    Examples
    --------
    >>> safe_join("/data", "a/b.jp2").as_posix()
    '/data/a/b.jp2'
    """
    base = Path(root)
    target = base / safe_relpath(relpath, what)
    resolved_base = base.resolve()
    resolved = target.resolve()
    if resolved != resolved_base and resolved_base not in resolved.parents:
        raise _unsafe(relpath, what)  # a symlink inside root pointing outside
    return target


def _unsafe(name: object, what: str) -> UnsafeNameError:
    return UnsafeNameError(
        f"the {what} {str(name)!r} would be written outside the download folder "
        "(it holds '..', an absolute path or a drive letter); nothing was written - the "
        "server sent a broken or hostile name, report it to the catalogue operator"
    )
