"""Tests of the synthetic Sentinel-2 archive generator (``sentinel_cube.testing``).

Everything is checked from the files with rasterio, zipfile, hashlib and
xml.etree, independently of the generator's internals; expected pixel values
come from the documented pixel function (``expected_dn``) evaluated at pixel
centres computed here from the raster transform.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import struct
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.errors import RasterioIOError
from shapely.geometry import Point, Polygon

from sentinel_cube.testing import (
    ALLOWED_SCALES,
    BUDAPEST_TILES,
    ZONE_BOUNDARY_TILES,
    ProductSpec,
    break_product,
    default_specs,
    expected_dn,
    make_archive,
    make_product,
    reflectance,
    scene_class,
)

SCALE = 30
TILE_M = 109_800
NAME_RE = re.compile(
    r"^S2[ABC]_MSIL(1C|2A)_(\d{8}T\d{6})_N(\d{4})_R(\d{3})_T(\d{2}[A-Z]{3})_(\d{8}T\d{6})$"
)
# Tile corners (upper left) by the MGRS rule the generator follows (100 km square + 40 m).
ORIGINS = {"34TCT": (300000.0, 5300040.0), "34TDT": (400000.0, 5300040.0),
           "33TYN": (700000.0, 5300040.0)}  # fmt: skip
EPSG = {"34TCT": 32634, "34TDT": 32634, "33TYN": 32633}
L2A_LAYOUT = {
    "R10m": {"B02", "B03", "B04", "B08"},
    "R20m": {"B05", "B06", "B07", "B8A", "B11", "B12", "SCL"},
    "R60m": {"B01", "B09"},
}
L1C_FILES = {"B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11",
             "B12"}  # fmt: skip
RES = {"B02": 10, "B03": 10, "B04": 10, "B08": 10, "B05": 20, "B06": 20, "B07": 20, "B8A": 20,
       "B11": 20, "B12": 20, "SCL": 20, "B01": 60, "B09": 60, "B10": 60}  # fmt: skip
SCL_TAGS = {1: "SATURATED_DEFECTIVE_PIXEL_PERCENTAGE", 2: "DARK_FEATURES_PERCENTAGE",
            3: "CLOUD_SHADOW_PERCENTAGE", 4: "VEGETATION_PERCENTAGE",
            5: "NOT_VEGETATED_PERCENTAGE", 6: "WATER_PERCENTAGE", 7: "UNCLASSIFIED_PERCENTAGE",
            8: "MEDIUM_PROBA_CLOUDS_PERCENTAGE", 9: "HIGH_PROBA_CLOUDS_PERCENTAGE",
            10: "THIN_CIRRUS_PERCENTAGE", 11: "SNOW_ICE_PERCENTAGE"}  # fmt: skip


# --------------------------------------------------------------------------------------
# helpers (independent of the generator)
# --------------------------------------------------------------------------------------


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def find_all(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if local(e.tag) == name]


def text_of(root: ET.Element, name: str) -> str:
    hits = find_all(root, name)
    assert hits, f"no <{name}>"
    return hits[0].text or ""


def mtd_path(safe: Path) -> Path:
    (path,) = list(safe.glob("MTD_MSIL*.xml"))
    return path


def band_file(safe: Path, band: str) -> Path:
    hits = [
        p
        for p in safe.glob("GRANULE/*/IMG_DATA/**/*.jp2")
        if re.search(rf"_{band}(_{RES[band]}m)?\.jp2$", p.name)
    ]
    assert len(hits) == 1, hits
    return hits[0]


def pixel_centres(transform, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = transform.c + (cols + 0.5) * transform.a
    y = transform.f + (rows + 0.5) * transform.e
    return x, y


def read_with_centres(path: Path | str) -> tuple[np.ndarray, np.ndarray, np.ndarray, object]:
    with rasterio.open(path) as ds:
        data = ds.read(1)
        rows, cols = np.mgrid[0 : ds.height, 0 : ds.width]
        x, y = pixel_centres(ds.transform, rows, cols)
        return data, x, y, ds.transform


def cod_marker(path: Path) -> dict[str, int]:
    """Decode the JPEG 2000 COD marker (coding style) of a file."""
    data = path.read_bytes()
    soc = data.find(b"\xff\x4f\xff\x51")
    cod = data.find(b"\xff\x52", soc)
    _, _, progression, layers, _, levels, cbw, cbh, _, wavelet = struct.unpack(
        ">HBBHBBBBBB", data[cod + 2 : cod + 14]
    )
    return {"levels": levels, "wavelet": wavelet, "layers": layers, "progression": progression}


def footprint_lonlat(root: ET.Element) -> list[tuple[float, float]]:
    values = [float(v) for v in text_of(root, "EXT_POS_LIST").split()]
    return [(lon, lat) for lat, lon in zip(values[0::2], values[1::2], strict=True)]


# --------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> list[tuple[ProductSpec, Path]]:
    """Complete L2A products: 2 Budapest tiles x 4 dates (winter, partial, cloudy, clear)."""
    root = tmp_path_factory.mktemp("archive")
    specs = default_specs(BUDAPEST_TILES, ("2023-01-12", "2023-05-07", "2023-06-01", "2023-07-06"))
    paths = make_archive(root, specs, scale=SCALE)
    return list(zip(specs, paths, strict=True))


@pytest.fixture(scope="module")
def baseline_pair(tmp_path_factory) -> dict[tuple[str, str], tuple[ProductSpec, Path]]:
    """The same acquisition as L1C and L2A at baselines 03.01 and 05.09 (complete products)."""
    root = tmp_path_factory.mktemp("baselines")
    when = dt.datetime(2023, 7, 6, 9, 45, 51, 24000, tzinfo=dt.UTC)
    out = {}
    for level in ("L1C", "L2A"):
        for baseline in ("03.01", "05.09"):
            spec = ProductSpec("34TCT", when, level=level, platform="S2A", baseline=baseline)
            out[level, baseline] = (spec, make_product(root, spec, scale=61))
    return out


def partial_product(archive) -> tuple[ProductSpec, Path]:
    (hit,) = [(s, p) for s, p in archive if s.valid_edge is not None]
    return hit


# --------------------------------------------------------------------------------------
# names and layout
# --------------------------------------------------------------------------------------


def test_default_specs_one_datatake_per_date():
    specs = default_specs(BUDAPEST_TILES, ("2023-06-05", "2023-06-15", "2023-07-10"))
    assert len(specs) == 6
    by_date: dict[dt.date, set] = {}
    for spec in specs:
        by_date.setdefault(spec.sensing_time.date(), set()).add(
            (spec.sensing_time, spec.platform, spec.baseline, spec.generation_time)
        )
        assert spec.relative_orbit == 79
        assert (
            spec.sensing_time.tzinfo is not None
            and spec.sensing_time.utcoffset() == dt.timedelta(0)
        )
    assert all(len(v) == 1 for v in by_date.values())  # same datatake in both tiles
    assert sum(s.valid_edge is not None for s in specs) >= 1  # at least one partial product

    # relative orbit 79 cycle: S2B on 2023-06-01 + 10 n, S2A five days later
    on_cycle = default_specs("34TCT", ("2023-08-10", "2023-08-15", "2023-08-20"))
    assert [s.platform for s in on_cycle] == ["S2B", "S2A", "S2B"]
    assert on_cycle[0].name == "S2B_MSIL2A_20230810T094549_N0509_R079_T34TCT_20230810T124346"
    assert on_cycle[0].sensing_time.time() == dt.time(9, 45, 49, 24000)

    # baseline rule and override
    rule = default_specs("34TCT", ("2021-06-01", "2022-01-24", "2022-01-25", "2023-06-01"))
    assert [s.baseline for s in rule] == ["03.01", "03.01", "05.09", "05.09"]
    forced = default_specs("34TCT", ("2023-06-01", "2023-06-06"), baselines=["04.00", "05.10"])
    assert [s.baseline for s in forced] == ["04.00", "05.10"]
    assert [s.offset for s in rule] == [0, 0, 1000, 1000]


def test_l2a_names_and_layout(archive):
    for spec, path in archive:
        assert path.name == f"{spec.name}.SAFE" and path.is_dir()
        m = NAME_RE.match(spec.name)
        assert m and m.group(1) == "2A" and m.group(5) == spec.tile
        assert m.group(2) == spec.sensing_time.strftime("%Y%m%dT%H%M%S")
        granules = list((path / "GRANULE").iterdir())
        assert len(granules) == 1
        assert re.fullmatch(rf"L2A_T{spec.tile}_A\d{{6}}_\d{{8}}T\d{{6}}", granules[0].name)
        stamp = f"T{spec.tile}_{m.group(2)}"
        for folder, bands in L2A_LAYOUT.items():
            res = folder[1:]
            files = {p.name for p in (granules[0] / "IMG_DATA" / folder).iterdir()}
            assert files == {f"{stamp}_{b}_{res}.jp2" for b in bands}
        # IMAGE_FILE entries: relative paths without extension, exactly the files on disk
        root = ET.parse(path / "MTD_MSIL2A.xml").getroot()
        listed = {e.text + ".jp2" for e in find_all(root, "IMAGE_FILE")}
        on_disk = {p.relative_to(path).as_posix() for p in path.glob("GRANULE/*/IMG_DATA/*/*.jp2")}
        assert listed == on_disk
        assert (granules[0] / "MTD_TL.xml").is_file() and (path / "manifest.safe").is_file()
        assert not list(path.rglob("*.aux.xml"))


def test_l1c_layout_and_metadata(baseline_pair):
    spec, path = baseline_pair["L1C", "05.09"]
    assert NAME_RE.match(spec.name).group(1) == "1C"
    (granule,) = list((path / "GRANULE").iterdir())
    assert granule.name.startswith(f"L1C_T{spec.tile}_A")
    stamp = f"T{spec.tile}_{spec.sensing_time:%Y%m%dT%H%M%S}"
    files = {p.name for p in (granule / "IMG_DATA").iterdir()}
    assert files == {f"{stamp}_{b}.jp2" for b in L1C_FILES}  # flat, 13 bands incl. B10
    root = ET.parse(path / "MTD_MSIL1C.xml").getroot()
    assert local(root.tag) == "Level-1C_User_Product"
    assert text_of(root, "PRODUCT_TYPE") == "S2MSI1C"
    assert text_of(root, "PROCESSING_LEVEL") == "Level-1C"
    assert text_of(root, "QUANTIFICATION_VALUE") == "10000"
    assert not find_all(root, "Image_Content_QI")
    cloud = float(text_of(root, "Cloud_Coverage_Assessment"))
    # L1C cloud cover equals the L2A one of the same acquisition (same scene, same rule)
    l2a_root = ET.parse(baseline_pair["L2A", "05.09"][1] / "MTD_MSIL2A.xml").getroot()
    assert cloud == pytest.approx(float(text_of(l2a_root, "Cloud_Coverage_Assessment")), abs=1e-6)


def test_product_metadata_fields(archive):
    spec, path = archive[0]
    root = ET.parse(path / "MTD_MSIL2A.xml").getroot()
    assert (
        root.tag
        == "{https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd}Level-2A_User_Product"
    )
    assert text_of(root, "PRODUCT_URI") == f"{spec.name}.SAFE"
    assert text_of(root, "PRODUCT_START_TIME") == spec.sensing_time.strftime(
        "%Y-%m-%dT%H:%M:%S.024Z"
    )
    assert text_of(root, "PROCESSING_BASELINE") == "05.09"
    assert text_of(root, "SPACECRAFT_NAME") == f"Sentinel-{spec.platform[1:]}"
    assert text_of(root, "SENSING_ORBIT_NUMBER") == "79"
    assert text_of(root, "SENSING_ORBIT_DIRECTION") == "DESCENDING"
    assert text_of(root, "BOA_QUANTIFICATION_VALUE") == "10000"
    specials = {text_of(e, "SPECIAL_VALUE_TEXT"): text_of(e, "SPECIAL_VALUE_INDEX")
                for e in find_all(root, "Special_Values")}  # fmt: skip
    assert specials == {"NODATA": "0", "SATURATED": "65535"}
    spectral = {e.get("bandId"): (e.get("physicalBand"), text_of(e, "RESOLUTION"))
                for e in find_all(root, "Spectral_Information")}  # fmt: skip
    assert spectral["3"] == ("B4", "10") and spectral["8"] == ("B8A", "20")
    assert spectral["10"] == ("B10", "60") and len(spectral) == 13
    tl = ET.parse(next(path.glob("GRANULE/*/MTD_TL.xml"))).getroot()
    assert text_of(tl, "HORIZONTAL_CS_CODE") == "EPSG:32634"
    assert text_of(tl, "TILE_ID") == find_all(root, "Granule")[0].get("granuleIdentifier")
    sizes = {e.get("resolution"): int(text_of(e, "NROWS")) for e in find_all(tl, "Size")}
    assert sizes == {"10": 366, "20": 183, "60": 61}
    geo = {
        e.get("resolution"): tuple(text_of(e, k) for k in ("ULX", "ULY", "XDIM", "YDIM"))
        for e in find_all(tl, "Geoposition")
    }
    assert geo["10"] == ("300000", "5300040", "300", "-300")
    assert geo["60"] == ("300000", "5300040", "1800", "-1800")


# --------------------------------------------------------------------------------------
# rasters
# --------------------------------------------------------------------------------------


def test_jp2_encoding_profile(archive):
    spec, path = archive[0]
    for band, res in (("B04", 10), ("B8A", 20), ("SCL", 20), ("B01", 60)):
        f = band_file(path, band)
        with rasterio.open(f) as ds:
            assert ds.driver == "JP2OpenJPEG"
            assert ds.dtypes[0] == ("uint8" if band == "SCL" else "uint16")
            assert ds.crs.to_epsg() == EPSG[spec.tile]
            size = TILE_M // (res * SCALE)
            assert ds.shape == (size, size)
            ulx, uly = ORIGINS[spec.tile]
            assert tuple(ds.transform)[:6] == (res * SCALE, 0.0, ulx, 0.0, -res * SCALE, uly)
            assert ds.block_shapes == [(min(128, size), min(128, size))]
            assert ds.tags(ns="IMAGE_STRUCTURE").get("COMPRESSION_REVERSIBILITY") == "LOSSLESS"
            if size > 128:
                assert ds.overviews(1), "expected JPEG 2000 resolution levels as overviews"
        cod = cod_marker(f)
        assert cod["wavelet"] == 1  # reversible 5/3 wavelet: lossless
        assert cod["levels"] == 4  # RESOLUTIONS=5


def test_pixels_equal_pixel_function(archive):
    rng = np.random.default_rng(0)
    for spec, path in (archive[0], partial_product(archive), archive[-1]):
        for band in ("B04", "B8A", "B01", "B12", "SCL"):
            data, x, y, _ = read_with_centres(band_file(path, band))
            # a few pixels, one by one
            for r, c in rng.integers(0, data.shape[0], size=(5, 2)):
                assert data[r, c] == expected_dn(band, spec, x[r, c], y[r, c])
            # every pixel: the JP2 round trip is lossless
            np.testing.assert_array_equal(data, expected_dn(band, spec, x, y))
            if band != "SCL":
                valid = data > 0
                units = np.round(reflectance(band, spec, x[valid], y[valid]) * 10000)
                np.testing.assert_array_equal(data[valid], units + 1000)


def test_partial_product_nodata_is_west_of_swath_edge(archive):
    spec, path = partial_product(archive)
    e = spec.valid_edge
    for band in ("B04", "SCL", "B01"):
        data, x, y, _ = read_with_centres(band_file(path, band))
        cross = (e.x1 - e.x0) * (np.floor(y) - e.y0) - (e.y1 - e.y0) * (np.floor(x) - e.x0)
        inside = cross >= 0  # east of the north->south line
        assert 0.05 < 1 - inside.mean() < 0.5
        assert (data[~inside] == 0).all()
        assert (data[inside] > 0).all()  # valid pixels never use the nodata value
    assert band_file(path, "B04").stat().st_size > 0


def test_overlapping_tiles_of_one_zone_agree(tmp_path):
    # scale 10: 100 m pixels, so the two 10 m grids (100 km apart) share pixel centres
    specs = default_specs(BUDAPEST_TILES, ["2023-08-10"], partial=None)
    paths = make_archive(tmp_path, specs, scale=10, bands=["B04", "SCL"])
    for band in ("B04", "SCL"):
        (a, xa, ya, _), (b, xb, yb, _) = (read_with_centres(band_file(p, band)) for p in paths)
        cols_a = np.flatnonzero(np.isin(xa[0], xb[0]))
        cols_b = np.flatnonzero(np.isin(xb[0], xa[0]))
        assert len(cols_a) == len(cols_b) == 9800 // (RES[band] * 10)  # 9.8 km overlap
        np.testing.assert_array_equal(xa[0, cols_a], xb[0, cols_b])
        np.testing.assert_array_equal(ya[:, 0], yb[:, 0])
        np.testing.assert_array_equal(a[:, cols_a], b[:, cols_b])
        assert len(np.unique(a[:, cols_a])) > 3  # not trivially constant


def test_zone_boundary_tiles(tmp_path):
    specs = default_specs(ZONE_BOUNDARY_TILES, ["2023-07-06"], partial=None)
    paths = make_archive(tmp_path, specs, scale=61, bands=["B04"])
    shapes = []
    for spec, path in zip(specs, paths, strict=True):
        with rasterio.open(band_file(path, "B04")) as ds:
            assert ds.crs.to_epsg() == EPSG[spec.tile]
            assert (ds.transform.c, ds.transform.f) == ORIGINS[spec.tile]
            assert (ds.read(1) > 0).all()
        shapes.append(Polygon(footprint_lonlat(ET.parse(mtd_path(path)).getroot())))
    overlap = shapes[0].intersection(shapes[1])
    assert overlap.area > 0
    west, _, east, _ = overlap.bounds
    assert 18.25 < west < 18.45 and 19.0 < east < 19.2


# --------------------------------------------------------------------------------------
# metadata consistency
# --------------------------------------------------------------------------------------


def test_scl_percentages_agree_with_scl_raster(archive):
    clouds = []
    for spec, path in archive:
        with rasterio.open(band_file(path, "SCL")) as ds:
            scl = ds.read(1)
        counts = np.bincount(scl.ravel(), minlength=12)
        total, valid = scl.size, scl.size - counts[0]
        root = ET.parse(path / "MTD_MSIL2A.xml").getroot()
        tl = ET.parse(next(path.glob("GRANULE/*/MTD_TL.xml"))).getroot()
        for doc in (root, tl):
            assert float(text_of(doc, "NODATA_PIXEL_PERCENTAGE")) == pytest.approx(
                100 * counts[0] / total, abs=1e-6
            )
            for cls, tag in SCL_TAGS.items():
                assert float(text_of(doc, tag)) == pytest.approx(
                    100 * counts[cls] / valid, abs=1e-6
                )
        cloud = 100 * (counts[8] + counts[9] + counts[10]) / valid
        assert float(text_of(root, "Cloud_Coverage_Assessment")) == pytest.approx(cloud, abs=1e-6)
        assert float(text_of(tl, "CLOUDY_PIXEL_PERCENTAGE")) == pytest.approx(cloud, abs=1e-6)
        clouds.append(cloud)
        if spec.date.month in (12, 1, 2):
            assert counts[11] > 0  # snow in winter
        else:
            assert counts[11] == 0
    assert min(clouds) < 5 and max(clouds) > 60  # some dates clear, some overcast


def test_manifest_lists_every_file_with_size_and_md5(archive):
    spec, path = archive[1]
    root = ET.parse(path / "manifest.safe").getroot()
    assert local(root.tag) == "XFDU"
    listed = {}
    for obj in find_all(root, "dataObject"):
        stream = find_all(obj, "byteStream")[0]
        href = find_all(obj, "fileLocation")[0].get("href")
        assert href.startswith("./")
        checksum = find_all(obj, "checksum")[0]
        assert checksum.get("checksumName") == "MD5"
        listed[href[2:]] = (int(stream.get("size")), checksum.text)
    on_disk = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
    assert set(listed) == on_disk - {"manifest.safe"}
    for rel, (size, md5) in listed.items():
        data = (path / rel).read_bytes()
        assert size == len(data)
        assert md5 == hashlib.md5(data).hexdigest()
    coords = text_of(root, "coordinates")
    assert coords == text_of(ET.parse(path / "MTD_MSIL2A.xml").getroot(), "EXT_POS_LIST")


def test_footprint_within_tile_and_around_budapest(archive):
    for spec, path in archive:
        ring = footprint_lonlat(ET.parse(path / "MTD_MSIL2A.xml").getroot())
        assert ring[0] == ring[-1]
        to_utm = Transformer.from_crs(4326, EPSG[spec.tile], always_xy=True)
        xy = [to_utm.transform(lon, lat) for lon, lat in ring]
        ulx, uly = ORIGINS[spec.tile]
        for x, y in xy:
            assert ulx - 1e-3 <= x <= ulx + TILE_M + 1e-3
            assert uly - TILE_M - 1e-3 <= y <= uly + 1e-3
        area = Polygon(xy).area / TILE_M**2
        root = ET.parse(path / "MTD_MSIL2A.xml").getroot()
        nodata = float(text_of(root, "NODATA_PIXEL_PERCENTAGE")) / 100
        assert area == pytest.approx(1 - nodata, abs=0.02)
        if spec.tile == "34TCT":
            assert Polygon(ring).contains(Point(19.04, 47.50))  # Budapest


def test_offsets_only_from_baseline_04(baseline_pair):
    for level, tag in (("L1C", "RADIO_ADD_OFFSET"), ("L2A", "BOA_ADD_OFFSET")):
        old_spec, old = baseline_pair[level, "03.01"]
        new_spec, new = baseline_pair[level, "05.09"]
        assert not find_all(ET.parse(mtd_path(old)).getroot(), tag)
        offsets = find_all(ET.parse(mtd_path(new)).getroot(), tag)
        assert sorted(int(e.get("band_id")) for e in offsets) == list(range(13))
        assert {e.text for e in offsets} == {"-1000"}
        for band in ("B02", "B8A", "B09"):
            with rasterio.open(band_file(old, band)) as a, rasterio.open(band_file(new, band)) as b:
                dn_old, dn_new = a.read(1).astype(int), b.read(1).astype(int)
            assert (dn_old > 0).all()
            np.testing.assert_array_equal(dn_new - dn_old, 1000)
    # L1C is top of atmosphere: brighter blue than L2A for the same scene
    with rasterio.open(band_file(baseline_pair["L1C", "03.01"][1], "B02")) as toa:
        with rasterio.open(band_file(baseline_pair["L2A", "03.01"][1], "B02")) as boa:
            assert (toa.read(1).astype(int) > boa.read(1).astype(int)).all()


# --------------------------------------------------------------------------------------
# options: partial downloads, zips, scale
# --------------------------------------------------------------------------------------


def test_bands_subset_is_a_partial_download(tmp_path):
    spec = default_specs("34TCT", ["2023-07-06"])[0]
    path = make_product(tmp_path, spec, scale=61, bands=["B04", "SCL"])
    jp2 = sorted(p.name.split("_")[2] for p in path.rglob("*.jp2"))
    assert jp2 == ["B04", "SCL"]
    assert len(find_all(ET.parse(mtd_path(path)).getroot(), "IMAGE_FILE")) == 13
    hrefs = [
        e.get("href") for e in find_all(ET.parse(path / "manifest.safe").getroot(), "fileLocation")
    ]
    assert sorted(h.rsplit("/", 1)[-1] for h in hrefs if h.endswith(".jp2")) == sorted(
        p.name for p in path.rglob("*.jp2")
    )
    with pytest.raises(ValueError, match="B10"):
        make_product(tmp_path, spec, scale=61, bands=["B10"])  # no B10 in L2A


def test_all_resolutions_option(tmp_path):
    spec = default_specs("34TCT", ["2023-07-06"])[0]
    path = make_product(tmp_path, spec, scale=61, all_resolutions=True, bands=["B04", "SCL"])
    names = {p.name for p in path.rglob("*.jp2")}
    stamp = f"T34TCT_{spec.sensing_time:%Y%m%dT%H%M%S}"
    assert names == {f"{stamp}_B04_10m.jp2", f"{stamp}_B04_20m.jp2", f"{stamp}_B04_60m.jp2",
                     f"{stamp}_SCL_20m.jp2", f"{stamp}_SCL_60m.jp2"}  # fmt: skip
    assert len(find_all(ET.parse(mtd_path(path)).getroot(), "IMAGE_FILE")) == 27
    f = next(path.rglob("*_B04_60m.jp2"))
    data, x, y, transform = read_with_centres(f)
    assert transform.a == 60 * 61
    np.testing.assert_array_equal(data, expected_dn("B04", spec, x, y))


def test_zipped_product(tmp_path):
    spec = default_specs("34TDT", ["2023-08-10"])[0]
    path = make_product(tmp_path, spec, scale=61, bands=["B04", "B8A"], zipped=True)
    assert path == tmp_path / f"{spec.name}.zip"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no extracted copy, no temp dir
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert zf.testzip() is None
    assert all(n.startswith(f"{spec.name}.SAFE/") for n in names)
    assert f"{spec.name}.SAFE/MTD_MSIL2A.xml" in names
    member = next(n for n in names if n.endswith("_B04_10m.jp2"))
    data, x, y, _ = read_with_centres(f"/vsizip/{path}/{member}")
    np.testing.assert_array_equal(data, expected_dn("B04", spec, x, y))


def test_scale_must_divide_1830(tmp_path):
    spec = default_specs("34TCT", ["2023-07-06"])[0]
    with pytest.raises(ValueError, match=r"1, 2, 3, 5, 6, 10, 15, 30, 61"):
        make_product(tmp_path, spec, scale=7)
    assert 1830 % 61 == 0 and set(ALLOWED_SCALES) == {d for d in range(1, 1831) if 1830 % d == 0}


# --------------------------------------------------------------------------------------
# break_product
# --------------------------------------------------------------------------------------


@pytest.fixture()
def small_product(tmp_path):
    def make(zipped: bool = False) -> tuple[ProductSpec, Path]:
        spec = default_specs("34TCT", ["2023-07-06"])[0]
        return spec, make_product(tmp_path, spec, scale=61, bands=["B04", "B8A"], zipped=zipped)

    return make


def test_break_truncate_zip(small_product):
    _, path = small_product(zipped=True)
    size = path.stat().st_size
    assert break_product(path, "truncate_zip") == path
    assert path.stat().st_size == size // 2
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(path)
    _, folder = small_product()
    with pytest.raises(ValueError):
        break_product(folder, "truncate_zip")


@pytest.mark.parametrize("zipped", [False, True])
def test_break_drop_mtd_and_band(small_product, zipped):
    spec, path = small_product(zipped)
    broken = break_product(path, "drop_mtd")
    if zipped:
        assert broken == path
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        assert not any(n.endswith("MTD_MSIL2A.xml") for n in names)
        assert any(n.endswith("_B04_10m.jp2") for n in names)
    else:
        assert broken == path / "MTD_MSIL2A.xml" and not broken.exists()
        assert band_file(path, "B04").exists()

    spec, path = small_product(zipped)
    broken = break_product(path, "drop_band", band="B04")
    if zipped:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    else:
        assert broken.name.endswith("_B04_10m.jp2") and not broken.exists()
        names = [p.relative_to(path).as_posix() for p in path.rglob("*")]
    assert not any(n.endswith("_B04_10m.jp2") for n in names)
    assert any(n.endswith("_B8A_20m.jp2") for n in names)


def test_break_malform_xml(small_product):
    _, path = small_product()
    broken = break_product(path, "malform_xml")
    assert broken == path / "MTD_MSIL2A.xml" and broken.stat().st_size > 100
    with pytest.raises(ET.ParseError):
        ET.parse(broken)


@pytest.mark.parametrize("zipped", [False, True])
def test_break_corrupt_jp2(small_product, zipped):
    spec, path = small_product(zipped)
    broken = break_product(path, "corrupt_jp2", band="B04")
    if zipped:
        with zipfile.ZipFile(path) as zf:
            member = next(n for n in zf.namelist() if n.endswith("_B04_10m.jp2"))
        target = f"/vsizip/{path}/{member}"
    else:
        target = str(broken)
        assert broken.name.endswith("_B04_10m.jp2")
    with rasterio.Env(GDAL_NUM_THREADS="1"):
        with rasterio.open(target) as ds:  # the header still opens
            assert ds.shape == (180, 180)
            with pytest.raises(RasterioIOError):
                ds.read(1)
    # the other band is intact
    other = band_file(path, "B8A") if not zipped else None
    if other is not None:
        data, x, y, _ = read_with_centres(other)
        np.testing.assert_array_equal(data, expected_dn("B8A", spec, x, y))


# --------------------------------------------------------------------------------------
# the pixel function itself
# --------------------------------------------------------------------------------------


def test_pixel_function_is_deterministic_and_pinned():
    x = np.array([352150.0, 330450.0, 401234.0, 380000.0])
    y = np.array([5262150.0, 5210950.0, 5255555.0, 5290010.0])
    spec = ProductSpec("34TCT", "2023-07-06T09:45:51.024Z", platform="S2A", cloud_fraction=0.0)
    first = expected_dn("B08", spec, x, y)
    np.testing.assert_array_equal(first, expected_dn("B08", spec, x.copy(), y.copy()))
    # pinned values: identical on every platform (integer arithmetic, splitmix64)
    assert first.tolist() == PINNED_B08
    assert scene_class("2023-06-01", x, y).tolist() == PINNED_SCL_0601
    # floats are floored to whole metres
    np.testing.assert_array_equal(expected_dn("B08", spec, x + 0.75, y + 0.25), first)


def test_pixel_function_physics():
    xs = np.arange(300_150, 409_800, 300.0)[None, :]
    ys = np.arange(5_300_040 - 150, 5_190_240, -300.0)[:, None]
    clear = "2023-07-06"
    cls = scene_class(clear, xs, ys, cloud_fraction=0.0)
    assert not np.isin(cls, [3, 8, 9, 10, 11]).any()
    b04, b08, b02 = (
        reflectance(b, clear, xs, ys, cloud_fraction=0.0) for b in ("B04", "B08", "B02")
    )
    ndvi = (b08 - b04) / (b08 + b04)
    assert ndvi[cls == 4].mean() > 0.6  # vegetation: low red, high NIR
    assert (b08[cls == 6] < 0.05).mean() > 0.95  # water: dark in NIR
    b11, b03 = (reflectance(b, clear, xs, ys, cloud_fraction=0.0) for b in ("B11", "B03"))
    assert (b11[cls == 5] > b03[cls == 5]).all()  # bare soil rises to SWIR
    # seasonal signal: crop NIR in January is lower than in July
    jan = reflectance("B08", "2023-01-12", xs, ys, cloud_fraction=0.0)
    jan_cls = scene_class("2023-01-12", xs, ys, cloud_fraction=0.0)
    ground = (jan_cls != 11) & (cls != 6)
    assert np.median(jan[ground]) < np.median(b08[ground]) - 0.05
    # clouds are bright in every band; their fraction follows cloud_fraction
    cloudy = scene_class("2023-06-01", xs, ys, cloud_fraction=0.6)
    share = np.isin(cloudy, [8, 9]).mean()
    assert 0.35 < share < 0.85
    thick = cloudy == 9
    assert (reflectance("B02", "2023-06-01", xs, ys, cloud_fraction=0.6)[thick] > 0.5).all()
    assert (b02[cls == 4] < 0.1).all()
    # snow only in winter: bright visible, dark SWIR
    winter = scene_class("2023-01-12", xs, ys, cloud_fraction=0.0)
    snow = winter == 11
    assert snow.any()
    assert (reflectance("B03", "2023-01-12", xs, ys, cloud_fraction=0.0)[snow] > 0.7).all()
    assert (reflectance("B11", "2023-01-12", xs, ys, cloud_fraction=0.0)[snow] < 0.1).all()


PINNED_B08 = [3828, 3288, 4334, 4293]
PINNED_SCL_0601 = [9, 9, 5, 5]
