"""The decoded-tile cache: the same pixels as rasterio, each tile decoded once, even
by threads racing for it, failures never hang or poison it, and it stays in budget."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.io import MemoryFile
from rasterio.shutil import copy as rio_copy
from rasterio.windows import Window

from sentinel_cube import _read
from sentinel_cube._graph import mosaic
from sentinel_cube._source import Source
from sentinel_cube._tiles import TileCache, tiles
from sentinel_cube.grid import Grid

ORIGIN = (300000.0, 5300040.0)


def _jp2(path, data, origin=ORIGIN, block=64):
    """A lossless JP2 of ``block`` px tiles (GDAL's CreateCopy honours them)."""
    transform = Affine(10.0, 0, origin[0], 0, -10.0, origin[1])
    with MemoryFile() as memory:
        height, width = data.shape
        with memory.open(driver="GTiff", width=width, height=height, count=1, dtype=data.dtype,
                         crs="EPSG:32634", transform=transform) as tiff:  # fmt: skip
            tiff.write(data, 1)
            rio_copy(tiff, str(path), driver="JP2OpenJPEG", QUALITY="100", REVERSIBLE="YES",
                     YCC="NO", BLOCKXSIZE=block, BLOCKYSIZE=block, RESOLUTIONS=3)  # fmt: skip
    with rasterio.open(path) as dataset:
        assert dataset.block_shapes[0] == (block, block)
    return Source(str(path), "EPSG:32634", transform, data.shape, "P")


class Counting(TileCache):
    """Counts the decodes of each tile."""

    def __init__(self, max_bytes=2**30):
        super().__init__(max_bytes)
        self.count: dict[tuple[int, int], int] = {}  # decodes per tile
        self.files: dict[str, set[tuple[int, int]]] = {}  # tiles decoded per file
        self.counting = threading.Lock()

    def _decode(self, file, shape, block, wanted, decode):
        with self.counting:
            for tile in wanted:
                key = (file[0] if isinstance(file, tuple) else file, *tile)
                self.count[key] = self.count.get(key, 0) + 1
                self.files.setdefault(key[0], set()).add(tile)
        return super()._decode(file, shape, block, wanted, decode)


@pytest.fixture(scope="module")
def odd_file(tmp_path_factory):
    """300 x 200 px of 64 px tiles: the last row and column of tiles are partial."""
    data = np.random.default_rng(1).integers(1, 65535, size=(300, 200), dtype=np.uint16)
    return _jp2(tmp_path_factory.mktemp("tiles") / "odd.jp2", data), data


def test_random_windows_equal_rasterio_and_decode_each_tile_once(odd_file, monkeypatch):
    source, data = odd_file
    cache = Counting()
    monkeypatch.setattr(_read, "TILE_CACHE", cache)
    rng = np.random.default_rng(2)
    with rasterio.open(source.path) as dataset:
        for _ in range(60):
            row, col = int(rng.integers(0, 299)), int(rng.integers(0, 199))
            height, width = int(rng.integers(1, 301 - row)), int(rng.integers(1, 201 - col))
            window = Window(col, row, width, height)
            got = _read._window(dataset, source.path, {}, window)
            np.testing.assert_array_equal(got, dataset.read(1, window=window))
            np.testing.assert_array_equal(got, data[row : row + height, col : col + width])
    assert set(cache.count.values()) == {1}
    assert cache.files[source.path] <= {(r, c) for r in range(5) for c in range(4)}


def test_only_the_chosen_tiles_are_decoded_and_the_rest_is_zero(odd_file, monkeypatch):
    source, data = odd_file
    cache = Counting()
    monkeypatch.setattr(_read, "TILE_CACHE", cache)
    window = Window(50, 40, 120, 200)  # tiles rows 0-3, columns 0-2
    with rasterio.open(source.path) as dataset:
        got = _read._window(dataset, source.path, {}, window, only={(1, 1), (3, 0)})
    expected = np.zeros((200, 120), dtype=np.uint16)
    for r, c in [(1, 1), (3, 0)]:  # their pixels, cut independently from the array
        r0, r1 = max(40, r * 64), min(240, (r + 1) * 64)
        c0, c1 = max(50, c * 64), min(170, (c + 1) * 64)
        expected[r0 - 40 : r1 - 40, c0 - 50 : c1 - 50] = data[r0:r1, c0:c1]
    np.testing.assert_array_equal(got, expected)
    assert set(cache.count.values()) == {1}
    assert cache.files == {source.path: {(1, 1), (3, 0)}}
    # into a given array (a view of a larger one): the chosen tiles' pixels are written,
    # the others keep what was there; then, whole, the window as rasterio reads it
    canvas = np.full((210, 130), 7, dtype=np.uint16)
    view = canvas[5:205, 3:123]
    with rasterio.open(source.path) as dataset:
        back = _read._window(dataset, source.path, {}, window, only={(1, 1), (3, 0)}, out=view)
        assert back is view
        chosen = expected != 0
        np.testing.assert_array_equal(view[chosen], expected[chosen])
        assert (view[~chosen] == 7).all() and (canvas[:5] == 7).all() and (canvas[:, :3] == 7).all()
        _read._window(dataset, source.path, {}, window, out=view)
        np.testing.assert_array_equal(view, dataset.read(1, window=window))
    assert set(cache.count.values()) == {1}  # every tile still decoded once


def test_threads_racing_for_the_same_tiles_decode_each_once():
    data = np.arange(512 * 512, dtype=np.uint32).reshape(512, 512).astype(np.uint16)
    cache = Counting()
    started = threading.Barrier(8)

    def decode(window):
        time.sleep(0.01)  # a slow decode: the others arrive while it runs
        return data[window.row_off : window.row_off + window.height,
                    window.col_off : window.col_off + window.width].copy()  # fmt: skip

    def job(k):
        started.wait()
        window = Window(17 * k, 23 * k, 300, 280)
        return k, cache.read("f", (512, 512), (64, 64), window, decode)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(job, range(8)))
    for k, got in results:
        np.testing.assert_array_equal(got, data[23 * k : 23 * k + 280, 17 * k : 17 * k + 300])
    assert set(cache.count.values()) == {1}
    union = {
        t for k in range(8) for t in tiles((64, 64), 23 * k, 23 * k + 280, 17 * k, 17 * k + 300)
    }
    assert cache.files["f"] == union


