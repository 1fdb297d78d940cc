"""Cube operations against independent references: rio.clip, numpy, xarray, rasterio."""

from __future__ import annotations

import dask
import dask.array
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from shapely.geometry import MultiPolygon, Point, Polygon, box

import sentinel_cube as sc
from _cube_helpers import band_file, native_dn
from sentinel_cube import SentinelCubeError
from sentinel_cube.ops._clip import aoi_in_crs
from sentinel_cube.ops._percentile import GRID_OFFSET, N_BINS, grid_histogram
from sentinel_cube.testing import BUDAPEST_TILES, default_specs, make_archive

DATES = ("2023-06-06", "2023-06-16", "2023-06-26", "2023-07-06", "2023-07-16", "2023-08-10")
BANDS = ["B02", "B03", "B04", "B08"]
# a ring around central Budapest (with a hole) plus a separate island
CITY = Point(19.05, 47.5).buffer(0.35).difference(Point(19.05, 47.5).buffer(0.08))
AOI = MultiPolygon([CITY, Point(19.9, 47.3).buffer(0.1)])


def _raise_on_compute(dsk, keys, **kwargs):
    raise AssertionError("computed while it should stay lazy")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("ops-archive")
    specs = default_specs(tiles=BUDAPEST_TILES, dates=DATES)
    return make_archive(root, specs, scale=61, bands=[*BANDS, "B11", "SCL"])


@pytest.fixture(scope="module")
def cube(archive):
    return sc.open_cube(archive, bands=BANDS, resolution=610, chunks=64)


@pytest.fixture(scope="module")
def computed(cube):
    return cube.compute()


# ----------------------------------------------------------------------------- clip


@pytest.mark.parametrize("source", ["open_cube", "in memory"])
@pytest.mark.parametrize("all_touched", [False, True])
def test_clip_equals_rio_clip(cube, computed, all_touched, source):
    # a cube from open_cube is read inside the AOI only; any other cube is masked
    clipped = sc.clip(cube if source == "open_cube" else computed, AOI, all_touched=all_touched)
    geometry = aoi_in_crs(AOI, cube.rio.crs)
    expected = computed.rio.clip([geometry], cube.rio.crs, all_touched=all_touched, drop=True)
    got = clipped.compute()
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got.x, expected.x)
    np.testing.assert_array_equal(got.y, expected.y)
    np.testing.assert_array_equal(got.values, expected.values)
    assert np.isnan(got.values).any() and np.isfinite(got.values).any()


def test_clip_with_aoi_file_in_another_crs(cube, tmp_path):
    path = tmp_path / "aoi_3857.gpkg"
    gpd.GeoDataFrame(geometry=[CITY], crs=4326).to_crs(3857).to_file(path)
    in_degrees = sc.clip(cube, CITY).isel(time=0).compute()
    from_file = sc.clip(cube, path).isel(time=0).compute()
    assert from_file.shape == in_degrees.shape
    same = (from_file.values == in_degrees.values) | (
        np.isnan(from_file.values) & np.isnan(in_degrees.values)
    )
    assert same.mean() > 0.999  # reprojection round trip may move an edge pixel


def test_clip_reads_only_chunks_the_aoi_touches(archive, monkeypatch):
    from sentinel_cube import _graph

    calls = []
    original = _graph.read_source

    def counting(source, grid, *args, **kwargs):
        calls.append(grid)
        return original(source, grid, *args, **kwargs)

    monkeypatch.setattr(_graph, "read_source", counting)
    cube = sc.open_cube(archive, bands=["B04"], resolution=610, chunks=16)
    small = Point(19.05, 47.5).buffer(0.05)
    with dask.config.set(scheduler=_raise_on_compute):
        clipped = sc.clip(cube, small, crop=False)  # full extent, mostly outside
    values = clipped.compute(scheduler="threads")
    outline = aoi_in_crs(small, cube.rio.crs)
    assert calls and all(outline.intersects(box(*grid.bounds)) for grid in calls)
    read = sum(grid.height * grid.width for grid in calls)
    assert read < cube.sizes["time"] * cube.sizes["y"] * cube.sizes["x"] / 20
    assert np.isfinite(values.values).sum() > 0


