"""Planning and the graph on their own: products built in memory, a fake reader, no file.

The products here have band paths that exist nowhere, so any attempt to open a
file fails the test; expected values are computed from the products' geometry
with shapely/pyproj and from the fake reader's own rule.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import shapely
from affine import Affine
from pyproj import Transformer
from shapely.geometry import box

from sentinel_cube._graph import cube_array
from sentinel_cube._plan import mosaic_order, plan_cube
from sentinel_cube._source import Source
from sentinel_cube.grid import Grid
from sentinel_cube.safe import BandFile, Product

T0 = datetime(2023, 8, 10, 9, 45, 49, 24000, tzinfo=UTC)


def _product(
    name: str,
    origin: tuple[float, float] = (300000.0, 5300040.0),
    epsg: int = 32634,
    when: datetime = T0,
    size: int = 200,
    baseline: str = "05.09",
    clip_west: float = 0.0,
) -> Product:
    """A 10 m B04 + 20 m SCL product of ``size`` pixels; its data footprint loses
    ``clip_west`` of its width on the west side (a swath edge)."""
    x0, y0 = origin
    b04 = BandFile(
        "B04", f"memory://{name}/B04.jp2", 10, (size, size), Affine(10, 0, x0, 0, -10, y0),
        offset=-1000.0, quantification=10000.0,
    )  # fmt: skip
    scl = BandFile(
        "SCL", f"memory://{name}/SCL.jp2", 20, (size // 2, size // 2),
        Affine(20, 0, x0, 0, -20, y0), offset=0.0, quantification=1.0,
    )  # fmt: skip
    left, bottom, right, top = b04.bounds
    data = box(left + clip_west * (right - left), bottom, right, top)
    to_lonlat = Transformer.from_crs(epsg, 4326, always_xy=True)
    footprint = shapely.transform(
        shapely.segmentize(data, 100.0), to_lonlat.transform, interleaved=False
    )
    return Product(
        path=f"memory://{name}", product_id=name, platform="S2B", processing_level="L2A",
        producttype="S2MSI2A", processing_baseline=baseline, sensing_start=when,
        generation_time=when + timedelta(hours=3), tile_id="34TCT", relative_orbit=79,
        orbit_direction="DESCENDING", epsg=epsg, footprint=footprint,
        bands={"B04": b04, "SCL": scl}, cloud_cover=10.0,
    )  # fmt: skip


def _lonlat_box(left, bottom, right, top, epsg=32634):
    to_lonlat = Transformer.from_crs(epsg, 4326, always_xy=True)
    return shapely.transform(
        shapely.segmentize(box(left, bottom, right, top), 10.0), to_lonlat.transform,
        interleaved=False,
    )  # fmt: skip


def test_a_chunk_lists_exactly_the_products_that_meet_it_in_mosaic_order():
    west = _product("west", clip_west=0.0)
    east = _product("east", origin=(301000.0, 5300040.0))  # 100 px further east
    late = _product("late", when=T0 + timedelta(seconds=5))
    plan = plan_cube([late, east, west], ["B04"], 10, chunks=64)
    assert plan.grid.crs == "EPSG:32634" and plan.grid.resolution == 10
    assert plan.grid.bounds == (300000.0, 5298040.0, 303000.0, 5300040.0)
    assert len(plan.steps) == 1  # one solar day
    step = plan.steps[0]
    assert list(step.products) == sorted(step.products, key=mosaic_order)
    assert step.products[0].product_id in ("east", "west")  # earliest first, "late" last
    for (iy, ix), chunk in plan.grid.iter_chunks(plan.chunks):
        chunk_box = box(*chunk.bounds)
        expected = [
            p.product_id
            for p in step.products
            if box(*p.bands["B04"].bounds).intersects(chunk_box)
            and not box(*p.bands["B04"].bounds).touches(chunk_box)
        ]
        block = plan.blocks.get((0, 0, iy, ix))
        got = [s.product_id for s in block.sources] if block else []
        assert got == expected, (iy, ix)


def test_chunks_outside_every_footprint_have_no_block():
    # the AOI spans two products with a gap between them
    a = _product("a")
    b = _product("b", origin=(306000.0, 5300040.0))
    aoi = _lonlat_box(300100, 5298500, 307900, 5299900)
    plan = plan_cube([a, b], ["B04"], 10, aoi=aoi, chunks=50)
    footprints = [box(*p.bands["B04"].bounds) for p in (a, b)]
    far = 0
    for (iy, ix), chunk in plan.grid.iter_chunks(plan.chunks):
        square = box(*chunk.bounds)
        if any(f.intersection(square).area > 0 for f in footprints):
            assert (0, 0, iy, ix) in plan.blocks  # never a chunk lost
        elif min(f.distance(square) for f in footprints) > 200:  # planning's margin: 120 m
            assert (0, 0, iy, ix) not in plan.blocks  # a fill: nothing read
            far += 1
    assert far >= 4


def test_the_grid_covers_the_aoi_snapped_to_the_tile_pixels():
    products = [_product("p", size=2000)]
    aoi = _lonlat_box(302345.6, 5290123.4, 310987.6, 5299876.5)
    plan = plan_cube(products, ["B04"], 20, aoi=aoi)
    left, bottom, right, top = plan.grid.bounds
    # expected independently: the AOI's exact extent (finely sampled), outwards to 20 m
    # lines through the tile corner (300000, 5300040)
    inside = Transformer.from_crs(4326, 32634, always_xy=True)
    ring = shapely.segmentize(aoi.exterior, 1e-5)
    xs, ys = inside.transform(*np.asarray(ring.coords).T)
    assert left == 300000 + 20 * np.floor((xs.min() - 300000) / 20 + 1e-6)
    assert right == 300000 + 20 * np.ceil((xs.max() - 300000) / 20 - 1e-6)
    assert bottom == 5300040 + 20 * np.floor((ys.min() - 5300040) / 20 + 1e-6)
    assert top == 5300040 + 20 * np.ceil((ys.max() - 5300040) / 20 - 1e-6)


def test_steps_fuse_one_solar_day_or_keep_every_product():
    days = [_product(f"d{i}", when=T0 + timedelta(days=i // 2, minutes=i % 2)) for i in range(6)]
    fused = plan_cube(days, ["B04"], 10)
    assert [len(s.products) for s in fused.steps] == [2, 2, 2]
    assert [s.time for s in fused.steps] == sorted(s.time for s in fused.steps)
    apart = plan_cube(days, ["B04"], 10, groupby=None)
    assert len(apart.steps) == 6


def test_a_thousand_products_plan_without_opening_anything():
    products = [_product(f"p{i:04d}", when=T0 + timedelta(days=i)) for i in range(1000)]
    plan = plan_cube(products, ["B04", "SCL"], 10, chunks=100)
    assert len(plan.steps) == 1000
    assert len(plan.blocks) == 1000 * 2 * 4  # 2 x 2 chunks per step and band


# ----------------------------------------------------------------------------- graph


class FakeReader:
    """Reads nothing: DN = 1000 + 100 * (product number) + band code; the west half of
    ``holes`` products is no data; ``saturated`` products are saturated in their top row."""

    def __init__(self, holes=(), saturated=()):
        self.calls: list[tuple[str, str, bool | None, tuple[int, int]]] = []
        self.holes = set(holes)
        self.saturated = set(saturated)

    def __call__(self, source: Source, grid: Grid, resampling, *, env, reduced_levels, on_error):
        self.calls.append((source.path, resampling, reduced_levels, grid.shape))
        number = int(source.product_id[1:])
        band = source.path.rsplit("/", 1)[-1].split(".")[0]
        if band == "SCL":
            out = np.full(grid.shape, 4 + number, dtype=np.uint16)
        else:
            out = np.full(grid.shape, 1000 + 100 * number, dtype=np.uint16)
        if source.product_id in self.holes:
            out[:, : grid.width // 2] = 0
        if source.product_id in self.saturated and band != "SCL":
            out[0, :] = 65535
        return out


def _mosaic_plan(**kwargs):
    first = _product("p1")
    second = _product("p2", when=T0 + timedelta(seconds=10))
    return plan_cube([second, first], ["B04", "SCL"], 20, chunks=40, **kwargs)


def test_the_graph_mosaics_first_valid_pixel_and_converts_units():
    plan = _mosaic_plan()
    reader = FakeReader(holes={"p1"}, saturated={"p1"})
    data = cube_array(plan, env={}, reader=reader).compute(scheduler="sync")
    b04 = data[0, 0]
    # p1 first; its west halves (per chunk) are no data and its top row saturated: p2 fills
    p1, p2 = (1000 + 100 - 1000) / 10000, (1000 + 200 - 1000) / 10000
    expected = np.full(plan.grid.shape, p1, dtype=np.float32)
    for _, chunk in plan.grid.iter_chunks(plan.chunks):
        r0 = round((plan.grid.transform.f - chunk.transform.f) / 20)
        c0 = round((chunk.transform.c - plan.grid.transform.c) / 20)
        expected[r0 : r0 + chunk.height, c0 : c0 + chunk.width // 2] = p2
        expected[r0, c0 : c0 + chunk.width] = p2
    np.testing.assert_array_equal(b04, expected)
    # SCL: class codes, no radiometry, always nearest and never a reduced level
    np.testing.assert_array_equal(np.where(np.isnan(data[0, 1]), 0, data[0, 1]) != 0, True)
    assert set(np.unique(data[0, 1][~np.isnan(data[0, 1])])) <= {5.0, 6.0}
    scl_calls = [c for c in reader.calls if c[0].endswith("SCL.jp2")]
    assert scl_calls and all(c[1] == "nearest" and c[2] is False for c in scl_calls)


def test_dn_and_reflectance_graphs_take_the_same_pixels():
    reader = FakeReader(holes={"p1"}, saturated={"p1", "p2"})
    dn = cube_array(_mosaic_plan(units="dn"), env={}, reader=reader).compute(scheduler="sync")
    reflectance = cube_array(_mosaic_plan(), env={}, reader=reader).compute(scheduler="sync")
    np.testing.assert_array_equal(dn[:, 0] == 0, np.isnan(reflectance[:, 0]))
    valid = dn[:, 0] != 0
    np.testing.assert_allclose(
        (dn[:, 0][valid].astype(np.float64) - 1000) / 10000, reflectance[:, 0][valid], rtol=1e-6
    )


def test_the_reader_is_called_only_for_chunks_with_sources_and_gets_the_rules():
    plan = _mosaic_plan(resampling="average", aoi=_lonlat_box(300000, 5296000, 306000, 5300040))
    reader = FakeReader()
    array = cube_array(plan, env={"GDAL_NUM_THREADS": 1}, reader=reader)
    assert array.npartitions == plan.n_chunks
    array.compute(scheduler="sync")
    expected_reads = sum(len(b.sources) for b in plan.blocks.values())
    # each chunk stops at the first product that fills it: p1 fills everything here
    assert len(reader.calls) == len(plan.blocks) <= expected_reads
    b04 = [c for c in reader.calls if c[0].endswith("B04.jp2")]
    # reduced_levels=None resolves per band: an averaging resampling may use the levels
    assert b04 and all(c[1] == "average" and c[2] is True for c in b04)


def test_a_planning_error_names_the_product_and_the_band():
    with pytest.raises(Exception, match="p1.*B08|B08.*p1"):
        plan_cube([_product("p1")], ["B08"], 10)
