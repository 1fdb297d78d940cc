"""sentinel_cube.plot: the views carry the expected data, stay lazy, and save offline."""

from __future__ import annotations

import math
import sys
from html.parser import HTMLParser

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image
from shapely.geometry import box

import sentinel_cube as sc
from sentinel_cube import MissingExtraError, SentinelCubeError
from sentinel_cube.analysis import acquisitions, correlation, landcover
from sentinel_cube.catalog import LocalCatalog
from sentinel_cube.plot import (
    acquisitions_plot,
    correlation_plot,
    cube_view,
    footprints,
    landcover_plot,
    save,
)
from sentinel_cube.plot._save import to_bokeh
from sentinel_cube.testing import BUDAPEST_TILES, default_specs, make_archive

hv = pytest.importorskip("holoviews")

DATES = ("2023-06-01", "2023-06-06", "2023-07-06")
AOI = box(19.70, 47.30, 19.95, 47.45)  # across the overlap of 34TCT and 34TDT
CUBE_AOI = (19.0, 47.4, 19.3, 47.6)


@pytest.fixture(scope="module")
def products(tmp_path_factory):
    root = tmp_path_factory.mktemp("plot")
    specs = default_specs(BUDAPEST_TILES, DATES, partial=None, cloud_fractions=(0.5, 0.1, 0.0))
    make_archive(root, specs, scale=61, bands=["B02", "B03", "B04"])
    return LocalCatalog(root, require_bands=None, cache_dir=root / ".cache").search()


@pytest.fixture(scope="module")
def cube(products):
    return sc.open_cube(products, bands=["B02", "B03", "B04"], resolution=610, aoi=CUBE_AOI)


def _figures(model):
    """The bokeh figures of a rendered view (a figure or a grid of them)."""
    if hasattr(model, "renderers"):
        return [model]
    return [child[0] if isinstance(child, tuple) else child for child in model.children]


def _glyphs(figure, name):
    return [r for r in figure.renderers if type(getattr(r, "glyph", None)).__name__ == name]


def _tooltips(figure):
    return [dict(t.tooltips) for t in figure.tools if type(t).__name__ == "HoverTool"]


# ----------------------------------------------------------------------------- footprints


def test_footprints_one_polygon_per_product_with_hover(products):
    figure = hv.render(footprints(products, AOI))
    [polygons] = _glyphs(figure, "MultiPolygons")
    data = polygons.data_source.data
    assert len(data["xs"]) == len(products) == 6
    assert list(data["product"]) == list(products.index)
    assert list(data["date"])[0] == products.beginposition.iloc[0].strftime("%Y-%m-%d %H:%M")
    assert list(data["cloudcoverpercentage"]) == pytest.approx(
        products.cloudcoverpercentage.tolist()
    )
    fractions = sc.coverage(products, AOI).aoi_fraction
    assert list(data["aoi_fraction"]) == pytest.approx(fractions.tolist())
    [tips] = _tooltips(figure)
    assert set(tips) == {"product", "sensing (UTC)", "cloud cover", "AOI fraction"}
    assert tips["cloud cover"].startswith("@cloudcoverpercentage")
    [outline] = _glyphs(figure, "MultiLine")
    xs = np.asarray(outline.data_source.data["xs"][0], dtype=float)
    assert (xs.min(), xs.max()) == pytest.approx((19.70, 19.95))
    # the axes hold every footprint and the AOI, with a margin
    west, south, east, north = products.total_bounds
    assert figure.x_range.start < west and figure.x_range.end > east
    assert figure.y_range.start < south and figure.y_range.end > north
    assert figure.xaxis[0].axis_label == "longitude (°E)"
    assert figure.title.text == "6 products"


def test_footprints_colour_by_category_and_basemap(products):
    figure = hv.render(footprints(products, AOI, color="tileid", tiles="OSM"))
    assert any(type(r).__name__ == "TileRenderer" for r in figure.renderers)
    [polygons] = _glyphs(figure, "MultiPolygons")
    assert sorted(set(polygons.data_source.data["tileid"])) == ["34TCT", "34TDT"]
    assert figure.legend and figure.legend[0].items
    # Web Mercator metres around 19.7 deg E
    assert 2.0e6 < figure.x_range.start < figure.x_range.end < 2.4e6
    plain = hv.render(footprints(products, color="relativeorbitnumber"))
    [polygons] = _glyphs(plain, "MultiPolygons")
    assert "aoi_fraction" not in polygons.data_source.data  # no AOI: no fraction
    assert not _glyphs(plain, "MultiLine")


