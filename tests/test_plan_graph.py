"""Planning and the graph on their own: products built in memory, a fake reader, no file.

The products here have band paths that exist nowhere, so any attempt to open a
file fails the test; expected values are computed from the products' geometry
with shapely/pyproj and from the fake reader's own rule.
"""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import shapely
from affine import Affine
from pyproj import Transformer
from shapely.geometry import box

from sentinel_cube._graph import cube_array
from sentinel_cube._plan import chunk_members, mosaic_order, plan_cube
from sentinel_cube._read import pixels_inside
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
        got = [step.products[i].product_id for i in chunk_members(step.footprints, chunk.bounds)]
        assert got == expected, (iy, ix)


def test_chunks_outside_every_footprint_have_no_block():
    # the AOI spans two products with a gap between them
    a = _product("a")
    b = _product("b", origin=(306000.0, 5300040.0))
    aoi = _lonlat_box(300100, 5298500, 307900, 5299900)
    plan = plan_cube([a, b], ["B04"], 10, aoi=aoi, chunks=50)
    footprints = [box(*p.bands["B04"].bounds) for p in (a, b)]
    far = 0
    for (_iy, _ix), chunk in plan.grid.iter_chunks(plan.chunks):
        square = box(*chunk.bounds)
        if any(f.intersection(square).area > 0 for f in footprints):
            assert chunk_members(plan.steps[0].footprints, chunk.bounds)  # never a chunk lost
        elif min(f.distance(square) for f in footprints) > 200:  # planning's margin: 120 m
            assert not chunk_members(plan.steps[0].footprints, chunk.bounds)  # a fill: nothing read
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
    assert plan.band_chunks == (1, 1)  # 10 m and 20 m bands: not one task
    assert plan.n_chunks == 1000 * 2 * 4  # 2 x 2 chunks per step and band
    # the plan grows with the products, never with the chunks: no object per chunk
    finer = plan_cube(products, ["B04", "SCL"], 10, chunks=10)
    assert finer.n_chunks == 100 * plan.n_chunks
    assert len(pickle.dumps(finer)) < 1.01 * len(pickle.dumps(plan))


# ----------------------------------------------------------------------------- graph


class FakeReader:
    """Reads nothing: DN = 1000 + 100 * (product number) + band code; the west half of
    ``holes`` products is no data; ``saturated`` products are saturated in their top row."""

    def __init__(self, holes=(), saturated=()):
        self.calls: list[tuple[str, str, bool | None, tuple[int, int]]] = []
        self.grids: list[Grid] = []
        self.insides: list[np.ndarray | None] = []
        self.holes = set(holes)
        self.saturated = set(saturated)

    def __call__(
        self, source: Source, grid: Grid, resampling, *, env, reduced_levels, on_error, inside=None
    ):
        self.calls.append((source.path, resampling, reduced_levels, grid.shape))
        self.grids.append(grid)
        self.insides.append(inside)
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


class NoisyReader:
    """Random DN per product, band and chunk (no data and saturated pixels anywhere),
    the same on every call, 0 where a pixel's centre is off the band file (as the real
    reader). Outside ``inside``, the north half of the pixels is 0 (tiles the real
    reader does not decode) and the south half holds data (pixels of decoded tiles that
    the mosaic must not take)."""

    def __init__(self) -> None:
        self.insides: list[np.ndarray | None] = []

    def dn(self, source: Source, grid: Grid) -> np.ndarray:
        band = source.path.rsplit("/", 1)[-1].split(".")[0]
        seed = [int(source.product_id[1:]), len(band), int(grid.transform.c),
                int(grid.transform.f)]  # fmt: skip
        rng = np.random.default_rng(seed)
        dn = rng.integers(1, 12_000, size=grid.shape).astype(np.uint16)
        dn[rng.random(grid.shape) < 0.4] = 0
        dn[rng.random(grid.shape) < 0.1] = 65535
        if band == "SCL":
            dn %= 12
        t = grid.transform  # north up, no rotation
        x = (t.c + t.a * (np.arange(grid.width) + 0.5))[None, :]
        y = (t.f + t.e * (np.arange(grid.height) + 0.5))[:, None]
        left, bottom, right, top = source.bounds
        dn[(x < left) | (x > right) | (y < bottom) | (y > top)] = 0
        return dn

    def __call__(
        self, source: Source, grid: Grid, resampling, *, env, reduced_levels, on_error, inside=None
    ):
        self.insides.append(inside)
        dn = self.dn(source, grid)
        if inside is not None:
            north = np.arange(grid.height)[:, None] < grid.height // 2
            dn[~inside & north] = 0
        return dn


