"""open_cube against independent expectations: rasterio reads, reprojects and the XML."""

from __future__ import annotations

import dataclasses

import dask
import numpy as np
import pytest
import rasterio
import rasterio.features
import shapely
from pyproj import Transformer
from shapely.geometry import box

import sentinel_cube as sc
from _cube_helpers import (
    band_file,
    gdal_reproject_dn,
    native_dn,
    nearest_dn,
    radiometry,
    to_reflectance,
)
from sentinel_cube import ProductError, SentinelCubeError, SentinelCubeWarning
from sentinel_cube import _graph as graph_module
from sentinel_cube.cube import open_cube
from sentinel_cube.testing import (
    BUDAPEST_TILES,
    ZONE_BOUNDARY_TILES,
    break_product,
    default_specs,
    make_archive,
)

DATES = ("2023-06-06", "2023-06-16", "2023-07-06")


def _raise_on_compute(dsk, keys, **kwargs):
    raise AssertionError("the cube was computed while it should stay lazy")


@pytest.fixture(scope="module")
def budapest(tmp_path_factory):
    """34TCT + 34TDT, three dates (the second partial), scale 30 (300 m 'native' pixels)."""
    root = tmp_path_factory.mktemp("budapest")
    specs = default_specs(tiles=BUDAPEST_TILES, dates=DATES)
    return make_archive(root, specs, scale=30, bands=["B04", "B05", "B08", "SCL"])


def _tile_paths(paths, tile):
    return [p for p in paths if f"_T{tile}_" in p.name]


def test_building_a_cube_reads_no_pixel(budapest, monkeypatch):
    def no_open(*args, **kwargs):
        raise AssertionError(f"a file was opened while planning: {args[:1]}")

    monkeypatch.setattr(rasterio, "open", no_open)
    with dask.config.set(scheduler=_raise_on_compute):
        cube = open_cube(budapest, bands=["B04", "B08"], resolution=300)
        subset = cube.sel(band="B08").isel(time=slice(0, 2))  # selecting stays lazy too
    assert cube.dims == ("time", "band", "y", "x")
    assert subset.shape[0] == 2


def test_native_grid_pixels_equal_the_jp2(budapest):
    paths = _tile_paths(budapest, "34TCT")
    # west of the 34TDT overlap, so only 34TCT contributes
    cube = open_cube(paths, bands=["B04", "B08"], resolution=300, groupby=None,
                     bounds=(301000, 5200000, 395000, 5299000))  # fmt: skip
    values = cube.compute()
    x, y = cube.x.values, cube.y.values
    for t, product_id in enumerate(values.product_id.values):
        safe = next(p for p in paths if p.name.startswith(product_id))
        for band in ("B04", "B08"):
            path = band_file(safe, band)
            dn = native_dn(path, x, y)
            expected = to_reflectance(dn, *radiometry(safe, band))
            np.testing.assert_array_equal(values.sel(band=band).isel(time=t).values, expected)
    # the grid coincides with the tile's pixels
    with rasterio.open(band_file(paths[0], "B04")) as src:
        assert (cube.rio.transform().c - src.transform.c) % 300 == 0
        assert (cube.rio.transform().f - src.transform.f) % 300 == 0
    assert np.isfinite(values).mean() > 0.5  # the comparison covered real pixels


def test_coordinates_and_metadata(budapest):
    cube = open_cube(budapest, bands=["B04"], resolution=300)
    assert cube.rio.crs.to_epsg() == 32634
    assert cube.sizes["time"] == len(DATES)  # two tiles per day fused into one step
    assert list(cube.n_products.values) == [2, 2, 2]
    assert set(cube.tileid.values) == {"34TCT,34TDT"}
    # pixel centres: x[0] is half a pixel from the left edge of the transform
    assert cube.x.values[0] == cube.rio.transform().c + 150
    products = sc.LocalCatalog(budapest[0].parent, require_bands=None).search()
    first_day = products[products.beginposition.dt.strftime("%Y-%m-%d") == DATES[0]]
    lo, hi = first_day.cloudcoverpercentage.min(), first_day.cloudcoverpercentage.max()
    assert lo - 1e-9 <= cube.cloudcoverpercentage.values[0] <= hi + 1e-9