def test_clip_errors_and_empty_times():
    with pytest.raises(SentinelCubeError, match="misses the cube"):
        times = pd.date_range("2023-01-01", periods=2)
        tiny = xr.DataArray(
            np.ones((2, 1, 4, 4), np.float32), dims=("time", "band", "y", "x"),
            coords={"time": times, "x": 300150.0 + 300 * np.arange(4),
                    "y": 5299890.0 - 300 * np.arange(4)},
        ).rio.write_crs(32634)  # fmt: skip
        sc.clip(tiny, (2.0, 48.0, 2.5, 48.5))
    values = np.ones((2, 1, 4, 4), np.float32)
    values[1] = np.nan
    cube = tiny.copy(data=values)
    near = aoi_in_crs((18, 47, 19, 48), 4326)  # noqa: F841 - reprojection sanity
    box_aoi = _lonlat_box(cube)
    kept = sc.clip(cube, box_aoi, drop_empty_time=True)
    assert kept.sizes["time"] == 1


def _lonlat_box(cube):
    from pyproj import Transformer

    to = Transformer.from_crs(cube.rio.crs, 4326, always_xy=True)
    left, bottom, right, top = cube.rio.bounds()
    corners = [to.transform(x, y) for x, y in ((left, bottom), (right, bottom), (right, top),
                                                 (left, top))]  # fmt: skip
    return Polygon(corners).buffer(0.001)


# ----------------------------------------------------------------------------- mask


def test_mask_clouds_matches_scl_read_with_rasterio(archive, cube, computed):
    masked = sc.mask_clouds(cube).compute()
    tct = [p for p in archive if "_T34TCT_" in p.name]
    x, y = cube.x.values, cube.y.values
    west = x < 400000  # only 34TCT there: its SCL decides
    for t, product_id in enumerate(cube.product_id.values):
        safe = next(p for p in tct if product_id.startswith(p.name.removesuffix(".SAFE")))
        scl = native_dn(band_file(safe, "SCL"), x, y)
        cloudy = np.isin(scl, [3, 8, 9, 10])[:, west]
        frame, original = masked.values[t][:, :, west], computed.values[t][:, :, west]
        assert np.isnan(frame[:, cloudy]).all()
        np.testing.assert_array_equal(frame[:, ~cloudy], original[:, ~cloudy])
    assert np.isnan(masked.values).sum() > np.isnan(computed.values).sum()


def test_mask_clouds_with_scl_band_snow_and_l1c(archive, tmp_path):
    with_scl = sc.open_cube(archive, bands=["B04", "SCL"], resolution=610, units="dn")
    masked = sc.mask_clouds(with_scl, snow=True).compute()
    scl = masked.sel(band="SCL").values
    assert set(np.unique(scl)) <= set(range(12))
    cloudy = np.isin(scl, [3, 8, 9, 10, 11])
    assert (masked.sel(band="B04").values[cloudy] == 0).all()
    l1c = make_archive(tmp_path, default_specs(tiles=("34TCT",), dates=DATES[:1], levels=("L1C",),
                       partial=None), scale=61, bands=["B04"])  # fmt: skip
    with pytest.raises(SentinelCubeError, match="Level-2A"):
        sc.mask_clouds(sc.open_cube(l1c, bands=["B04"], resolution=610))


# ----------------------------------------------------------------------------- stretch


@pytest.mark.parametrize("units", ["reflectance", "dn"])
def test_percentiles_equal_numpy_exactly(archive, units):
    cube = sc.open_cube(archive, bands=BANDS, resolution=610, chunks=64, units=units)
    values = cube.compute().values
    pooled = sc.cube_percentiles(cube, (2, 50, 98)).values  # (band, percentile)
    per_frame = sc.cube_percentiles(cube, (2, 98), dims=("y", "x")).values
    for b in range(len(BANDS)):
        band = values[:, b]
        valid = band[~np.isnan(band)] if units == "reflectance" else band[band != 0]
        for j, p in enumerate((2, 50, 98)):
            assert pooled[b, j] == np.nanpercentile(valid, p)
        for t in range(values.shape[0]):
            frame = values[t, b]
            valid = frame[~np.isnan(frame)] if units == "reflectance" else frame[frame != 0]
            for j, p in enumerate((2, 98)):
                assert per_frame[t, b, j] == np.nanpercentile(valid, p)


