"""Decoded JPEG 2000 tiles kept per process, so that no tile is decoded twice.

A JPEG 2000 file decodes tile by tile: reading a window costs the whole of every tile
it touches (measured: a 640 px window of 128 px tiles costs 5 x 5 tiles, the same
window shifted by 60 px 6 x 6, 1.4x). Cube chunks fall on a product's tiles only for
the first tile of a zone (other tiles of a zone sit 9,996 px apart, reprojected ones
anywhere), so neighbouring chunks share the tiles along their edges, and each would
decode them again. GDAL's block cache does not help: its JPEG 2000 driver decodes
windows without it, and its cache lives in a file handle, which dask's threads cannot
share (rasterio datasets are not thread-safe). Hence this small cache: decoded tiles
keyed by file and tile, shared by the threads of a process, bounded in bytes, and a
tile being decoded by one thread is waited for, not decoded again, by another.

Only local files are cached (their size and modification time are part of the key,
so a replaced file is read afresh); an object store's objects are read directly.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
from rasterio.windows import Window

__all__ = [
    "MAX_CACHE_BYTES",
    "MIN_CACHE_BYTES",
    "RUN_PIXELS",
    "TileCache",
    "default_budget",
    "tiles",
]

#: Most bytes of decoded tiles kept per process (a 1024 x 1024 uint16 tile is 2 MiB).
#: Chunks share tiles with the chunks beside them and with the next row of chunks, so
#: the cache must hold the tiles along a row of chunks: measured on 4 full-size tiles
#: across two zones (6 x 18 chunks of 2048 px), 256 MiB decoded 1.17x the band files'
#: pixels and 1 GiB 0.89x (each tile once), 25 % less CPU.
MAX_CACHE_BYTES = 2**30
#: The least it keeps, whatever the memory.
MIN_CACHE_BYTES = 128 * 2**20
#: Pixels a thread claims for one decode at most: a run of neighbouring tiles of one row
#: (one tile of ESA's 1024 x 1024 px). A thread that needs tiles another is decoding
#: waits at most for that claim. Claiming a whole window at once, the threads of a
#: full-size 4-tile ingest spent 10 % of their time waiting; one read per run costs
#: nothing measurable over one per window (128 px tiles: 8 row reads 0.144 s, one
#: window read 0.147 s, 64 tile reads 0.153 s of CPU).
RUN_PIXELS = 2**20


def default_budget() -> int:
    """Bytes of tiles a process keeps: ``SENTINEL_CUBE_TILE_CACHE_MB`` if set (``0``
    turns the cache off), else 1/8 of a ``dask.distributed`` worker's memory limit or
    1/20 of the machine's memory (GDAL's own default block cache is 5 %), within
    :data:`MIN_CACHE_BYTES` and :data:`MAX_CACHE_BYTES`.

    Examples
    --------
    >>> MIN_CACHE_BYTES <= default_budget() <= MAX_CACHE_BYTES
    True
    """
    if (setting := os.environ.get("SENTINEL_CUBE_TILE_CACHE_MB")) is not None:
        return int(float(setting) * 2**20)
    share = None
    if "distributed" in sys.modules:  # else not on a worker (importing it takes ~0.1 s)
        try:
            from distributed import get_worker

            limit = get_worker().memory_manager.memory_limit
            share = limit // 8 if limit else None
        except (ValueError, AttributeError):  # not on a worker
            pass
    if share is None:
        share = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 20
    return int(max(MIN_CACHE_BYTES, min(MAX_CACHE_BYTES, share)))


#: ``decode(window)``: the uint16 pixels of a tile-aligned window of one file
Decode = Callable[[Window], np.ndarray]


class TileCache:
    """Decoded tiles of files, keyed by ``(file key, tile row, tile column)``.

    Parameters
    ----------
    max_bytes
        Least recently used tiles are dropped beyond this size (default
        :func:`default_budget`, decided at the first read, so that on a
        ``dask.distributed`` worker it follows the worker's memory limit).

    Examples
    --------
    >>> data = np.arange(30, dtype=np.uint16).reshape(5, 6)
    >>> decoded = []
    >>> def decode(w):
    ...     decoded.append((w.row_off, w.col_off, w.height, w.width))
    ...     return data[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width]
    >>> cache = TileCache(max_bytes=1000)
    >>> cache.read("f", (5, 6), (2, 4), Window(3, 1, 2, 2), decode).tolist()
    [[9, 10], [15, 16]]
    >>> cache.read("f", (5, 6), (2, 4), Window(1, 2, 4, 1), decode).tolist()  # no decode
    [[13, 14, 15, 16]]
    >>> decoded  # one read per row of the tiles under the first window
    [(0, 0, 2, 6), (2, 0, 2, 6)]
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        self._max_bytes = max_bytes
        self._tiles: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._pending: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()
        self._bytes = 0
        #: tiles decoded since creation (for tests and benchmarks)
        self.decoded = 0

    @property
    def max_bytes(self) -> int:
        """The budget in bytes."""
        if self._max_bytes is None:
            self._max_bytes = default_budget()
        return self._max_bytes

    def read(
        self,
        file: Hashable,
        shape: tuple[int, int],
        block: tuple[int, int],
        window: Window,
        decode: Decode,
        only: set[tuple[int, int]] | None = None,
        dtype: Any = np.uint16,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """The pixels of ``window`` (inside a file of ``shape`` tiled in ``block``
        pixels), decoding through ``decode`` only the tiles not already held.

        ``only``: the ``(tile row, tile column)`` to read; the pixels of the other tiles
        under the window are 0 (of ``dtype`` when no tile is read). ``out``: an array of
        the window's shape to write into (returned), whose pixels outside ``only``'s
        tiles are left as they are.
        """
        row0, col0 = int(window.row_off), int(window.col_off)
        row1, col1 = row0 + int(window.height), col0 + int(window.width)
        wanted = tiles(block, row0, row1, col0, col1)
        if only is not None:
            wanted = [tile for tile in wanted if tile in only]
        found: dict[tuple[int, int], np.ndarray] = {}
        todo = wanted
        longest = max(1, RUN_PIXELS // (block[0] * block[1]))
        while todo:
            with self._lock:
                todo, mine, busy = self._claim(file, todo, found, longest)
            if mine:
                try:
                    found.update(self._decode(file, shape, block, mine, decode))
                finally:  # decoded or failed: whoever waits for these tiles goes on
                    with self._lock:
                        for tile in mine:
                            self._pending.pop((file, *tile)).set()
                todo = [tile for tile in todo if tile not in found]
            elif busy is not None:
                # every tile left is being decoded by other threads: wait for the first,
                # then look again (if its decode failed, this thread claims it)
                busy.wait()
        if out is None and not found:
            return np.zeros((row1 - row0, col1 - col0), dtype=dtype)
        if out is None:
            dtype = next(iter(found.values())).dtype
            out = (np.empty if only is None else np.zeros)((row1 - row0, col1 - col0), dtype)
        height, width = block
        for (tile_row, tile_col), array in found.items():
            top, left = tile_row * height, tile_col * width
            r0, r1 = max(row0, top), min(row1, top + array.shape[0])
            c0, c1 = max(col0, left), min(col1, left + array.shape[1])
            out[r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] = array[
                r0 - top : r1 - top, c0 - left : c1 - left
            ]
        return out

    def _claim(
        self,
        file: Hashable,
        todo: list[tuple[int, int]],
        found: dict[tuple[int, int], np.ndarray],
        longest: int,
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]], threading.Event | None]:
        """Under the lock: move the held tiles of ``todo`` into ``found``, and claim the
        first run of neighbouring tiles in one tile row (at most ``longest``) that no
        thread is decoding.

        Returns the tiles still to get, the claimed run (empty when every tile left is
        being decoded elsewhere) and the event of the first such tile. A run, not all
        the tiles at once: two threads reading neighbouring windows then share out the
        tiles under both, instead of one waiting for the other's whole window.
        """
        left: list[tuple[int, int]] = []
        mine: list[tuple[int, int]] = []
        busy = None
        for tile in todo:
            key = (file, *tile)
            if (array := self._tiles.get(key)) is not None:
                self._tiles.move_to_end(key)
                found[tile] = array
                continue
            left.append(tile)
            if (event := self._pending.get(key)) is not None:
                busy = busy or event
            elif not mine or (tile == (mine[-1][0], mine[-1][1] + 1) and len(mine) < longest):
                self._pending[key] = threading.Event()
                mine.append(tile)
        return left, mine, busy

    def _decode(
        self,
        file: Hashable,
        shape: tuple[int, int],
        block: tuple[int, int],
        run: list[tuple[int, int]],
        decode: Decode,
    ) -> dict[tuple[int, int], np.ndarray]:
        """Decode a ``run`` of neighbouring tiles of one tile row in one read; keep them."""
        height, width = block
        tile_row, first, last = run[0][0], run[0][1], run[-1][1]
        top, left = tile_row * height, first * width
        bottom, right = min(shape[0], top + height), min(shape[1], (last + 1) * width)
        data = decode(Window(left, top, right - left, bottom - top))
        result: dict[tuple[int, int], np.ndarray] = {}
        for tile_col in range(first, last + 1):
            c0 = tile_col * width - left
            tile = data[:, c0 : c0 + width].copy()  # not a view of `data`
            tile.flags.writeable = False
            result[(tile_row, tile_col)] = tile
        self._keep(file, result)
        return result

    def _keep(self, file: Hashable, decoded: dict[tuple[int, int], np.ndarray]) -> None:
        with self._lock:
            self.decoded += len(decoded)
            for tile, array in decoded.items():
                key = (file, *tile)
                if (old := self._tiles.pop(key, None)) is not None:
                    self._bytes -= old.nbytes
                self._tiles[key] = array
                self._bytes += array.nbytes
            while self._bytes > self.max_bytes and self._tiles:
                _, dropped = self._tiles.popitem(last=False)
                self._bytes -= dropped.nbytes

    def clear(self) -> None:
        """Forget every tile held (tiles being decoded are kept when they are done)."""
        with self._lock:
            self._tiles.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        """Bytes of the tiles held."""
        return self._bytes


def tiles(
    block: tuple[int, int], row0: int, row1: int, col0: int, col1: int
) -> list[tuple[int, int]]:
    """``(tile row, tile column)`` of the ``block``-sized tiles under rows ``row0:row1``
    and columns ``col0:col1``.

    Examples
    --------
    >>> tiles((1024, 1024), 1000, 1100, 0, 2048)
    [(0, 0), (0, 1), (1, 0), (1, 1)]
    """
    height, width = block
    return [
        (r, c)
        for r in range(row0 // height, (row1 - 1) // height + 1)
        for c in range(col0 // width, (col1 - 1) // width + 1)
    ]