def test_same_day_mosaic_first_valid_pixel_wins(tmp_path):
    specs = default_specs(tiles=BUDAPEST_TILES, dates=("2023-06-16",), partial=0)
    paths = make_archive(tmp_path, specs, scale=10, bands=["B04"])
    tct, tdt = _tile_paths(paths, "34TCT")[0], _tile_paths(paths, "34TDT")[0]
    # the 9.8 km overlap of the two tiles; scale 10 puts both on one 100 m lattice
    cube = open_cube(
        paths, bands=["B04"], resolution=100, bounds=(398000, 5195000, 412000, 5300000)
    )
    assert cube.sizes["time"] == 1
    got = cube.isel(time=0, band=0).values
    x, y = cube.x.values, cube.y.values
    first = to_reflectance(native_dn(band_file(tct, "B04"), x, y), *radiometry(tct, "B04"))
    second = to_reflectance(native_dn(band_file(tdt, "B04"), x, y), *radiometry(tdt, "B04"))
    expected = np.where(np.isnan(first), second, first)  # 34TCT first, then 34TDT
    np.testing.assert_array_equal(got, expected)
    # both tiles really contribute to the overlap
    overlap = ~np.isnan(second)
    assert (np.isnan(first) & overlap).any() and (~np.isnan(first) & overlap).any()


def test_other_utm_zone_is_reprojected_exactly(tmp_path):
    specs = default_specs(tiles=ZONE_BOUNDARY_TILES, dates=("2023-06-06",), partial=None)
    paths = make_archive(tmp_path, specs, scale=30, bands=["B04"])
    tyn = _tile_paths(paths, "33TYN")[0]
    cube = open_cube(paths, bands=["B04"], resolution=300, crs="EPSG:32634", groupby=None,
                     bounds=(290000, 5190000, 360000, 5300000), chunks=64)  # fmt: skip
    step = list(cube.tileid.values).index("33TYN")
    got = cube.isel(time=step, band=0).values
    transform, crs = cube.rio.transform(), cube.rio.crs
    # nearest neighbour by definition (pyproj + numpy), chunked 64 px in the cube
    dn = nearest_dn(band_file(tyn, "B04"), transform, crs, got.shape)
    expected = to_reflectance(dn, *radiometry(tyn, "B04"))
    assert np.isfinite(expected).mean() > 0.3
    np.testing.assert_array_equal(got, expected)
    # rasterio.warp.reproject of the whole band agrees up to GDAL's approximate
    # transformer (0.125 px tolerance), which moves ~1-2 % of pixels by one source pixel
    gdal = to_reflectance(gdal_reproject_dn(band_file(tyn, "B04"), transform, crs, got.shape),
                          *radiometry(tyn, "B04"))  # fmt: skip
    same = (gdal == got) | (np.isnan(gdal) & np.isnan(got))
    assert same.mean() > 0.97


def test_default_crs_is_the_zone_holding_most_of_the_aoi(tmp_path):
    specs = default_specs(tiles=ZONE_BOUNDARY_TILES, dates=("2023-06-06",), partial=None)
    paths = make_archive(tmp_path, specs, scale=61, bands=["B04"])
    to_lonlat = Transformer.from_crs(32633, 4326, always_xy=True)
    west = to_lonlat.transform(715000, 5250000)  # inside 33TYN, west of 18 deg E
    aoi = (west[0] - 0.05, west[1] - 0.05, west[0] + 0.05, west[1] + 0.05)
    assert open_cube(paths, bands=["B04"], resolution=610, aoi=aoi).rio.crs.to_epsg() == 32633
    assert open_cube(paths, bands=["B04"], resolution=610).rio.crs.to_epsg() in (32633, 32634)


def test_plan_and_clip_agree_on_a_large_aoi_across_a_central_meridian(budapest):
    # 4 x 3 degrees across 21 E (central meridian of UTM zone 34): in UTM the southern
    # edge bows ~1.8 km south of the chord between its corners
    aoi = box(19.0, 45.0, 23.0, 48.0)
    with dask.config.set(scheduler=_raise_on_compute):
        cube = open_cube(budapest, bands=["B04"], resolution=300, aoi=aoi)
        clipped = sc.clip(cube, aoi)
    assert cube.rio.crs.to_epsg() == 32634
    to_utm = Transformer.from_crs(4326, 32634, always_xy=True)
    left, bottom, right, top = to_utm.transform_bounds(*aoi.bounds, densify_pts=4001)
    grid = cube.rio.bounds()
    assert grid[0] <= left and grid[1] <= bottom and grid[2] >= right and grid[3] >= top
    # clip keeps the rows down to the AOI's southernmost point (21 E, 45 N) ...
    assert float(clipped.y.min()) - 150 <= bottom + 300
    # ... and so does rasterio's own mask of the outline sampled every 1e-4 degree
    t = np.linspace(0.0, 1.0, 40001)
    lon = np.concatenate([19 + 4 * t, np.full_like(t, 23.0), 23 - 4 * t, np.full_like(t, 19.0)])
    lat = np.concatenate([np.full_like(t, 45.0), 45 + 3 * t, np.full_like(t, 48.0), 48 - 3 * t])
    outline = shapely.Polygon(np.column_stack(to_utm.transform(lon, lat)))
    inside = rasterio.features.geometry_mask(
        [outline], out_shape=cube.shape[-2:], transform=cube.rio.transform(), invert=True
    )
    rows = np.flatnonzero(inside.any(axis=1))
    cols = np.flatnonzero(inside.any(axis=0))
    np.testing.assert_array_equal(clipped.y.values, cube.y.values[rows[0] : rows[-1] + 1])
    np.testing.assert_array_equal(clipped.x.values, cube.x.values[cols[0] : cols[-1] + 1])