@pytest.mark.parametrize(
    ("units", "sparse"), [("reflectance", 0.0), ("reflectance", 1.01), ("dn", None)]
)
@pytest.mark.parametrize("clipped", [False, True])
def test_the_mosaic_takes_each_pixel_from_the_first_product_valid_there(
    units, sparse, clipped, monkeypatch
):
    """Three products of one day as real archives have them: other sizes and corners
    (partial overlaps), other times of day, one of an old baseline (DN offset 0, so
    harmonised or converted differently); random holes and saturated pixels, with and
    without an AOI. Every pixel against a per-pixel loop over the products in mosaic
    order (earliest sensing first). Reflectance of later products converted on the
    whole chunk (``SPARSE`` 0) or only at the pixels left to fill (``SPARSE`` > 1)."""
    from sentinel_cube import _graph

    if sparse is not None:
        monkeypatch.setattr(_graph, "SPARSE", sparse)
    old = _product("p2", origin=(300600.0, 5299440.0), size=160,
                   when=T0 + timedelta(minutes=25), baseline="02.14")  # fmt: skip
    old = dataclasses.replace(
        old, bands={**old.bands, "B04": dataclasses.replace(old.bands["B04"], offset=0.0)}
    )
    products = [
        _product("p1", when=T0),
        old,
        _product("p3", origin=(299400.0, 5300640.0), size=240, when=T0 - timedelta(hours=1)),
    ]
    triangle = shapely.Polygon([(299700, 5298100), (301900, 5298500), (300900, 5300400)])
    to_lonlat = Transformer.from_crs(32634, 4326, always_xy=True)
    aoi = shapely.transform(shapely.segmentize(triangle, 10.0), to_lonlat.transform,
                            interleaved=False)  # fmt: skip
    plan = plan_cube(products, ["B04", "SCL"], 20, chunks=40, units=units, aoi=aoi, clip=clipped)
    assert len(plan.steps) == 1 and plan.grid.shape[0] % 40 and plan.grid.shape[1] % 40
    reader = NoisyReader()
    data = cube_array(plan, env={}, reader=reader).compute(scheduler="sync")
    fill = np.nan if units == "reflectance" else 0
    expected = np.full(data.shape, fill, dtype=data.dtype)
    ordered = sorted(products, key=lambda p: p.sensing_start)
    assert [p.product_id for p in ordered] == ["p3", "p1", "p2"]
    checked = 0
    for _, chunk in plan.grid.iter_chunks(plan.chunks):
        r0 = round((plan.grid.transform.f - chunk.transform.f) / 20)
        c0 = round((chunk.transform.c - plan.grid.transform.c) / 20)
        rows = slice(r0, r0 + chunk.height)
        cols = slice(c0, c0 + chunk.width)
        if clipped:
            inside = pixels_inside(plan.aoi, chunk)
        else:
            inside = np.ones(chunk.shape, bool)
        for b, band in enumerate(plan.bands):
            files = [p.bands[band] for p in ordered]
            stack = [
                reader.dn(Source(f.path, "EPSG:32634", f.transform, f.shape, p.product_id), chunk)
                for f, p in zip(files, ordered, strict=True)
            ]
            block = expected[0, b, rows, cols]
            for y, x in np.ndindex(chunk.shape):
                if not inside[y, x]:
                    continue
                for dn, f in zip(stack, files, strict=True):
                    value = int(dn[y, x])
                    if value == 0 or (value == 65535 and band != "SCL"):
                        continue
                    if band == "SCL":
                        block[y, x] = value
                    elif units == "dn":  # to the offset -1000 convention
                        block[y, x] = min(value + int(f.offset) + 1000, 65534)
                    else:
                        block[y, x] = np.float32(value + f.offset) / np.float32(10000)
                    break
            checked += int(inside.sum())
    assert 0 < checked <= data[0].size
    np.testing.assert_array_equal(data, expected)
    if clipped:  # products after the first read only the pixels still missing
        assert all(inside is not None for inside in reader.insides)