def test_a_failed_decode_raises_there_and_waiters_decode_it_themselves():
    data = np.ones((128, 128), dtype=np.uint16)
    cache = TileCache()
    failing = threading.Event()
    calls = []

    def decode(window):
        calls.append(threading.get_ident())
        if len(calls) == 1:
            failing.set()
            time.sleep(0.05)  # the waiter is waiting now
            raise rasterio.errors.RasterioIOError("corrupt tile")
        return data[: window.height, : window.width].copy()

    def first():
        return cache.read("f", (128, 128), (64, 64), Window(0, 0, 64, 64), decode)

    def second():
        failing.wait()
        return cache.read("f", (128, 128), (64, 64), Window(0, 0, 64, 64), decode)

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.submit(first), pool.submit(second)
        with pytest.raises(rasterio.errors.RasterioIOError, match="corrupt tile"):
            a.result(timeout=10)
        np.testing.assert_array_equal(b.result(timeout=10), data[:64, :64])
    assert len(calls) == 2
    assert not cache._pending  # nothing left claimed


def test_the_cache_keeps_to_its_budget_dropping_the_least_recently_used():
    cache = TileCache(max_bytes=3 * 64 * 64 * 2)  # three uint16 tiles

    def decode(window):
        return np.full((window.height, window.width), window.col_off // 64 + 1, dtype=np.uint16)

    for col in (0, 64, 128):
        cache.read("f", (64, 512), (64, 64), Window(col, 0, 64, 64), decode)
    cache.read("f", (64, 512), (64, 64), Window(0, 0, 1, 1), decode)  # tile 0 used again
    cache.read("f", (64, 512), (64, 64), Window(192, 0, 64, 64), decode)  # drops tile 1
    assert cache.nbytes <= cache.max_bytes
    assert [key[2] for key in cache._tiles] == [2, 0, 3]


def test_a_replaced_file_is_read_afresh(tmp_path, monkeypatch):
    monkeypatch.setattr(_read, "TILE_CACHE", TileCache())
    path = tmp_path / "b.jp2"
    first = np.full((100, 100), 7, dtype=np.uint16)
    source = _jp2(path, first)
    window = Window(0, 0, 100, 100)
    with rasterio.open(path) as dataset:
        np.testing.assert_array_equal(_read._window(dataset, str(path), {}, window), first)
    second = np.random.default_rng(3).integers(1, 9999, size=(100, 100), dtype=np.uint16)
    _jp2(path, second)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # even within the clock tick
    with rasterio.open(source.path) as dataset:
        np.testing.assert_array_equal(_read._window(dataset, str(path), {}, window), second)


def test_files_that_are_not_local_are_not_cached(monkeypatch):
    cache = TileCache()
    monkeypatch.setattr(_read, "TILE_CACHE", cache)
    data = np.arange(128 * 128, dtype=np.uint16).reshape(128, 128)
    with MemoryFile() as memory:
        with memory.open(driver="GTiff", width=128, height=128, count=1, dtype="uint16") as tiff:
            tiff.write(data, 1)
            rio_copy(tiff, "/vsimem/x.jp2", driver="JP2OpenJPEG", QUALITY="100",
                     REVERSIBLE="YES", BLOCKXSIZE=64, BLOCKYSIZE=64)  # fmt: skip
    try:
        with rasterio.open("/vsimem/x.jp2") as dataset:
            for only in (None, {(1, 1)}):
                got = _read._window(dataset, "/vsimem/x.jp2", {}, Window(10, 10, 100, 100), only)
                if only is None:
                    np.testing.assert_array_equal(got, data[10:110, 10:110])
                else:
                    np.testing.assert_array_equal(got[54:, 54:], data[64:110, 64:110])
                    assert not got[:54].any() and not got[:, :54].any()
    finally:
        rasterio.shutil.delete("/vsimem/x.jp2")
    assert cache.decoded == 0


def test_later_products_of_a_mosaic_decode_only_tiles_under_pixels_left_empty(
    tmp_path, monkeypatch
):
    """Two overlapping products; the first has a hole of no data. The second must be
    read only under the hole and outside the first, and the mosaic must equal a numpy
    mosaic of the two arrays."""
    rng = np.random.default_rng(4)
    a = rng.integers(1, 60000, size=(320, 320), dtype=np.uint16)
    a[100:150, 200:260] = 0  # a hole of no data inside the first product
    b = rng.integers(1, 60000, size=(320, 320), dtype=np.uint16)
    shift = 130  # the second product starts 130 px east and south of the first
    first = _jp2(tmp_path / "a.jp2", a)
    second = _jp2(tmp_path / "b.jp2", b, (ORIGIN[0] + 10 * shift, ORIGIN[1] - 10 * shift))
    cache = Counting()
    monkeypatch.setattr(_read, "TILE_CACHE", cache)
    grid = Grid("EPSG:32634", Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]), (450, 450))
    reader = SimpleNamespace(units="dn", resampling="nearest", reduced_levels=None, env=(),
                             reader=None, on_error="raise")  # fmt: skip
    # offsets of baseline 04.00: harmonized DN are the file's DN
    got = mosaic("B04", [first, second], [-1000.0, -1000.0], [10000.0, 10000.0], grid, reader)
    # expected independently: the two arrays placed on the grid, first valid wins
    expected = np.zeros((450, 450), dtype=np.uint16)
    expected[shift:, shift:] = b
    placed_a = np.zeros_like(expected)
    placed_a[:320, :320] = a
    np.copyto(expected, placed_a, where=placed_a != 0)
    np.testing.assert_array_equal(got, expected)
    # the second product's tiles under pixels the first left empty, and only those
    empty = placed_a[shift:, shift:] == 0
    rows, cols = np.nonzero(empty)
    wanted = set(zip((rows // 64).tolist(), (cols // 64).tolist(), strict=True))
    assert set(cache.count.values()) == {1}
    assert len(cache.files[first.path]) == 25  # all of the first product's 5 x 5 tiles
    assert cache.files[second.path] == wanted and len(wanted) < 25


@pytest.mark.parametrize(("step", "offset"), [(1, 37), (2, 38), (6, 5), (3, 127)])
def test_tiles_under_a_mask_equal_a_pixel_by_pixel_count(step, offset):
    """Tiles of 64 px under the pixels of a random mask of ``step`` px output pixels
    starting ``offset`` px into the file, against a loop over every file pixel read."""
    rng = np.random.default_rng(step)
    mask = rng.random((70, 90)) < 0.02
    rows = offset + np.arange(70) * step
    cols = offset + np.arange(90) * step
    got = _read._tiles_under(mask, (rows, rows + step - 1), (cols, cols + step - 1), (64, 64))
    expected = set()
    for i, j in zip(*np.nonzero(mask), strict=True):
        for r in range(rows[i], rows[i] + step):
            for c in range(cols[j], cols[j] + step):
                expected.add((r // 64, c // 64))
    assert got == expected and expected


def test_the_budget_follows_the_setting_the_worker_and_the_machine(monkeypatch):
    from distributed import Client, LocalCluster

    from sentinel_cube._tiles import MAX_CACHE_BYTES, MIN_CACHE_BYTES, default_budget

    monkeypatch.setenv("SENTINEL_CUBE_TILE_CACHE_MB", "0")
    assert default_budget() == 0 and TileCache().max_bytes == 0
    monkeypatch.setenv("SENTINEL_CUBE_TILE_CACHE_MB", "12.5")
    assert default_budget() == 12.5 * 2**20
    monkeypatch.delenv("SENTINEL_CUBE_TILE_CACHE_MB")
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert default_budget() == max(MIN_CACHE_BYTES, min(MAX_CACHE_BYTES, machine // 20))
    # on a worker: an eighth of its memory limit
    options = dict(protocol="tcp", host="127.0.0.1", memory_limit="2GiB", dashboard_address=None)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, **options) as cluster:
        with Client(cluster) as client:
            assert client.submit(default_budget, pure=False).result() == 2 * 2**30 // 8


def test_a_thread_waiting_for_tiles_decodes_the_others_meanwhile():
    """Two threads want the same 3 x 3 tiles. While the first is stuck decoding its first
    row, the second decodes the two other rows (it does not wait for the first's whole
    window), then waits only for that row; each tile is decoded once."""
    data = np.arange(30 * 30, dtype=np.uint16).reshape(30, 30)
    gate = threading.Event()
    calls: list[tuple[str, int]] = []

    def decode(window):
        calls.append((threading.current_thread().name, window.row_off // 10))
        if threading.current_thread().name == "first":
            gate.wait(10)
        return data[window.row_off : window.row_off + window.height,
                    window.col_off : window.col_off + window.width].copy()  # fmt: skip

    cache = TileCache(max_bytes=2**20)
    results = {}

    def job():
        name = threading.current_thread().name
        results[name] = cache.read("f", (30, 30), (10, 10), Window(0, 0, 30, 30), decode)

    first = threading.Thread(target=job, name="first")
    first.start()
    while not calls:  # the first thread holds row 0
        time.sleep(0.001)
    second = threading.Thread(target=job, name="second")
    second.start()
    deadline = time.monotonic() + 10
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert calls == [("first", 0), ("second", 1), ("second", 2)]  # before row 0 is done
    gate.set()
    first.join(10)
    second.join(10)
    assert len(calls) == 3 and cache.decoded == 9
    for name in ("first", "second"):
        np.testing.assert_array_equal(results[name], data)