def test_mixed_baselines_agree_on_identical_ground(tmp_path):
    (spec,) = default_specs(tiles=("34TCT",), dates=("2023-06-06",), partial=None)
    old = dataclasses.replace(spec, baseline="03.01")
    new = dataclasses.replace(spec, baseline="05.09")
    paths = make_archive(tmp_path, [old, new], scale=30, bands=["B04", "B08"])
    raw = [
        native_dn(band_file(p, "B04"), np.array([300150.0]), np.array([5299890.0])) for p in paths
    ]
    assert abs(int(raw[0][0, 0]) - int(raw[1][0, 0])) == 1000  # the files really differ
    refl = open_cube(paths, bands=["B04", "B08"], resolution=300, groupby=None).compute()
    assert refl.sizes["time"] == 2
    np.testing.assert_array_equal(refl.isel(time=0).values, refl.isel(time=1).values)
    dn = open_cube(paths, bands=["B04", "B08"], resolution=300, groupby=None, units="dn").compute()
    assert dn.dtype == np.uint16
    np.testing.assert_array_equal(dn.isel(time=0).values, dn.isel(time=1).values)
    # harmonised DN follow the 04.00 convention: reflectance = (DN - 1000) / 10000
    valid = dn.values > 0
    np.testing.assert_allclose(
        (dn.values[valid].astype(np.float64) - 1000) / 10000, refl.values[valid], atol=1e-7
    )


def test_mixed_resolutions(budapest):
    paths = _tile_paths(budapest, "34TCT")[:1]
    safe = paths[0]
    # B05 (600 m pixels at scale 30) on a 300 m grid: each pixel repeated 2 x 2
    cube = open_cube(
        paths, bands=["B05"], resolution=300, bounds=(301000, 5200000, 395000, 5299000)
    )
    got = cube.isel(time=0, band=0).values
    dn = native_dn(band_file(safe, "B05"), cube.x.values, cube.y.values)
    np.testing.assert_array_equal(got, to_reflectance(dn, *radiometry(safe, "B05")))
    # B04 (300 m) on a 600 m grid: nearest takes a source pixel of each 2 x 2 block...
    coarse = open_cube(paths, bands=["B04"], resolution=600).isel(time=0, band=0)
    dn = native_dn(band_file(safe, "B04"), coarse.x.values, coarse.y.values)
    expected = to_reflectance(dn, *radiometry(safe, "B04"))
    np.testing.assert_array_equal(coarse.values, expected)
    # ... and "average" comes from the JP2's 2x reduced resolution level (the fast path)
    averaged = open_cube(paths, bands=["B04"], resolution=600, resampling="average")
    with rasterio.open(band_file(safe, "B04"), OVERVIEW_LEVEL=0) as level:
        expected = to_reflectance(level.read(1), *radiometry(safe, "B04"))
    np.testing.assert_array_equal(averaged.isel(time=0, band=0).values, expected)