def test_percentile_edge_cases():
    values = np.full((2, 3, 6, 5), np.nan, np.float32)
    values[:, 1, 2, 3] = np.float32(0.1234)  # one value, twice: ties
    values[0, 2] = (np.arange(30).reshape(6, 5) % 4).astype(np.float32) / np.float32(10000)
    cube = xr.DataArray(values, dims=("time", "band", "y", "x"),
                        attrs={"sentinel_cube_units": "reflectance"}).chunk(
        {"time": 1, "band": 1, "y": 4, "x": 4})  # fmt: skip
    result = sc.cube_percentiles(cube, (0, 2, 98, 100)).values
    assert np.isnan(result[0]).all()  # all no data
    assert (result[1] == np.float32(0.1234)).all()
    ties = values[0, 2].ravel()
    assert [result[2, j] for j in range(4)] == [np.nanpercentile(ties, p) for p in (0, 2, 98, 100)]
    stretched = sc.stretch(cube, (2, 98)).compute()
    assert (stretched.values[:, 0] == 0).all()  # no data -> 0
    assert (stretched.values[:, 1][~np.isnan(values[:, 1])] == 0).all()  # low == high -> 0
    radix = sc.cube_percentiles(cube * np.float32(1.37), (2, 98), method="radix").values
    scaled = (values * np.float32(1.37))[:, 2]
    assert radix[2, 1] == np.nanpercentile(scaled[~np.isnan(scaled)], 98)


def test_stretch_is_lazy_and_correct(cube, computed):
    rgb = computed.sel(band=["B04", "B03", "B02"])
    lazy = sc.stretch(cube.sel(band=["B04", "B03", "B02"]), (2, 98))  # percentiles computed
    assert isinstance(lazy.data, dask.array.Array)  # the stretched pixels are not
    done = lazy.compute()
    low, high = done.stretch_low.values, done.stretch_high.values
    for i, band in enumerate(["B04", "B03", "B02"]):
        values = rgb.sel(band=band).values
        assert low[i] == np.nanpercentile(values, 2) and high[i] == np.nanpercentile(values, 98)
    got = done.values
    scaled = (rgb.values.astype(np.float64) - low[None, :, None, None]) / (high - low)[
        None, :, None, None
    ]
    expected = np.where(np.isnan(rgb.values), 0, np.rint(np.clip(scaled, 0, 1) * 255))
    np.testing.assert_array_equal(got, expected.astype(np.uint8))
    per_frame = sc.stretch(cube, (2, 98), dims=("y", "x"), out="float")
    assert per_frame.stretch_low.dims == ("time", "band")
    assert np.nanmax(per_frame.values) <= 1 and np.nanmin(per_frame.values) >= 0


