"""A folder served over HTTP on the loopback, with ``Range`` support.

Serves the files under a root as ``/<relative path>`` (``GET`` and ``HEAD``, single
``bytes=N-M`` ranges answered ``206``), reading only the requested bytes, so GDAL's
``/vsicurl/`` and fsspec read band files of any size from it as from a static web
server or a public bucket. The request log is :attr:`LoopbackServer.requests`.

Examples
--------
>>> with FolderServer("archive/") as server:                          # doctest: +SKIP
...     open_cube([f"{server.url}/S2B_MSIL2A_....zip"], bands=["B04"])
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ._loopback import LoopbackServer, send_bytes

__all__ = ["FolderServer"]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def _span(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (inclusive) of a ``Range`` header, None for the whole file."""
    match = _RANGE.match((header or "").strip())
    if not match or not (match.group(1) or match.group(2)):
        return None
    if not match.group(1):  # a suffix: the last N bytes
        return max(0, size - int(match.group(2))), size - 1
    start = int(match.group(1))
    end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
    return start, end


class FolderServer(LoopbackServer):
    """Serve the files under ``root`` at ``/<relative path>`` (see the module docstring).

    Parameters
    ----------
    root : path
        The folder; files added after the server started are served too.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        super().__init__()
        self.root = Path(root)

    def _file(self, request_path: str) -> Path | None:
        relative = request_path.split("?", 1)[0].lstrip("/")
        path = (self.root / relative).resolve()
        inside = self.root.resolve() in path.parents
        return path if inside and path.is_file() else None

    def handle(self, handler: Any, method: str) -> None:
        path = self._file(handler.path)
        if path is None:
            send_bytes(handler, 404, b"", "text/plain", head=method == "HEAD")
            return
        size = path.stat().st_size
        span = _span(handler.headers.get("Range"), size)
        if span is not None and span[0] >= size:
            send_bytes(handler, 416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
            return
        start, end = span if span is not None else (0, size - 1)
        handler.send_response(206 if span is not None else 200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(end - start + 1))
        handler.send_header("Accept-Ranges", "bytes")
        if span is not None:
            handler.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        handler.end_headers()
        if method == "HEAD":
            return
        with self.streaming(), open(path, "rb") as source:
            source.seek(start)
            _copy(source, handler.wfile, end - start + 1)


def _copy(source: Any, target: Any, length: int) -> None:
    """Copy ``length`` bytes from ``source`` to ``target`` in 1 MiB pieces."""
    left = length
    while left > 0:
        piece = source.read(min(left, 1 << 20))
        if not piece:
            break
        target.write(piece)
        left -= len(piece)