def test_footprints_refuses_bad_arguments(products):
    with pytest.raises(SentinelCubeError, match="color='greenness'"):
        footprints(products, AOI, color="greenness")
    with pytest.raises(SentinelCubeError, match="tiles='Google'"):
        footprints(products, AOI, tiles="Google")
    with pytest.raises(SentinelCubeError, match="products is empty"):
        footprints(products.iloc[:0], AOI)


# ----------------------------------------------------------------------------- series


def test_acquisitions_plot_bars_match_the_table(products):
    table = acquisitions(products, "W")
    grid = hv.render(acquisitions_plot(products, "W"))
    days_figure, products_figure = _figures(grid)
    for figure, column in ((days_figure, "days"), (products_figure, "products")):
        [bars] = _glyphs(figure, "VBar")
        data = bars.data_source.data
        assert len(data[column]) == len(table) == 6  # weeks ending 06-04 .. 07-09
        assert list(data[column]) == table[column].tolist()
        assert list(data["period"]) == [p.strftime("%Y-%m-%d") for p in table.index]
        assert _tooltips(figure)
    assert days_figure.x_range is products_figure.x_range  # shared period axis
    assert list(days_figure.x_range.factors)[:2] == ["2023-06-04", "2023-06-11"]


def test_acquisitions_plot_split_by_platform(products):
    grid = hv.render(acquisitions_plot(products, "MS", by="platform"))
    days_figure, products_figure = _figures(grid)
    [stacked] = _glyphs(products_figure, "VBar")
    data = stacked.data_source.data
    assert len(data["products"]) == 2 * 2  # two months x two platforms
    totals = pd.Series(list(data["products"]), index=list(data["period"])).groupby(level=0).sum()
    assert totals.tolist() == acquisitions(products, "MS")["products"].tolist()
    [grouped] = _glyphs(days_figure, "VBar")
    assert isinstance(days_figure.x_range.factors[0], tuple)  # (period, platform) side by side


def test_landcover_plot_one_panel_per_column_on_a_shared_axis(products):
    table = landcover(products, "W")
    figures = _figures(hv.render(landcover_plot(products, "W")))
    assert len(figures) == 4
    assert len({id(f.x_range) for f in figures}) == 1
    for figure, column in zip(figures, table.columns, strict=True):
        [line] = _glyphs(figure, "Line")
        values = np.asarray(line.data_source.data[column], dtype=float)
        np.testing.assert_allclose(values, table[column].to_numpy())  # NaN gaps included
        scatters = _glyphs(figure, "Scatter")
        assert sorted(len(s.data_source.data[column]) for s in scatters) == [6, 6]
        assert (figure.y_range.start, figure.y_range.end) == (0, 100)
    assert figures[0].title.text == "vegetation (%)"
    without = _figures(hv.render(landcover_plot(products, "MS", ["waterpercentage"], points=False)))
    assert len(without) == 1 and len(_glyphs(without[0], "Scatter")) == 1


def test_correlation_plot_heatmap_with_values(products):
    matrix = correlation(products)
    figure = hv.render(correlation_plot(products))
    [cells] = _glyphs(figure, "Rect")
    [labels] = _glyphs(figure, "Text")
    assert len(cells.data_source.data["r"]) == 16
    texts = {
        (c, r): t
        for c, r, t in zip(
            *(labels.data_source.data[k] for k in ("column", "row", "text")), strict=True
        )
    }
    for i in range(4):
        for j in range(4):
            value = matrix.iloc[i, j]
            assert texts[(j, i)] == ("n/a" if math.isnan(value) else f"{value:.2f}")
    mapper = cells.glyph.fill_color["transform"]
    assert (mapper.low, mapper.high) == (-1, 1)
    assert [label for _, label in sorted(figure.xaxis[0].major_label_overrides.items())] == [
        "vegetation (%)", "water (%)", "snow/ice (%)", "cloud cover (%)"
    ]  # fmt: skip
    assert "correlation (6 products)" in figure.title.text


