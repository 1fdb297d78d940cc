"""LocalCatalog on a generated archive, checked against the files themselves."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest
from shapely.geometry import Point

import sentinel_cube as sc
from sentinel_cube import CatalogError, SentinelCubeWarning
from sentinel_cube.catalog import _local
from sentinel_cube.testing import BUDAPEST_TILES, break_product, default_specs, make_archive

DATES = ("2023-06-06", "2023-06-16", "2023-07-06", "2023-08-10")


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("local-archive")
    specs = default_specs(tiles=BUDAPEST_TILES, dates=DATES)
    make_archive(root, specs[:4], scale=61)
    make_archive(root, specs[4:], scale=61, zipped=True)  # hub-style zips too
    return root


def _mtd_value(product: Path, tag: str) -> str:
    """A value from the product MTD, read with a regex (folder or zip)."""
    if product.suffix == ".zip":
        import zipfile

        with zipfile.ZipFile(product) as archive:
            name = next(n for n in archive.namelist() if re.search(r"MTD_MSIL..\.xml$", n))
            text = archive.read(name).decode()
    else:
        text = next(product.glob("MTD_MSIL*.xml")).read_text()
    return re.search(rf"<{tag}[^>]*>([^<]+)</{tag}>", text).group(1)


def test_lists_every_product_with_values_from_the_xml(archive):
    products = sc.LocalCatalog(archive).search()
    on_disk = sorted(p for p in archive.iterdir() if p.suffix in (".SAFE", ".zip"))
    assert sorted(products["path"]) == sorted(str(p) for p in on_disk)
    names = {p.name.removesuffix(".SAFE").removesuffix(".zip") for p in on_disk}
    assert set(products.index) == names
    for product_id, row in products.iterrows():
        path = Path(row["path"])
        assert row["cloudcoverpercentage"] == pytest.approx(
            float(_mtd_value(path, "Cloud_Coverage_Assessment"))
        )
        assert row["vegetationpercentage"] == pytest.approx(
            float(_mtd_value(path, "VEGETATION_PERCENTAGE"))
        )
        assert row["beginposition"] == pd.Timestamp(_mtd_value(path, "PRODUCT_START_TIME"))
        assert row["tileid"] == re.search(r"_T(\d\d[A-Z]{3})_", product_id).group(1)
        assert row["size"] > 0
    assert str(products["beginposition"].dtype) == "datetime64[ns, UTC]"
    assert products.crs.to_epsg() == 4326
    assert list(products["beginposition"]) == sorted(products["beginposition"])


def test_filters_and_aoi(archive):
    cat = sc.LocalCatalog(archive)
    everything = cat.search()
    cloudy = cat.search(cloudcoverpercentage=(0, 20))
    assert set(cloudy.index) == set(everything.index[everything.cloudcoverpercentage <= 20])
    june = cat.search(date=("2023-06-01", "2023-06-30"))
    assert set(june.beginposition.dt.month) == {6} and len(june) == 4
    assert len(cat.search(date="2023-08-10")) == 2
    # a point east of Budapest lies only in 34TDT (x > 410 km in zone 34)
    assert set(cat.search(aoi=Point(20.2, 47.5).buffer(0.01)).tileid) == {"34TDT"}
    assert len(cat.search(aoi=(2.0, 48.5, 2.5, 49.0))) == 0  # Paris: empty, with all columns
    assert list(cat.search(aoi=(2.0, 48.5, 2.5, 49.0)).columns) == list(everything.columns)


@pytest.mark.realdata
def test_real_budapest_boundary_falls_in_34tct(archive, real_data):
    hits = sc.LocalCatalog(archive).search(aoi=real_data / "aoi" / "budapest.geojson")
    assert set(hits.tileid) == {"34TCT"}


def test_bad_products_warn_once_each_and_good_ones_are_listed(archive, tmp_path):
    root = tmp_path / "mixed"
    shutil.copytree(archive, root)
    good = sorted(p for p in root.iterdir())
    # make four bad products out of copies of good ones
    bad = {}
    sources = [next(p for p in good if p.suffix == ".zip")]
    sources += [p for p in good if p.suffix == ".SAFE"][:3]
    modes = ("truncate_zip", "drop_mtd", "malform_xml", "drop_band")
    for how, source in zip(modes, sources, strict=True):
        target = root / f"bad-{how}{source.suffix}"
        (shutil.copy if source.is_file() else shutil.copytree)(source, target)
        break_product(target, how)
        bad[how] = target
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not a product")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        products = sc.LocalCatalog(root).search()
    messages = [str(w.message) for w in caught if issubclass(w.category, SentinelCubeWarning)]
    assert len(products) == len(good)
    assert len(messages) == len(bad) + 1
    for how, path in bad.items():
        assert sum(str(path) in m for m in messages) == 1, (how, messages)
    assert any("notes" in m and "not a Sentinel-2 product" in m for m in messages)


def test_rescan_reads_only_what_changed(archive, tmp_path, monkeypatch):
    root = tmp_path / "cached"
    shutil.copytree(archive, root)
    calls = []
    original = _local.read_product

    def counting(path, **kwargs):
        calls.append(Path(path).name)
        return original(path, **kwargs)

    monkeypatch.setattr(_local, "read_product", counting)
    cache = tmp_path / "cache"
    first = sc.LocalCatalog(root, cache_dir=cache).search()
    assert len(calls) == len(first)
    calls.clear()
    second = sc.LocalCatalog(root, cache_dir=cache).search()
    assert calls == []  # unchanged folder: metadata comes from the cache
    pd.testing.assert_frame_equal(first.drop(columns="geometry"), second.drop(columns="geometry"))
    # delete one band file: only that product is read again, and it is now refused
    victim = next(p for p in sorted(root.iterdir()) if p.suffix == ".SAFE")
    next(victim.rglob("*_B04_10m.jp2")).unlink()
    with pytest.warns(SentinelCubeWarning, match="B04"):
        third = sc.LocalCatalog(root, cache_dir=cache).search()
    assert calls == [victim.name]
    assert len(third) == len(first) - 1


def test_empty_and_missing_roots(tmp_path):
    empty = sc.LocalCatalog(tmp_path).search()
    assert len(empty) == 0 and "cloudcoverpercentage" in empty.columns
    with pytest.raises(CatalogError, match="not a folder"):
        sc.LocalCatalog(tmp_path / "nope")


def test_partial_products_are_listed_when_asked(tmp_path):
    specs = default_specs(tiles=("34TCT",), dates=DATES[:1], partial=None)
    make_archive(tmp_path, specs, scale=61, bands=["B04", "SCL"])
    with pytest.warns(SentinelCubeWarning, match="missing"):
        assert len(sc.LocalCatalog(tmp_path, cache=False).search()) == 0
    partial = sc.LocalCatalog(tmp_path, require_bands=["B04", "SCL"], cache=False).search()
    assert len(partial) == 1