def test_chunks_align_with_jp2_tiles_and_empty_chunks_are_fills(budapest, monkeypatch):
    paths = _tile_paths(budapest, "34TCT")[:1]
    # a grid reaching 30 km east of 34TCT: the eastern chunks hold no product
    cube = open_cube(paths, bands=["B04"], resolution=300, chunks=64,
                     bounds=(320000, 5200000, 440000, 5290000))  # fmt: skip
    origin_x = 300000.0
    edges = cube.x.values[0] - 150 + np.cumsum(cube.chunks[3])[:-1] * 300
    assert np.all((edges - origin_x) % (64 * 300) == 0)
    reads = []

    def counting(source, grid, *args, **kwargs):
        reads.append(grid.bounds)
        return real_read(source, grid, *args, **kwargs)

    real_read = graph_module.read_source
    monkeypatch.setattr(graph_module, "read_source", counting)
    values = cube.compute(scheduler="threads")
    tile_east = 409800.0
    starts = np.cumsum((0,) + cube.chunks[3][:-1])
    cols_with_data = int(np.sum(cube.x.values[starts] - 150 < tile_east))
    assert len(reads) == cols_with_data * len(cube.chunks[2])  # one read per chunk with data
    assert all(left < tile_east for left, *_ in reads)  # the others are fills: no read
    assert np.isnan(values.where(values.x > tile_east + 150)).all()


def test_bad_inputs_are_named(budapest, tmp_path):
    with pytest.raises(SentinelCubeError, match="products is empty"):
        open_cube([], bands=["B04"])
    with pytest.raises(SentinelCubeError, match="B10"):
        open_cube(budapest[:1], bands=["B10"])  # not in L2A
    with pytest.raises(SentinelCubeError, match="B03.*missing|missing.*B03"):
        open_cube(budapest[:1], bands=["B03"])  # listed in the MTD, file not written
    with pytest.raises(SentinelCubeError, match="aoi"):
        open_cube(budapest, bands=["B04"], aoi=(2.0, 48.0, 2.5, 48.5))  # Paris
    with pytest.raises(SentinelCubeError, match="unknown Sentinel-2 band"):
        open_cube(budapest, bands=["B99"])
    with pytest.raises(SentinelCubeError, match="resampling"):
        open_cube(budapest, bands=["B04"], resampling="fancy")
    l1c = make_archive(tmp_path / "l1c", default_specs(tiles=("34TCT",), dates=DATES[:1],
                       levels=("L1C",), partial=None), scale=61, bands=["B04"])  # fmt: skip
    with pytest.raises(SentinelCubeError, match="mix processing levels"):
        open_cube([*budapest[:1], *l1c], bands=["B04"])


def test_corrupt_jp2_raises_with_its_path_or_is_skipped(tmp_path):
    specs = default_specs(tiles=("34TCT",), dates=DATES[:2], partial=None)
    paths = make_archive(tmp_path, specs, scale=30, bands=["B04"])
    broken = break_product(paths[1], "corrupt_jp2")
    cube = open_cube(paths, bands=["B04"], resolution=300)
    with pytest.raises(ProductError, match=broken.name):
        cube.compute()
    skipping = open_cube(paths, bands=["B04"], resolution=300, on_error="skip")
    with pytest.warns(SentinelCubeWarning, match=paths[1].name.removesuffix(".SAFE")):
        values = skipping.compute()
    assert np.isnan(values.isel(time=1)).all()
    assert np.isfinite(values.isel(time=0)).mean() > 0.9


