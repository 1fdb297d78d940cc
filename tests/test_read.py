"""The pixel reader against rasterio reads and warps of the same files."""

from __future__ import annotations

import os

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from rasterio.shutil import copy as rio_copy

from _cube_helpers import nearest_dn
from sentinel_cube import ProductError, SentinelCubeWarning
from sentinel_cube._read import Source, read_source
from sentinel_cube._tiles import TileCache
from sentinel_cube.grid import Grid

ORIGIN = (300000.0, 5300040.0)


def _write_jp2(path, data, res, origin=ORIGIN, crs="EPSG:32634", block=128):
    transform = Affine(res, 0, origin[0], 0, -res, origin[1])
    with rasterio.open(
        path, "w", driver="JP2OpenJPEG", width=data.shape[1], height=data.shape[0], count=1,
        dtype="uint16", crs=crs, transform=transform, QUALITY=100, REVERSIBLE="YES",
        YCC="NO", BLOCKXSIZE=block, BLOCKYSIZE=block, RESOLUTIONS=4,
    ) as dst:  # fmt: skip
        dst.write(data, 1)
    return Source(str(path), crs, transform, data.shape, "TEST")


@pytest.fixture(scope="module")
def band(tmp_path_factory):
    rng = np.random.default_rng(42)
    data = rng.integers(1, 60000, size=(512, 512), dtype=np.uint16)
    return _write_jp2(tmp_path_factory.mktemp("read") / "b.jp2", data, 10.0), data


def test_native_window_equals_rasterio(band):
    source, data = band
    grid = Grid("EPSG:32634", Affine(10, 0, ORIGIN[0] + 1000, 0, -10, ORIGIN[1] - 500), (100, 70))
    np.testing.assert_array_equal(read_source(source, grid), data[50:150, 100:170])


def test_window_overhanging_the_file_is_no_data(band):
    source, data = band
    grid = Grid("EPSG:32634", Affine(10, 0, ORIGIN[0] - 200, 0, -10, ORIGIN[1] + 100), (40, 50))
    out = read_source(source, grid)
    assert (out[:10] == 0).all() and (out[:, :20] == 0).all()
    np.testing.assert_array_equal(out[10:, 20:], data[:30, :30])


def test_grid_outside_the_file_reads_nothing(band):
    source, _ = band
    grid = Grid("EPSG:32634", Affine(10, 0, 0, 0, -10, 0), (8, 8))
    assert (read_source(source, grid) == 0).all()


def test_upsampling_repeats_pixels(tmp_path):
    data = np.arange(1, 64 * 64 + 1, dtype=np.uint16).reshape(64, 64)
    source = _write_jp2(tmp_path / "b20.jp2", data, 20.0)
    # a 10 m grid starting half a 20 m pixel inside the file
    grid = Grid("EPSG:32634", Affine(10, 0, ORIGIN[0] + 10, 0, -10, ORIGIN[1] - 30), (21, 17))
    expected = np.repeat(np.repeat(data, 2, 0), 2, 1)[3:24, 1:18]
    np.testing.assert_array_equal(read_source(source, grid), expected)


def test_downsampling_without_levels_picks_centre_pixels(band):
    source, data = band
    grid = Grid("EPSG:32634", Affine(60, 0, ORIGIN[0], 0, -60, ORIGIN[1]), (8, 8))
    out = read_source(source, grid, reduced_levels=False)
    np.testing.assert_array_equal(out, data[3:48:6, 3:48:6])


def test_averaging_downsampling_uses_the_reduced_resolution_level(band):
    source, _ = band
    grid = Grid("EPSG:32634", Affine(20, 0, ORIGIN[0] + 40, 0, -20, ORIGIN[1] - 80), (64, 32))
    with rasterio.open(source.path, OVERVIEW_LEVEL=0) as level1:  # the codec's 2x level
        expected = level1.read(1)[4:68, 2:34]
    np.testing.assert_array_equal(read_source(source, grid, Resampling.average), expected)
    # nearest uses the level only when asked to (an approximation)
    np.testing.assert_array_equal(read_source(source, grid, reduced_levels=True), expected)
    assert not np.array_equal(read_source(source, grid), expected)