def test_the_reader_is_called_only_for_chunks_with_sources_and_gets_the_rules():
    plan = _mosaic_plan(resampling="average", aoi=_lonlat_box(300000, 5296000, 306000, 5300040))
    reader = FakeReader()
    array = cube_array(plan, env={"GDAL_NUM_THREADS": 1}, reader=reader)
    assert array.npartitions == plan.n_chunks
    array.compute(scheduler="sync")
    with_data = [
        len(chunk_members(plan.steps[0].footprints, chunk.bounds))
        for _, chunk in plan.grid.iter_chunks(plan.chunks)
    ]
    # each chunk stops at the first product that fills it: p1 fills everything here
    assert len(reader.calls) == len(plan.bands) * sum(n > 0 for n in with_data)
    assert len(reader.calls) < len(plan.bands) * sum(with_data)
    b04 = [c for c in reader.calls if c[0].endswith("B04.jp2")]
    # reduced_levels=None resolves per band: an averaging resampling may use the levels
    assert b04 and all(c[1] == "average" and c[2] is True for c in b04)


def test_a_planning_error_names_the_product_and_the_band():
    with pytest.raises(Exception, match="p1.*B08|B08.*p1"):
        plan_cube([_product("p1")], ["B08"], 10)


# ----------------------------------------------------------------------------- chunking


def test_default_chunks_cover_2_x_2_jp2_tiles_and_bands_of_one_pixel_size_share_a_task():
    full = [_product("p1", size=10980)]
    b04_scl = plan_cube(full, ["B04", "SCL"], 10)
    # 10 m band: 1024 px JP2 tiles, so 2048 px chunks from the tile corner
    assert set(b04_scl.chunks[0][:-1]) == {2048} and b04_scl.chunks[0][-1] == 10980 - 5 * 2048
    assert b04_scl.band_chunks == (1, 1)  # 10 m and 20 m: different tile grids
    coarse = plan_cube(full, ["B04"], 20)
    assert max(coarse.chunks[0]) == 1024  # 2 x 2 tiles of 1024 px at 10 m, on a 20 m grid
    # small cubes (fewer than 8 tasks per step): one tile per chunk, then one band per task
    small = plan_cube([_product("p1", size=2000)], ["B04"], 10)
    assert small.chunks == ((1024, 976), (1024, 976))
    four = plan_cube([_four_band_product("p1", size=2000)], ["B02", "B03", "B04", "B08"], 10)
    assert four.chunks == ((1024, 976), (1024, 976)) and four.band_chunks == (1, 1, 1, 1)
    three = plan_cube([_four_band_product("p1", size=3000)], ["B02", "B03", "B04", "B08"], 10)
    assert max(three.chunks[0]) == 1024 and three.band_chunks == (4,)  # 3 x 3 chunks
    wide = plan_cube([_product("p1", size=8000)], ["B04"], 10)
    assert max(wide.chunks[0]) == 2048  # 4 x 4 chunks of 2 x 2 tiles: enough
    explicit = plan_cube(full, ["B04", "SCL"], 10, chunks={"band": 2, "y": 512})
    assert explicit.band_chunks == (1, 1) and max(explicit.chunks[0]) == 512
    assert max(explicit.chunks[1]) == 2048
    with pytest.raises(Exception, match="'time'"):
        plan_cube(full, ["B04"], 10, chunks={"time": 2})
    with pytest.raises(Exception, match="positive"):
        plan_cube(full, ["B04"], 10, chunks={"band": 0})