def _numpy_stretch(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """uint8 stretch of (time, band, y, x) values by per-band bounds, with numpy alone."""
    low, high = low[None, :, None, None], high[None, :, None, None]
    scaled = (values.astype(np.float64) - low) / (high - low)
    return np.where(np.isnan(values), 0, np.rint(np.clip(scaled, 0, 1) * 255)).astype(np.uint8)


@pytest.mark.parametrize("how", ["mean", "median"])
def test_stretch_of_an_aggregate_equals_numpy(cube, how):
    window = {"band": ["B04", "B03", "B02"], "y": slice(0, 128), "x": slice(128, 256)}
    aggregated = sc.aggregate(cube.sel(band=window["band"]).isel(y=window["y"], x=window["x"]),
                              freq="MS", how=how)  # fmt: skip
    values = aggregated.compute().values  # float32, off the 1e-4 reflectance grid
    low = np.array([np.nanpercentile(values[:, b], 2) for b in range(3)])
    high = np.array([np.nanpercentile(values[:, b], 98) for b in range(3)])
    expected = _numpy_stretch(values, low, high)
    for source in (aggregated, aggregated.compute()):  # dask- and numpy-backed
        got = sc.stretch(source, (2, 98))
        np.testing.assert_array_equal(got.stretch_low.values, low)
        np.testing.assert_array_equal(got.stretch_high.values, high)
        np.testing.assert_array_equal(got.values, expected)
    assert "sentinel_cube_units" not in aggregated.attrs  # its values are not read DNs


def test_stretch_of_any_float_equals_numpy(computed):
    rgb = computed.sel(band=["B04", "B03", "B02"]).isel(y=slice(0, 60), x=slice(100, 180))
    for values in (rgb * np.float32(1.37), rgb.astype(np.float64) / 3):
        values = values.assign_attrs(sentinel_cube_units="reflectance")  # a misleading attr
        data = values.values
        low = np.array([np.nanpercentile(data[:, b], 2) for b in range(3)])
        high = np.array([np.nanpercentile(data[:, b], 98) for b in range(3)])
        got = sc.stretch(values.chunk({"time": 1, "band": 1, "y": 32, "x": 32}), (2, 98))
        np.testing.assert_array_equal(got.stretch_low.values, low)
        np.testing.assert_array_equal(got.stretch_high.values, high)
        np.testing.assert_array_equal(got.values, _numpy_stretch(data, low, high))


def test_pooled_stretch_reads_once_for_percentiles_then_streams(archive, tmp_path, monkeypatch):
    from sentinel_cube import _graph
    from sentinel_cube.ops import _stretch

    reads, histograms = [], []
    read_chunk, block_histograms = _graph.CubeReader.__getitem__, _stretch._block_histograms

    def counting_read(self, index):
        reads.append(index)
        return read_chunk(self, index)

    def counting_histograms(block, *args, **kwargs):
        if block.size:  # not dask's call on an empty block to learn the output type
            histograms.append(block.shape)
        return block_histograms(block, *args, **kwargs)

    monkeypatch.setattr(_graph.CubeReader, "__getitem__", counting_read)
    monkeypatch.setattr(_stretch, "_block_histograms", counting_histograms)
    cube = sc.open_cube(archive, bands=["B04", "B03", "B02"], resolution=610,
                        chunks={"band": 1, "y": 64, "x": 64})  # fmt: skip
    n_chunks = cube.data.npartitions
    reads.clear()
    rgb = sc.stretch(cube, (2, 98))  # pooled over time, y and x
    # the percentiles are known now, from one pass: each chunk read and counted once
    assert len(histograms) == n_chunks and len(reads) == n_chunks
    assert isinstance(rgb.stretch_low.data, np.ndarray)
    # every output chunk depends on its own input chunk only (and the bounds)
    reads.clear()
    rgb.data.blocks[1, 2, 1, 3].compute()
    assert len(reads) == 1
    # writing the whole cube, a picture and a store never redo the percentiles
    reads.clear()
    done = rgb.compute()
    assert len(reads) == n_chunks
    sc.to_png(rgb.isel(time=0), tmp_path / "rgb.png")
    sc.to_zarr(rgb, tmp_path / "rgb.zarr", progress=False)
    assert len(histograms) == n_chunks
    np.testing.assert_array_equal(sc.open_zarr(tmp_path / "rgb.zarr").values, done.values)


_PEAK_SCRIPT = """
import numpy as np, dask, dask.array as da, xarray as xr
import sentinel_cube as sc

def rss(field):
    lines = open("/proc/self/status").read().splitlines()
    return int(next(x for x in lines if x.startswith(field + ":")).split()[1]) * 1024

def make(block_info=None):
    (t0, _), (b0, _), (y0, y1), (x0, x1) = block_info[None]["array-location"]
    n = (y1 - y0) * (x1 - x0)
    seed = np.uint32((t0 * 131 + b0 * 17 + y0 * 7 + x0) % 65521)
    keys = (np.arange(n, dtype=np.uint32) * np.uint32(2654435761) + seed) % np.uint32(12000)
    return (keys + 1).astype(np.uint16).reshape(1, 1, y1 - y0, x1 - x0)

side, chunk = 5120, 512
data = da.map_blocks(make, dtype=np.uint16, chunks=((1,) * 6, (1,), (chunk,) * (side // chunk),
                                                    (chunk,) * (side // chunk)))
cube = xr.DataArray(data, dims=("time", "band", "y", "x"))

class Sink:
    def __setitem__(self, key, value):
        pass

with dask.config.set(scheduler="threads", num_workers=2):
    before = rss("VmRSS")
    stretched = sc.stretch(cube, (2, 98))
    da.store(stretched.data, Sink(), lock=False)
print(cube.nbytes, rss("VmHWM") - before)
"""


def test_pooled_stretch_of_a_large_cube_stays_within_a_fraction_of_its_size():
    import subprocess
    import sys
    from pathlib import Path

    if not Path("/proc/self/status").exists():
        pytest.skip("peak memory is read from /proc (Linux)")
    run = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT], capture_output=True, text=True,
                         timeout=120, env={**__import__("os").environ})  # fmt: skip
    assert run.returncode == 0, run.stderr
    nbytes, growth = (int(v) for v in run.stdout.split())
    assert nbytes >= 300 * 2**20  # of uint16; 2.4 GiB as float64 intermediates
    assert growth < nbytes / 3, f"grew by {growth / 2**20:.0f} MiB for {nbytes / 2**20:.0f} MiB"