# --------------------------------------------------------------- reads mean what they say


@pytest.fixture(scope="module")
def sizes(tmp_path_factory):
    """A band too small for JP2 reduced levels and one large enough to have them."""
    folder = tmp_path_factory.mktemp("sizes")
    rng = np.random.default_rng(7)
    files = {}
    for name, side in (("small", 60), ("large", 600)):
        data = rng.integers(1, 60000, size=(side, side), dtype=np.uint16)
        files[name] = (_write_jp2(folder / f"{name}.jp2", data, 10.0, block=side), data)
    with (
        rasterio.open(files["small"][0].path) as small,
        rasterio.open(files["large"][0].path) as large,
    ):
        assert small.overviews(1) == []  # no reduced level: read at full resolution
        assert large.overviews(1)[:2] == [2, 4]  # the fast path really has levels to use
    return files


def _footprints(data, factor, row0, col0, shape):
    """(rows, cols, factor**2) source pixels under each output pixel (numpy only)."""
    rows, cols = shape
    block = data[row0 : row0 + rows * factor, col0 : col0 + cols * factor].astype(np.int64)
    return block.reshape(rows, factor, cols, factor).transpose(0, 2, 1, 3).reshape(rows, cols, -1)


def _grid_on(source, factor, row0, col0, shape):
    t = source.transform
    transform = Affine(10 * factor, 0, t.c + 10 * col0, 0, -10 * factor, t.f - 10 * row0)
    return Grid("EPSG:32634", transform, shape)


