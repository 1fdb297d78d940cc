"""Source positions of reprojected pixels: exact to 1e-6 pixel and independent of chunking.

Expected positions come from pyproj at every pixel centre (the definition), not from
the lattice the module interpolates.
"""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from pyproj import Transformer

from sentinel_cube._warp import source_pixels
from sentinel_cube.grid import Grid


@pytest.mark.parametrize(
    ("src_res", "out_res", "corner"),
    [(10, 10, (170000, 5300000)), (20, 10, (290000, 5210000)), (10, 20, (200000, 5150000)),
     (60, 60, (180000, 5280000)), (100, 100, (150000, 5300000)), (10, 300, (170000, 5300000))],
)  # fmt: skip
def test_positions_are_exact_to_a_millionth_of_a_pixel(src_res, out_res, corner):
    source = Affine(src_res, 0, 699960, 0, -src_res, 5300040)  # a zone 33 tile's corner
    size = min(600, 60000 // out_res)
    grid = Grid("EPSG:32634", Affine(out_res, 0, *corner[:1], 0, -out_res, corner[1]),
                (size, size))  # fmt: skip
    rows, cols = source_pixels(grid, "EPSG:32633", source)
    x, y = grid.coords()
    sx, sy = Transformer.from_crs(32634, 32633, always_xy=True).transform(*np.meshgrid(x, y))
    np.testing.assert_allclose(cols, (sx - source.c) / src_res, rtol=0, atol=1e-6)
    np.testing.assert_allclose(rows, (source.f - sy) / src_res, rtol=0, atol=1e-6)


def test_positions_do_not_depend_on_the_chunk():
    source = Affine(10, 0, 699960, 0, -10, 5300040)
    grid = Grid("EPSG:32634", Affine(10, 0, 170000, 0, -10, 5300000), (700, 900))
    rows, cols = source_pixels(grid, "EPSG:32633", source)
    for r0, r1, c0, c1 in [(0, 333, 0, 257), (333, 700, 257, 900), (17, 18, 401, 899)]:
        sub_rows, sub_cols = source_pixels(grid.window(r0, r1, c0, c1), "EPSG:32633", source)
        np.testing.assert_array_equal(sub_rows, rows[r0:r1, c0:c1])  # bit for bit
        np.testing.assert_array_equal(sub_cols, cols[r0:r1, c0:c1])


def test_lattice_nodes_are_transformed_once_and_the_cache_keeps_its_budget(monkeypatch):
    import cachetools

    from sentinel_cube import _warp

    def fresh(budget):
        return cachetools.LRUCache(budget, getsizeof=lambda xy: xy[0].nbytes + xy[1].nbytes)

    points = []
    real = _warp._transformer("EPSG:32634", "EPSG:32633")

    class Counting:
        def transform(self, x, y):
            points.append(np.size(x))
            return real.transform(x, y)

    monkeypatch.setattr(_warp, "_transformer", lambda src, dst: Counting())
    monkeypatch.setattr(_warp, "_NODES", fresh(_warp.NODE_CACHE_BYTES))
    source = Affine(10, 0, 699960, 0, -10, 5300040)
    grid = Grid("EPSG:32634", Affine(10, 0, 170000, 0, -10, 5300000), (700, 900))
    rows, cols = source_pixels(grid, "EPSG:32633", source)
    first = sum(points)
    assert first > 0
    again = source_pixels(grid, "EPSG:32633", source)  # the same chunk at the next date
    assert sum(points) == first
    np.testing.assert_array_equal(again[0], rows)
    # a tiny budget: blocks are dropped and transformed again, with the same results
    monkeypatch.setattr(_warp, "_NODES", fresh(2 * _warp.NODE_BLOCK**2 * 16))
    before = sum(points)
    small = source_pixels(grid, "EPSG:32633", source)
    assert 0 < _warp._NODES.currsize <= _warp._NODES.maxsize
    assert len(_warp._NODES) == 2  # the last two blocks
    source_pixels(grid, "EPSG:32633", source)
    assert sum(points) - before == 2 * first  # every block transformed again each time
    np.testing.assert_array_equal(small[0], rows)
    np.testing.assert_array_equal(small[1], cols)