# ----------------------------------------------------------------------------- cube view


def _recording_cube(calls: list[int], times: int = 4, ny: int = 20, nx: int = 24):
    """A lazy uint16 (time, band, y, x) cube that records which time steps are computed."""

    def block(t: int) -> np.ndarray:
        calls.append(t)
        values = np.random.default_rng(t).integers(1, 10000, (1, 3, ny, nx)).astype(np.uint16)
        values[..., :2, :3] = 0  # no data in a corner
        return values

    steps = [
        da.from_delayed(dask.delayed(block)(t), (1, 3, ny, nx), np.uint16) for t in range(times)
    ]
    return xr.DataArray(
        da.concatenate(steps, axis=0),
        dims=("time", "band", "y", "x"),
        coords={
            "time": pd.date_range("2023-06-01T09:45", periods=times, freq="5D").to_numpy(),
            "band": ["B02", "B03", "B04"],
            "y": 5_300_000.0 - 10.0 * np.arange(ny) - 5,
            "x": 400_000.0 + 10.0 * np.arange(nx) + 5,
            "cloudcoverpercentage": ("time", [10.0, 50.0, 0.0, 20.0][:times]),
        },
    )


def test_cube_view_computes_only_the_frame_shown():
    calls: list[int] = []
    cube = _recording_cube(calls)
    view = cube_view(cube, ["B04", "B03", "B02"])
    assert calls == []  # building the view computes nothing
    figure = hv.render(view)
    assert calls == [0]
    assert figure.title.text == "2023-06-01 UTC · RGB B04/B03/B02 · cloud 10.0 %"
    assert view.kdims[0].values == list(pd.DatetimeIndex(cube.time.values))  # a time slider
    frame = view[pd.Timestamp("2023-06-16T09:45")]
    assert calls == [0, 3]  # one more time step, read once
    assert isinstance(frame, hv.RGB)


def test_cube_view_rgb_is_the_stretch_of_the_frame():
    cube = _recording_cube([])
    frame = cube_view(cube, ["B04", "B03", "B02"])[pd.Timestamp("2023-06-06T09:45")]
    expected = sc.stretch(cube.isel(time=[1]).sel(band=["B04", "B03", "B02"]), (2, 98))
    # holoviews returns gridded values south row first: flip to north-up
    red = frame.dimension_values("R", flat=False)[::-1]
    alpha = frame.dimension_values("A", flat=False)[::-1]
    np.testing.assert_array_equal(red, expected.values[0, 0])
    assert alpha[0, 0] == 0 and alpha[5, 5] == 255  # the corner without data is transparent
    left, bottom, right, top = frame.bounds.lbrt()
    assert (left, right) == (400_000.0, 400_240.0) and (bottom, top) == (5_299_800.0, 5_300_000.0)
    # one stretch for the whole cube: identical to sc.stretch over (time, y, x)
    shared = cube_view(cube, ["B04", "B03", "B02"], stretch_dims=("time", "y", "x"))
    whole = sc.stretch(cube.sel(band=["B04", "B03", "B02"]), (2, 98), dims=("time", "y", "x"))
    for i, key in enumerate(["2023-06-01T09:45", "2023-06-11T09:45"]):
        green = shared[pd.Timestamp(key)].dimension_values("G", flat=False)[::-1]
        np.testing.assert_array_equal(green, whole.values[2 * i, 1])


def test_cube_view_single_bands_and_subsampling(cube):
    view = cube_view(cube, max_size=20)
    assert [d.name for d in view.kdims] == ["time", "band"]
    assert view.kdims[1].values == ["B02", "B03", "B04"]
    image = view[view.kdims[0].values[1], "B03"]
    values = image.dimension_values("B03", flat=False)[::-1]
    step = math.ceil(max(cube.sizes["y"], cube.sizes["x"]) / 20)
    expected = cube.isel(time=1).sel(band="B03").values[::step, ::step]
    np.testing.assert_array_equal(values, expected)
    figure = hv.render(image)
    assert figure.xaxis[0].axis_label == "x (EPSG:32634, m)"
    low, high = np.nanpercentile(expected, (2, 98))
    [mapper] = [r.glyph.color_mapper for r in _glyphs(figure, "Image")]
    assert (mapper.low, mapper.high) == pytest.approx((low, high))
    x = cube.x.values
    assert figure.x_range.start == pytest.approx(x[0] - 305)


