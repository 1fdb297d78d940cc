"""The HTML report (``sentinel-cube report``): pages, links, tables, offline resources."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from shapely.geometry import box, mapping

import sentinel_cube as sc
from sentinel_cube.catalog import LocalCatalog
from sentinel_cube.cli._report import report_command
from sentinel_cube.report import write_products, write_report
from sentinel_cube.testing import BUDAPEST_TILES, default_specs, make_archive

DATES = ("2023-06-01", "2023-06-06", "2023-07-06")
AOI = (19.0, 47.4, 19.3, 47.6)  # inside 34TCT only


class _Page(HTMLParser):
    """Links, fetched resources and table cells of a page (script bodies are skipped)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.fetches: list[str] = []
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "a" and "href" in attributes:
            self.links.append(attributes["href"])
        if tag in ("script", "img", "link", "iframe") and (
            "src" in attributes or "href" in attributes
        ):
            self.fetches.append(attributes.get("src") or attributes.get("href"))
        self._in_cell = tag in ("td", "th")

    def handle_endtag(self, tag):
        self._in_cell = False

    def handle_data(self, data):
        if self._in_cell and data.strip():
            self.cells.append(data.strip())


def _parse(path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    specs = default_specs(BUDAPEST_TILES, DATES, partial=None, cloud_fractions=(0.5, 0.1, 0.0))
    make_archive(root / "archive", specs, scale=61, bands=["B02", "B03", "B04"])
    products = LocalCatalog(
        root / "archive", require_bands=None, cache_dir=root / ".cache"
    ).search()
    cube = sc.open_cube(products, bands=["B02", "B03", "B04"], resolution=610, aoi=AOI)
    sc.to_zarr(cube, root / "cube.zarr", mode="w", progress=False)
    write_products(products, str(root / "products.geojson"))
    (root / "aoi.geojson").write_text(json.dumps(mapping(box(*AOI))))
    return root, products


def test_report_with_a_cube(archive, tmp_path):
    root, products = archive
    lines: list[str] = []
    out = tmp_path / "report"
    paths = write_report(
        products, AOI, out, cube=root / "cube.zarr", max_frames=2, echo=lines.append
    )
    assert set(paths) == {
        "index", "footprints", "acquisitions", "landcover", "correlation", "cube", "rgb"
    }  # fmt: skip
    assert all(p.parent == out and p.is_file() for p in paths.values())
    assert len(lines) == len(paths)
    index = _parse(paths["index"])
    for name in ("footprints", "acquisitions", "landcover", "correlation", "cube"):
        assert f"{name}.html" in index.links
        page = _parse(paths[name])
        assert page.fetches == [], name  # BokehJS and data inline
        assert page.links == ["index.html"]  # back to the report
    assert index.fetches == ["rgb.png"]
    # summary: 6 products on 3 days; the AOI lies in 34TCT only
    cells = index.cells
    assert cells[cells.index("products") + 1] == "6"
    assert cells[cells.index("sensing days") + 1] == "3"
    assert cells[cells.index("products covering the whole AOI") + 1] == "3"
    text = paths["index"].read_text()
    assert "the cube browser shows 2 of the cube&#x27;s 3 time steps" in text
    assert "2023-07-06 (B04/B03/B02, 2-98 % stretch, the clearest time step)" in text
    cube = sc.open_zarr(root / "cube.zarr")
    with Image.open(paths["rgb"]) as picture:
        assert picture.size == (cube.sizes["x"], cube.sizes["y"]) and picture.mode == "RGBA"
    browser = paths["cube"].read_text()
    assert browser.count('"name":"frame-widget-0"') == 1
    assert len(re.findall(r'"type":"object","name":"Figure"', browser)) == 2


def test_report_command_line(archive, tmp_path):
    root, products = archive
    out = tmp_path / "cli-report"
    result = CliRunner().invoke(
        report_command,
        [str(root / "products.geojson"), "--aoi", "19.0,47.4,19.3,47.6", "--out", str(out),
         "--freq", "MS", "--title", "Budapest <demo>", "--cube", str(root / "cube.zarr"),
         "--rgb", "B02", "B03", "B08"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "6 products read from" in result.output
    assert f"open {out / 'index.html'}" in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "acquisitions.html", "correlation.html", "cube.html", "footprints.html", "index.html",
        "landcover.html",
    ]  # fmt: skip
    index = (out / "index.html").read_text()
    assert "<title>Budapest &lt;demo&gt;</title>" in index  # escaped
    assert "2023-06" in index and "2023-07" in index
    assert "lacks one of the bands B02, B03, B08: no RGB picture" in index  # no B08 in the cube
    assert '"name":"frame-widget-1"' in (out / "cube.html").read_text()  # band selector


def test_report_errors_and_missing_percentages(archive, tmp_path):
    root, products = archive
    runner = CliRunner()
    bad_aoi = runner.invoke(
        report_command, [str(root / "products.geojson"), "--aoi", "19,47,x,48", "--out", "r"]
    )
    assert bad_aoi.exit_code == 2 and "minx,miny,maxx,maxy" in bad_aoi.output
    missing = runner.invoke(
        report_command, [str(root / "aoi.geojson"), "--aoi", str(root / "aoi.geojson"), "--out",
                         str(tmp_path / "none")],
    )  # fmt: skip
    assert missing.exit_code == 1 and "is not a products table" in missing.output
    with pytest.raises(sc.SentinelCubeError, match="products table is empty"):
        write_report(products.iloc[:0], AOI, tmp_path / "empty")
    bare = products.assign(
        vegetationpercentage=np.nan, waterpercentage=np.nan, snowicepercentage=np.nan
    )
    paths = write_report(bare, AOI, tmp_path / "bare")
    assert "landcover" in paths and "correlation" not in paths  # cloud cover alone
    assert "no values for vegetationpercentage" in paths["index"].read_text()