def test_planning_a_thousand_products_opens_no_file(budapest, monkeypatch):
    from datetime import timedelta

    from sentinel_cube.cube import to_products

    base = to_products(budapest)
    products = []
    for i in range(1000):
        template = base[i % len(base)]
        shift = timedelta(days=5 * (i // len(base)))
        products.append(
            dataclasses.replace(
                template,
                sensing_start=template.sensing_start + shift,
                product_id=f"{template.product_id}_{i}",
            )
        )

    def no_open(*args, **kwargs):
        raise AssertionError("planning opened a file")

    monkeypatch.setattr(rasterio, "open", no_open)
    with dask.config.set(scheduler=_raise_on_compute):
        cube = open_cube(products, bands=["B04", "B08"], resolution=300)
    days = {p.sensing_start.date() for p in products}  # 09:45 UTC is 11:02 solar time here
    assert cube.sizes["time"] == len(days)
    assert cube.data.npartitions == (
        len(days) * len(cube.chunks[1]) * len(cube.chunks[2]) * len(cube.chunks[3])
    )


# --------------------------------------------------------------- reads mean what they say


@pytest.fixture(scope="module")
def with_scl(tmp_path_factory):
    """One product at scale 10: B04 1098 px, SCL 549 px; both files have reduced levels."""
    specs = default_specs(tiles=("34TCT",), dates=DATES[:1], partial=None)
    (path,) = make_archive(tmp_path_factory.mktemp("scl"), specs, scale=10, bands=["B04", "SCL"])
    with rasterio.open(band_file(path, "SCL")) as src:
        assert src.overviews(1)[:2] == [2, 4]  # a reduced level was there to be misused
    return path


@pytest.mark.parametrize("reduced_levels", [None, True, False])
@pytest.mark.parametrize("resampling", ["nearest", "average", "bilinear"])
@pytest.mark.parametrize("resolution", [100, 400, 600, 800])
def test_class_bands_are_never_blended(with_scl, resolution, resampling, reduced_levels):
    cube = open_cube([with_scl], bands=["SCL"], resolution=resolution, units="dn",
                     resampling=resampling, reduced_levels=reduced_levels)  # fmt: skip
    got = cube.isel(time=0, band=0).values
    scl_file = band_file(with_scl, "SCL")
    # nearest from the full-resolution pixels, whatever resampling the reflectance bands use
    expected = native_dn(scl_file, cube.x.values, cube.y.values)
    with rasterio.open(scl_file) as src:
        classes = set(np.unique(src.read(1)).tolist())
    assert set(np.unique(got).tolist()) - {0} <= classes  # no class invented (0: outside)
    np.testing.assert_array_equal(got, expected)
    assert (got > 0).mean() > 0.5


def _saturate(path, where):
    """Rewrite a band JP2 with DN 65535 (saturated) where ``where`` holds, keeping the rest."""
    with rasterio.open(path) as src:
        data, profile = src.read(1), src.profile
    data[where] = 65535
    profile.update(driver="JP2OpenJPEG", QUALITY=100, REVERSIBLE="YES", YCC="NO")
    for key in ("blockxsize", "blockysize", "tiled", "interleave"):
        profile.pop(key, None)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    with rasterio.open(path) as src:
        assert (src.read(1) == 65535).sum() == where.sum()
    return data


def test_dn_and_reflectance_cubes_mosaic_the_same_pixels(tmp_path):
    (spec,) = default_specs(tiles=("34TCT",), dates=("2023-06-06",), partial=None)
    new = dataclasses.replace(spec, baseline="05.09")  # mosaicked first (newest processing)
    old = dataclasses.replace(spec, baseline="03.01")  # fills what the first lacks
    paths = make_archive(tmp_path, [new, old], scale=30, bands=["B04"])
    first_file, second_file = band_file(paths[0], "B04"), band_file(paths[1], "B04")
    rng = np.random.default_rng(3)
    shape = rasterio.open(first_file).shape
    saturated_first = rng.random(shape) < 0.2
    saturated_both = saturated_first & (rng.random(shape) < 0.3)
    first = _saturate(first_file, saturated_first)
    second = _saturate(second_file, saturated_both)
    assert (first != 0).mean() > 0.9 and (second != 0).mean() > 0.9

    kwargs = dict(bands=["B04"], resolution=300, bounds=(300000, 5190240, 409800, 5300040))
    refl = open_cube(paths, **kwargs).isel(time=0, band=0)
    dn = open_cube(paths, units="dn", **kwargs).isel(time=0, band=0)
    assert refl.sizes == dn.sizes and refl.shape == shape  # one step, on the files' own grid
    refl_values, dn_values = refl.values, dn.values

    # expectations from the files alone: saturated (65535) and 0 are not valid data
    (off1, q1), (off2, q2) = radiometry(paths[0], "B04"), radiometry(paths[1], "B04")
    valid1 = (first != 0) & (first != 65535)
    valid2 = (second != 0) & (second != 65535)
    expected_refl = np.where(
        valid1, to_reflectance(first, off1, q1), to_reflectance(second, off2, q2)
    )
    # harmonised DN (offset -1000, quantification 10000), integers from the XML radiometry
    assert q1 == q2 == 10000
    h1 = first.astype(np.int64) + int(off1) + 1000
    h2 = second.astype(np.int64) + int(off2) + 1000
    expected_dn = np.where(valid1, h1, np.where(valid2, np.clip(h2, 1, 65534), 0))
    np.testing.assert_array_equal(refl_values, expected_refl)
    np.testing.assert_array_equal(dn_values, expected_dn)
    # the two units agree pixel for pixel: same validity, same values after conversion
    np.testing.assert_array_equal(dn_values != 0, ~np.isnan(refl_values))
    valid = dn_values != 0
    np.testing.assert_allclose(
        (dn_values[valid].astype(np.float64) - 1000) / 10000, refl_values[valid], atol=1e-7
    )
    assert (saturated_first & valid2).any() and (saturated_both & (second != 0)).any()