def test_cube_view_with_repeated_time_stamps_uses_labels():
    cube = _recording_cube([], times=2)
    cube = cube.assign_coords(time=[cube.time.values[0]] * 2)
    view = cube_view(cube, ["B04", "B03", "B02"])
    assert view.kdims[0].values == ["2023-06-01 09:45", "2023-06-01 09:45 #2"]
    title = hv.render(view["2023-06-01 09:45 #2"]).title.text
    assert title.startswith("2023-06-01 09:45 #2 UTC · RGB")  # the second step, by its label


def test_cube_view_refuses_bad_arguments(cube):
    with pytest.raises(SentinelCubeError, match="bands=\\['B08'\\]"):
        cube_view(cube, ["B08"])
    with pytest.raises(SentinelCubeError, match="rgb=True needs exactly three bands"):
        cube_view(cube, ["B04", "B03"], rgb=True)
    with pytest.raises(SentinelCubeError, match="dims"):
        cube_view(cube.isel(time=0))
    with pytest.raises(SentinelCubeError, match="stretch_dims"):
        cube_view(cube, ["B04", "B03", "B02"], stretch_dims=("time",))


# ----------------------------------------------------------------------------- save


class _Fetches(HTMLParser):
    """Every element that makes a browser fetch something (script/img/link/iframe src)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and tag in ("script", "img", "link", "iframe", "embed"):
                self.found.append((tag, value))


def _fetches(text: str) -> list[tuple[str, str]]:
    parser = _Fetches()
    parser.feed(text)
    return parser.found


def test_save_html_is_standalone(products, cube, tmp_path):
    views = {
        "footprints": footprints(products, AOI),
        "acquisitions": acquisitions_plot(products, "W", by="tile"),
        "landcover": landcover_plot(products, "MS"),
        "correlation": correlation_plot(products),
        "cube": cube_view(cube, ["B04", "B03", "B02"]),
    }
    for name, view in views.items():
        path = save(view, tmp_path / f"{name}.html")
        text = path.read_text()
        assert text.startswith("<!DOCTYPE html>") and f"<title>{name}</title>" in text
        assert _fetches(text) == [], name  # nothing to fetch: every script is inline
        assert "/* BEGIN bokeh.min.js */" in text
        assert path.stat().st_size < 4_000_000


def test_static_cube_browser_holds_every_frame(cube):
    model = to_bokeh(cube_view(cube, ["B04", "B03", "B02"]))
    widgets, *figures = model.children
    assert len(figures) == cube.sizes["time"] == 3
    assert [f.visible for f in figures] == [True, False, False]
    assert all(f.x_range is figures[0].x_range for f in figures)
    [slider] = widgets.children
    assert (slider.name, slider.start, slider.end) == ("frame-widget-0", 0, 2)
    single = to_bokeh(cube_view(cube))
    widgets, *figures = single.children
    assert len(figures) == 3 * 3
    assert [type(w).__name__ for w in widgets.children] == ["Slider", "Select"]
    with pytest.raises(SentinelCubeError, match="9 frames, more than max_frames=4"):
        to_bokeh(cube_view(cube), max_frames=4)


def test_save_png_with_matplotlib(products, cube, tmp_path):
    pytest.importorskip("matplotlib")
    for name, view in {
        "footprints": footprints(products, AOI),
        "cube": cube_view(cube, ["B04", "B03", "B02"]),
    }.items():
        path = save(view, tmp_path / f"{name}.png")
        with Image.open(path) as picture:
            assert picture.format == "PNG" and min(picture.size) > 200
            colours = picture.convert("RGB").getcolors(1 << 24)
            assert len(colours) > 20, name


def test_save_errors(products, tmp_path, monkeypatch):
    view = correlation_plot(products)
    with pytest.raises(SentinelCubeError, match=r"suffix must be \.html .* or \.png"):
        save(view, tmp_path / "view.svg")
    with pytest.raises(SentinelCubeError, match="cannot save a dict"):
        save({}, tmp_path / "view.html")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtraError, match=r"sentinel-cube\[png\]"):
        save(view, tmp_path / "view.png")
