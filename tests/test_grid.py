from __future__ import annotations

import dask.base
import numpy as np
import pytest
from affine import Affine
from hypothesis import given
from hypothesis import strategies as st

from sentinel_cube.grid import Grid, snap_bounds


def test_from_bounds_snaps_outwards_to_the_anchor_lattice():
    grid = Grid.from_bounds((300005, 5299001, 300095, 5299990), 32634, 10, anchor=(300000, 5300040))
    assert grid.bounds == (300000, 5299000, 300100, 5299990)  # 5299990 is on the lattice
    assert grid.shape == (99, 10)
    assert grid.crs == "EPSG:32634"


def test_coords_are_pixel_centres():
    grid = Grid("EPSG:32634", Affine(20, 0, 300000, 0, -20, 5300040), (3, 2))
    x, y = grid.coords()
    np.testing.assert_array_equal(x, [300010, 300030])
    np.testing.assert_array_equal(y, [5300030, 5300010, 5299990])


def test_rotated_or_south_up_transforms_are_rejected():
    with pytest.raises(ValueError, match="north-up"):
        Grid("EPSG:32634", Affine(10, 0, 0, 0, 10, 0), (1, 1))


def test_chunks_align_to_the_tile_origin():
    # a 10 m grid starting 300 px east and 100 px south of a tile's corner
    tile_origin = (300000.0, 5300040.0)
    grid = Grid("EPSG:32634", Affine(10, 0, 303000, 0, -10, 5299040), (2000, 1500))
    rows, cols = grid.chunk_sizes((1024, 1024), align=tile_origin)
    assert rows == (924, 1024, 52)
    assert cols == (724, 776)
    # every inner block edge lies on a multiple of 1024 px from the tile corner
    edges = np.cumsum(cols)[:-1] * 10 + 303000 - tile_origin[0]
    assert np.all(edges % 10240 == 0)


def test_chunk_sub_grids_tile_the_grid_exactly():
    grid = Grid("EPSG:32634", Affine(10, 0, 0, 0, -10, 1000), (100, 70))
    sizes = grid.chunk_sizes((32, 32))
    blocks = dict(grid.iter_chunks(sizes))
    assert len(blocks) == 4 * 3
    assert blocks[(3, 2)].bounds == (640, 0, 700, 40)
    assert sum(b.shape[0] * b.shape[1] for b in blocks.values()) == 100 * 70


def test_tokenize_is_deterministic_and_value_based():
    a = Grid("EPSG:32634", Affine(10, 0, 0, 0, -10, 0), (5, 5))
    b = Grid("epsg:32634", Affine(10, 0, 0, 0, -10, 0), (5, 5))
    c = Grid("EPSG:32634", Affine(10, 0, 10, 0, -10, 0), (5, 5))
    assert dask.base.tokenize(a) == dask.base.tokenize(b) != dask.base.tokenize(c)


@given(
    left=st.floats(-1e6, 1e6),
    width=st.floats(0.1, 5e4),
    bottom=st.floats(-1e6, 1e7),
    height=st.floats(0.1, 5e4),
    resolution=st.sampled_from([10.0, 20.0, 60.0, 300.0, 7.5]),
    ax=st.floats(0, 100),
    ay=st.floats(0, 100),
)
def test_snapped_bounds_contain_the_input_and_sit_on_the_lattice(
    left, width, bottom, height, resolution, ax, ay
):
    bounds = (left, bottom, left + width, bottom + height)
    snapped = snap_bounds(bounds, resolution, (ax, ay))
    tol = 1e-6 * resolution
    assert snapped[0] <= bounds[0] + tol and snapped[1] <= bounds[1] + tol
    assert snapped[2] >= bounds[2] - tol and snapped[3] >= bounds[3] - tol
    for value, origin in zip(snapped, (ax, ay, ax, ay), strict=True):
        steps = (value - origin) / resolution
        assert abs(steps - round(steps)) < 1e-6
    # never more than one pixel of growth on each side
    assert bounds[0] - snapped[0] < resolution + tol and snapped[2] - bounds[2] < resolution + tol


@given(
    length=st.integers(0, 5000),
    size=st.integers(1, 2048),
    offset=st.integers(-3000, 3000),
)
def test_chunk_sizes_cover_the_axis(length, size, offset):
    grid = Grid("EPSG:32634", Affine(10, 0, 0, 0, -10, 0), (1, length))
    _, cols = grid.chunk_sizes((1, size), align=(offset * 10.0, 0.0))
    assert sum(cols) == length
    assert all(0 < c <= size for c in cols) or cols == (0,)