# ----------------------------------------------------------------------------- aggregate


def _xarray_reference(computed, how, freq=None, groupby=None, keep=None, q=None):
    data = computed if keep is None else computed.isel(time=np.flatnonzero(keep))
    with xr.set_options(use_flox=False):
        grouped = data.resample(time=freq) if freq else data.groupby(groupby)
        if how == "quantile":
            return grouped.quantile(q).drop_vars("quantile")
        if how == "sum":
            return grouped.sum(min_count=1)
        return getattr(grouped, how)()


@pytest.mark.parametrize("how", ["mean", "median", "min", "max", "std", "count", "sum", "first",
                                 "last", "quantile"])  # fmt: skip
def test_aggregate_equals_xarray_resample(cube, computed, how):
    keep = computed.cloudcoverpercentage.values < 50
    result = sc.aggregate(cube, freq="W", how=how, q=0.75,
                          where=cube.cloudcoverpercentage < 50)  # fmt: skip
    # numpy's nanquantile loops in Python per pixel: compare on a window that spans
    # both tiles and the no-data edge
    window = {"y": slice(20, 100), "x": slice(120, 220)}
    expected = _xarray_reference(computed.isel(window), how, freq="W", keep=keep, q=0.75)
    labels = pd.Series(0, index=computed.time.values).resample("W").size().index
    expected = expected.reindex(time=labels)
    if how == "count":
        expected = expected.fillna(0)
    got = result.isel(window).compute()
    np.testing.assert_array_equal(got.time.values, labels.values)
    exact = how in ("min", "max", "count", "first", "last")
    if exact:
        np.testing.assert_array_equal(got.values, expected.values.astype(got.dtype))
    else:
        np.testing.assert_allclose(got.values, expected.values, rtol=2e-6, atol=1e-7)
    n = pd.Series(1, index=computed.time.values[keep]).resample("W").size()
    assert list(got.n_scenes.values) == list(n.reindex(labels, fill_value=0).values)
    assert (got.n_scenes.values == 0).any()  # there are empty weeks ...
    empty = got.n_scenes.values == 0
    assert (got.values[empty] == 0).all() if how == "count" else np.isnan(got.values[empty]).all()


def test_aggregate_by_metadata_weights_and_mask(cube, computed):
    by_month = sc.aggregate(cube, groupby="time.month", how="max").compute()
    np.testing.assert_array_equal(
        by_month.values, _xarray_reference(computed, "max", groupby="time.month").values
    )
    by_platform = sc.aggregate(cube, groupby="platform", how="mean").compute()
    assert set(by_platform.platform.values) == set(computed.platform.values)
    weights = 1 - cube.cloudcoverpercentage / 100
    weighted = sc.aggregate(cube, freq="MS", how="mean", weights=weights).compute()
    w = xr.DataArray(weights.values, dims="time", coords={"time": computed.time})
    with xr.set_options(use_flox=False):
        numerator = (computed * w).resample(time="MS").sum(min_count=1)
        denominator = w.where(computed.notnull()).resample(time="MS").sum(min_count=1)
    np.testing.assert_allclose(weighted.values, (numerator / denominator).values, rtol=1e-6)
    masked = sc.aggregate(cube, freq="MS", how="count", mask="scl").compute()
    plain = sc.aggregate(cube, freq="MS", how="count").compute()
    assert (masked.values <= plain.values).all() and (masked.values < plain.values).any()
    with pytest.raises(SentinelCubeError, match="how="):
        sc.aggregate(cube, freq="MS", how="mode")
    with pytest.raises(SentinelCubeError, match="not a time component"):
        sc.aggregate(cube, groupby="nonsense")