@pytest.mark.parametrize("size", ["small", "large"])
@pytest.mark.parametrize("factor", [2, 3, 4, 6])
def test_nearest_picks_a_source_pixel_of_each_footprint(sizes, size, factor):
    source, _ = sizes[size]
    with rasterio.open(source.path) as src:  # the full-resolution pixels, read independently
        data = src.read(1)
    for row0, col0 in ((0, 0), (1, 3), (factor - 1, 1), (5, factor + 2), (2 * factor + 1, 7)):
        shape = ((data.shape[0] - row0) // factor, (data.shape[1] - col0) // factor)
        shape = (min(shape[0], 40), min(shape[1], 33))
        out = read_source(source, _grid_on(source, factor, row0, col0, shape))
        footprint = _footprints(data, factor, row0, col0, shape)
        inside = (footprint == out[..., None].astype(np.int64)).any(axis=-1)
        assert inside.all(), (
            f"{(~inside).sum()} of {inside.size} pixels at offset {(row0, col0)} are none of "
            "the source pixels they cover"
        )


@pytest.mark.parametrize("size", ["small", "large"])
@pytest.mark.parametrize("factor", [2, 4, 6])
def test_average_without_levels_is_the_block_mean(sizes, size, factor):
    source, _ = sizes[size]
    with rasterio.open(source.path) as src:
        data = src.read(1)
    shape = ((data.shape[0] - 2 * factor) // factor, (data.shape[1] - 4 * factor) // factor)
    grid = _grid_on(source, factor, 2 * factor, 4 * factor, shape)
    out = read_source(source, grid, Resampling.average, reduced_levels=False)
    expected = _footprints(data, factor, 2 * factor, 4 * factor, shape).mean(axis=-1)
    np.testing.assert_allclose(out, expected, atol=0.5 + 1e-9)  # GDAL rounds to the integer


@pytest.mark.parametrize("resampling", [Resampling.average, Resampling.nearest])
def test_file_without_reduced_levels_is_read_at_full_resolution(sizes, resampling):
    source, data = sizes["small"]
    grid = _grid_on(source, 4, 4, 8, (12, 10))
    # levels requested (or automatic for average) but the file exposes none
    out = read_source(source, grid, resampling, reduced_levels=True)
    footprint = _footprints(data, 4, 4, 8, (12, 10))
    if resampling == Resampling.average:
        np.testing.assert_allclose(out, footprint.mean(axis=-1), atol=0.5 + 1e-9)
    else:
        assert (footprint == out[..., None].astype(np.int64)).any(axis=-1).all()


def test_other_zone_is_the_exact_nearest_neighbour(band):
    source, _ = band
    grid = Grid("EPSG:32633", Affine(10, 0, 750000, 0, -10, 5301000), (300, 260))
    expected = nearest_dn(source.path, grid.transform, grid.crs, grid.shape)
    out = read_source(source, grid)
    assert (out > 0).mean() > 0.3  # the grid really overlaps the file
    np.testing.assert_array_equal(out, expected)
    # the same grid read in four pieces gives the same pixels
    halves = [grid.window(r0, r1, c0, c1) for r0, r1 in ((0, 150), (150, 300))
              for c0, c1 in ((0, 130), (130, 260))]  # fmt: skip
    pieces = [read_source(source, g) for g in halves]
    np.testing.assert_array_equal(
        np.block([[pieces[0], pieces[1]], [pieces[2], pieces[3]]]), expected
    )


def test_corrupt_file_names_the_path_or_is_skipped(band, tmp_path):
    source, data = band
    broken = tmp_path / "broken.jp2"
    raw = bytearray(open(source.path, "rb").read())
    raw[len(raw) // 3 :] = b"\xff" * (len(raw) - len(raw) // 3)
    broken.write_bytes(bytes(raw))
    bad = Source(str(broken), source.crs, source.transform, source.shape, "S2B_TEST_PRODUCT")
    grid = Grid("EPSG:32634", source.transform, source.shape)
    with pytest.raises(ProductError, match="broken.jp2"):
        read_source(bad, grid)
    with pytest.warns(SentinelCubeWarning, match="S2B_TEST_PRODUCT"):
        out = read_source(bad, grid, on_error="skip")
    assert (out == 0).all()


class RecordingCache(TileCache):
    """A tile cache that records every tile it decodes."""

    def __init__(self):
        super().__init__()
        self.tiles: list[tuple[str, int, int]] = []

    def _decode(self, file, shape, block, wanted, decode):
        self.tiles += [(file[0], *tile) for tile in wanted]
        return super()._decode(file, shape, block, wanted, decode)


def _tiled_jp2(path, data, transform, crs="EPSG:32634"):
    """A JP2 of 64 px tiles (GDAL's CreateCopy honours them)."""
    with MemoryFile() as memory:
        with memory.open(driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
                         dtype="uint16", crs=crs, transform=transform) as tiff:  # fmt: skip
            tiff.write(data, 1)
            rio_copy(tiff, str(path), driver="JP2OpenJPEG", QUALITY="100", REVERSIBLE="YES",
                     YCC="NO", BLOCKXSIZE=64, BLOCKYSIZE=64, RESOLUTIONS=4)  # fmt: skip
    with rasterio.open(path) as dataset:
        assert dataset.block_shapes[0] == (64, 64)
    return Source(str(path), crs, transform, data.shape, "TEST")


@pytest.mark.parametrize("factor", [1, 2])
def test_inside_reads_only_the_file_tiles_holding_those_pixels(tmp_path, monkeypatch, factor):
    from sentinel_cube import _read

    rng = np.random.default_rng(7)
    data = rng.integers(1, 60000, size=(512, 512), dtype=np.uint16)
    transform = Affine(10.0, 0, ORIGIN[0], 0, -10.0, ORIGIN[1])
    source = _tiled_jp2(tmp_path / "tiled.jp2", data, transform)
    # a grid starting inside the first tile (not on a tile edge), 10 or 20 m pixels
    # whose edges fall on the file's tile edges (a 20 m pixel straddling two tiles needs
    # both)
    offset = 37 if factor == 1 else 38
    res = 10.0 * factor
    x0, y0 = ORIGIN[0] + 10 * offset, ORIGIN[1] - 10 * offset
    grid = Grid("EPSG:32634", Affine(res, 0, x0, 0, -res, y0), (440 // factor, 440 // factor))
    rows, cols = np.indices(grid.shape)
    inside = np.abs(rows - cols) <= 3  # a thin diagonal band of pixels
    cache = RecordingCache()
    monkeypatch.setattr(_read, "TILE_CACHE", cache)
    got = read_source(source, grid, inside=inside)
    first_read = list(cache.tiles)
    everything = read_source(source, grid.window(0, grid.height, 0, grid.width))
    np.testing.assert_array_equal(got[inside], everything[inside])
    # expected independently: the file tiles (64 px lattice from the file's corner) under
    # the grid's pixels inside, as a set of (tile row, tile col)
    src_rows = (offset + (rows + 0.5) * factor) // 64
    src_cols = (offset + (cols + 0.5) * factor) // 64
    wanted = set(zip(src_rows[inside].tolist(), src_cols[inside].tolist(), strict=True))
    assert sorted((r, c) for _, r, c in first_read) == sorted(wanted)  # each once
    assert len(wanted) < 0.5 * 49
    assert (got[~inside & (got != everything)] == 0).all()  # tiles not read stay no data


@pytest.mark.parametrize("partly_outside", [False, True])
def test_inside_of_a_reprojected_source_decodes_only_the_tiles_under_it(
    tmp_path, monkeypatch, partly_outside
):
    from pyproj import Transformer

    from sentinel_cube import _read

    rng = np.random.default_rng(8)
    data = rng.integers(1, 60000, size=(640, 640), dtype=np.uint16)
    transform = Affine(10.0, 0, 699960.0, 0, -10.0, 5300040.0)  # a zone 33 tile's corner
    source = _tiled_jp2(tmp_path / "z33.jp2", data, transform, crs="EPSG:32633")
    # a zone 34 grid over the middle of the file, or over its top left corner
    corner = (698900.0, 5301100.0) if partly_outside else (702000.0, 5297000.0)
    x, y = Transformer.from_crs(32633, 32634, always_xy=True).transform(*corner)
    grid = Grid("EPSG:32634", Affine(10, 0, round(x), 0, -10, round(y)), (300, 300))
    rows, cols = np.indices(grid.shape)
    inside = (np.abs(rows - 2 * cols + 150) <= 2) | (rows < 3)
    cache = RecordingCache()
    monkeypatch.setattr(_read, "TILE_CACHE", cache)
    got = read_source(source, grid, inside=inside)
    expected = nearest_dn(source.path, grid.transform, grid.crs, grid.shape)
    np.testing.assert_array_equal(got[inside], expected[inside])
    # expected independently: pyproj at each inside pixel's centre, then the 64 px tiles
    gx, gy = grid.coords()
    xx, yy = np.meshgrid(gx, gy)
    sx, sy = Transformer.from_crs(32634, 32633, always_xy=True).transform(xx[inside], yy[inside])
    tile_rows, tile_cols = (5300040.0 - sy) // 640, (sx - 699960.0) // 640
    in_file = (tile_rows >= 0) & (tile_rows < 10) & (tile_cols >= 0) & (tile_cols < 10)
    assert in_file.all() != partly_outside
    wanted = set(zip(tile_rows[in_file].astype(int).tolist(),
                     tile_cols[in_file].astype(int).tolist(), strict=True))  # fmt: skip
    assert sorted((r, c) for _, r, c in cache.tiles) == sorted(wanted)
    if partly_outside:  # pixels off the file are no data
        assert (got[inside][~in_file] == 0).all() and (got[inside][in_file] > 0).all()
    assert len(wanted) < 0.6 * 100


@pytest.mark.parametrize("partly_outside", [False, True])
def test_gather_plans_are_computed_once_per_chunk_and_source_grid(
    tmp_path, monkeypatch, partly_outside
):
    """Two dates of one tile share their georeference: the same chunk of the second date
    (and of every band) reuses the first date's plan; a budget too small for any plan
    computes it again each time, with the same pixels."""
    import cachetools

    from sentinel_cube import _read

    rng = np.random.default_rng(9)
    transform = Affine(10.0, 0, 699960.0, 0, -10.0, 5300040.0)  # a zone 33 tile's corner
    dates = [
        _tiled_jp2(
            tmp_path / f"d{i}.jp2",
            rng.integers(1, 60000, (400, 400), dtype=np.uint16),
            transform,
            crs="EPSG:32633",
        )  # fmt: skip
        for i in range(2)
    ]
    corner = (699000.0, 5301000.0) if partly_outside else (700500.0, 5299500.0)
    x, y = Transformer.from_crs(32633, 32634, always_xy=True).transform(*corner)
    grid = Grid("EPSG:32634", Affine(10, 0, round(x), 0, -10, round(y)), (150, 170))
    calls = []
    real = _read.source_pixels
    monkeypatch.setattr(_read, "source_pixels", lambda *a: calls.append(a) or real(*a))
    for budget, planned in ((2**30, 1), (1, 4)):
        monkeypatch.setattr(_read, "_PLANS", cachetools.LRUCache(budget, getsizeof=_read._nbytes))
        calls.clear()
        for source in dates + dates:  # two dates, two bands each
            expected = nearest_dn(source.path, grid.transform, grid.crs, grid.shape)
            got = read_source(source, grid)
            assert (got == 0).any() == partly_outside
            np.testing.assert_array_equal(got, expected)
        assert len(calls) == planned


def test_jpeg2000_decodes_in_the_reading_thread(tmp_path):
    """sentinel_cube sets OPJ_NUM_THREADS=0 (unless set): OpenJPEG then decodes in the
    thread that reads, not in a thread GDAL starts per read. Checked in a fresh process,
    by the CPU time of the reading thread against the whole process's."""
    import subprocess
    import sys
    import textwrap

    rng = np.random.default_rng(3)
    path = tmp_path / "big.jp2"
    _write_jp2(path, rng.integers(1, 60000, (1024, 1024), dtype=np.uint16), 10.0)
    script = textwrap.dedent(f"""
        import os, time
        import sentinel_cube, rasterio
        print(os.environ["OPJ_NUM_THREADS"])
        with rasterio.Env(GDAL_NUM_THREADS=1), rasterio.open({str(path)!r}) as d:
            thread, process = time.thread_time(), time.process_time()
            d.read(1)
            print(time.thread_time() - thread, time.process_time() - process)
    """)
    for preset, expected in ((None, "0"), ("1", "1")):
        env = {k: v for k, v in os.environ.items() if k != "OPJ_NUM_THREADS"}
        if preset is not None:
            env["OPJ_NUM_THREADS"] = preset
        lines = subprocess.run([sys.executable, "-c", script], env=env, check=True,
                               capture_output=True, text=True).stdout.split("\n")  # fmt: skip
        assert lines[0] == expected  # a user's own setting is kept
        thread, process = map(float, lines[1].split())
        assert process > 0.02
        if expected == "0":
            assert thread > 0.8 * process
        else:
            assert thread < 0.5 * process  # GDAL's own decoding thread did the work


def test_drop_caches_makes_the_next_read_cold(tmp_path):
    """What a read keeps (tiles, gather plans, lattice nodes) is forgotten, and the same
    read then decodes every tile again, with the same pixels."""
    from sentinel_cube import _read, _warp

    rng = np.random.default_rng(11)
    transform = Affine(10.0, 0, 699960.0, 0, -10.0, 5300040.0)
    source = _tiled_jp2(tmp_path / "z33.jp2", rng.integers(1, 60000, (300, 300), dtype=np.uint16),
                        transform, crs="EPSG:32633")  # fmt: skip
    x, y = Transformer.from_crs(32633, 32634, always_xy=True).transform(700500.0, 5299500.0)
    grid = Grid("EPSG:32634", Affine(10, 0, round(x), 0, -10, round(y)), (150, 170))
    first = read_source(source, grid)
    decoded = _read.TILE_CACHE.decoded
    again = read_source(source, grid)
    assert _read.TILE_CACHE.decoded == decoded  # warm: nothing decoded
    assert _read.TILE_CACHE.nbytes and len(_read._PLANS) and len(_warp._NODES)
    _read.drop_caches()
    assert not _read.TILE_CACHE.nbytes and not len(_read._PLANS) and not len(_warp._NODES)
    cold = read_source(source, grid)
    assert _read.TILE_CACHE.decoded > decoded
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, cold)
    np.testing.assert_array_equal(
        first, nearest_dn(source.path, grid.transform, grid.crs, grid.shape)
    )