def _four_band_product(name: str, size: int = 10980) -> Product:
    base = _product(name, size=size)
    b04 = base.bands["B04"]
    bands = {b: dataclasses.replace(b04, band=b, path=f"memory://{name}/{b}.jp2")
             for b in ("B02", "B03", "B04", "B08")}  # fmt: skip
    return dataclasses.replace(base, bands={**bands, "SCL": base.bands["SCL"]})


def test_bands_share_tasks_up_to_64_mib_and_the_graph_stays_small():
    days = [_four_band_product(f"p{i}") for i in range(1)]
    days = [
        dataclasses.replace(days[0], product_id=f"p{i}", sensing_start=T0 + timedelta(days=i))
        for i in range(10)
    ]
    plan = plan_cube(days, ["B02", "B03", "B04", "B08", "SCL"], 10)
    assert plan.band_chunks == (4, 1)  # 4 x 2048^2 float32 = 64 MiB; SCL is 20 m
    dn = plan_cube(days, ["B02", "B03", "B04", "B08"], 10, units="dn")
    assert dn.band_chunks == (4,)
    array = cube_array(plan, env={}, reader=FakeReader())
    assert array.chunksize == (1, 4, 2048, 2048)
    # one task per chunk plus the shared reader: nothing per product and chunk
    assert len(array.__dask_graph__()) == plan.n_chunks + 1 == 10 * 2 * 6 * 6 + 1


def test_any_window_of_the_cube_reads_the_same_pixels_as_its_chunks():
    plan = _mosaic_plan(units="dn")
    reader = FakeReader(holes={"p1"}, saturated={"p1"})
    whole = cube_array(plan, env={}, reader=reader).compute(scheduler="sync")
    odd = cube_array(plan, env={}, reader=reader).rechunk((1, 2, 7, 13))
    np.testing.assert_array_equal(odd.compute(scheduler="sync"), whole)


# ----------------------------------------------------------------------------- clip


def _thin_aoi() -> shapely.Polygon:
    """A diagonal band 600 m wide across a 40 km product: its box holds 16 JP2 tiles."""
    line = shapely.LineString([(301000, 5299000), (339000, 5261000)])
    return line.buffer(300)


def test_a_clipped_cube_reads_chunks_meeting_the_polygon_only_and_masks_the_rest():
    product = _product("p1", size=4000)
    aoi = _thin_aoi()
    to_lonlat = Transformer.from_crs(32634, 4326, always_xy=True)
    aoi_lonlat = shapely.transform(shapely.segmentize(aoi, 50.0), to_lonlat.transform,
                                   interleaved=False)  # fmt: skip
    boxed = plan_cube([product], ["B04"], 10, aoi=aoi_lonlat, chunks=500)
    clipped = plan_cube([product], ["B04"], 10, aoi=aoi_lonlat, clip=True, chunks=500)
    assert clipped.grid == boxed.grid
    full_reader, clip_reader = FakeReader(), FakeReader()
    full = cube_array(boxed, env={}, reader=full_reader).compute(scheduler="sync")
    cut = cube_array(clipped, env={}, reader=clip_reader).compute(scheduler="sync")
    # expected independently: pixel centres inside the (reprojected) AOI, by shapely
    x, y = clipped.grid.coords()
    xx, yy = np.meshgrid(x, y)
    inside = shapely.contains_xy(clipped.aoi, xx, yy)
    np.testing.assert_array_equal(cut[0, 0][inside], full[0, 0][inside])
    assert np.isnan(cut[0, 0][~inside]).all() and inside.sum() > 1000
    # chunks the polygon misses read nothing; the reader gets each chunk's own mask
    assert all(clipped.aoi.intersects(box(*g.bounds)) for g in clip_reader.grids)
    assert len(clip_reader.grids) < 0.5 * len(full_reader.grids)
    for grid, mask in zip(clip_reader.grids, clip_reader.insides, strict=True):
        gx, gy = grid.coords()
        expected = shapely.contains_xy(clipped.aoi, *np.meshgrid(gx, gy))
        assert mask is None and expected.all() or np.array_equal(mask, expected)


def test_clip_needs_an_aoi():
    with pytest.raises(Exception, match="clip=True needs an aoi"):
        plan_cube([_product("p1")], ["B04"], 10, clip=True)