# ----------------------------------------------------------------------------- indices + export


def test_indices(cube, computed):
    ndvi = sc.indices.ndvi(cube).compute()
    nir, red = computed.sel(band="B08"), computed.sel(band="B04")
    np.testing.assert_allclose(ndvi.values, ((nir - red) / (nir + red)).values, rtol=1e-6)
    dn = sc.indices.ndvi(sc.open_cube(cube.product_path.values[0].split("\n"), bands=["B04", "B08"],
                                      resolution=610, units="dn"))  # fmt: skip
    assert dn.dtype == np.float32
    with pytest.raises(SentinelCubeError, match="B11"):
        sc.indices.ndbi(cube)


def test_to_png_and_geotiff(cube, tmp_path):
    frame = sc.stretch(cube.sel(band=["B04", "B03", "B02"]), (2, 98)).isel(time=0)
    path = sc.to_png(frame, tmp_path / "rgb.png")
    with rasterio.open(path) as png:
        data = png.read()
    assert data.shape == (4, cube.sizes["y"], cube.sizes["x"])
    np.testing.assert_array_equal(data[:3], frame.values)
    assert ((data[3] == 0) == (frame.values == 0).all(axis=0)).all()
    with pytest.raises(SentinelCubeError, match="R, G, B order"):
        sc.to_png(cube.sel(band=["B02", "B03", "B04"]).isel(time=0), tmp_path / "bad.png")
    with pytest.raises(SentinelCubeError, match="3 bands"):
        sc.to_png(cube.isel(time=0), tmp_path / "bad.png")
    tif = sc.to_geotiff(cube.isel(time=0), tmp_path / "frame.tif")
    with rasterio.open(tif) as src:
        assert src.crs.to_epsg() == 32634 and src.count == 4
        assert src.transform == cube.rio.transform()
        np.testing.assert_array_equal(src.read(), cube.isel(time=0).values)
        assert src.overviews(1) or src.width < 512
    with pytest.raises(SentinelCubeError, match="one time step"):
        sc.to_geotiff(cube, tmp_path / "many.tif")


def test_operations_on_a_process_cluster_equal_threads(cube):
    distributed = pytest.importorskip("distributed")
    pipeline = [
        lambda c: sc.clip(c, CITY),
        lambda c: sc.stretch(c, (2, 98), dims=("y", "x")),
        lambda c: sc.aggregate(c, freq="MS", how="median", mask="scl"),
    ]
    threaded = [f(cube).compute(scheduler="threads") for f in pipeline]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:  # fmt: skip
        with distributed.Client(cluster):
            remote = [f(cube).compute() for f in pipeline]
    for a, b in zip(threaded, remote, strict=True):
        np.testing.assert_array_equal(a.values, b.values)


def test_grid_histogram_places_grid_values_and_counts_the_rest():
    rng = np.random.default_rng(7)
    keys = rng.integers(-1000, 64535, 5000)  # reflectance = key / 10000, inside the grid
    on_grid = (keys.astype(np.float32) / np.float32(10000)).astype(np.float32)
    off_grid = on_grid[:300] + np.float32(3e-5)  # between two grid points
    outside = np.array([-0.2, 6.6, 1e30, -1e30, np.inf, -np.inf], np.float32)
    values = np.concatenate([on_grid, off_grid, outside, np.full(77, np.nan, np.float32)])
    counts = grid_histogram(rng.permutation(values))
    expected = np.bincount(keys + GRID_OFFSET, minlength=N_BINS)
    np.testing.assert_array_equal(counts[:N_BINS], expected)
    assert counts[N_BINS] == len(off_grid) + len(outside)  # NaN is not counted at all
