from __future__ import annotations

import json
import sys
import types

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Point, Polygon, box, shape

from sentinel_cube import AOIError, MissingExtraError, SentinelCubeError, geocode, read_aoi
from sentinel_cube.aoi import aoi_hull, aoi_to_crs, reproject_geometry


def test_bbox_becomes_box():
    result = read_aoi((19.0, 47.4, 19.2, 47.6))
    assert result.equals(box(19.0, 47.4, 19.2, 47.6))


def test_wkt_and_geojson_text():
    wkt = "POLYGON ((19 47, 20 47, 20 48, 19 47))"
    assert read_aoi(wkt).equals(shapely.from_wkt(wkt))
    text = json.dumps(
        {"type": "Polygon", "coordinates": [[[19, 47], [20, 47], [20, 48], [19, 47]]]}
    )
    assert read_aoi(text).equals(shapely.from_wkt(wkt))


def test_feature_collection_is_unioned():
    a, b = box(0, 0, 1, 1), box(2, 2, 3, 3)
    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {}, "geometry": a.__geo_interface__},
            {"type": "Feature", "properties": {}, "geometry": b.__geo_interface__},
        ],
    }
    result = read_aoi(collection)
    assert isinstance(result, MultiPolygon)
    assert result.area == pytest.approx(2.0)


def test_file_in_other_crs_is_reprojected(tmp_path):
    to_utm = Transformer.from_crs(4326, 32634, always_xy=True)
    corners = [(19.0, 47.4), (19.2, 47.4), (19.2, 47.6), (19.0, 47.6)]
    utm = Polygon([to_utm.transform(x, y) for x, y in corners])
    path = tmp_path / "aoi_utm.gpkg"
    gpd.GeoDataFrame(geometry=[utm], crs=32634).to_file(path)
    result = read_aoi(path)
    for corner in corners:  # every original corner lies on the reprojected outline
        assert result.exterior.distance(Point(corner)) < 1e-7


def test_aoi_to_crs_follows_curved_edges():
    # 4 x 3 degrees across 21 E, the central meridian of UTM zone 34: parallels bow
    # southwards towards the meridian, by ~1.8 km along the southern edge
    aoi = box(19.0, 45.0, 23.0, 48.0)
    projected = aoi_to_crs(aoi, "EPSG:32634")
    to_utm = Transformer.from_crs(4326, 32634, always_xy=True)
    t = np.linspace(0.0, 1.0, 40001)  # every 1e-4 degree along each edge
    edges = [(19 + 4 * t, np.full_like(t, 45.0)), (19 + 4 * t, np.full_like(t, 48.0)),
             (np.full_like(t, 19.0), 45 + 3 * t), (np.full_like(t, 23.0), 45 + 3 * t)]  # fmt: skip
    for lon, lat in edges:
        x, y = to_utm.transform(lon, lat)
        assert shapely.distance(projected.exterior, shapely.points(x, y)).max() < 0.05
    expected = to_utm.transform_bounds(*aoi.bounds, densify_pts=4001)
    np.testing.assert_allclose(projected.bounds, expected, atol=0.05, rtol=0)
    naive = shapely.transform(aoi, to_utm.transform, interleaved=False)
    assert naive.bounds[1] - expected[1] > 1000  # what vertices alone would miss


def test_reproject_geometry_round_trip_and_holes():
    ring = Point(19.05, 47.5).buffer(0.5).difference(Point(19.05, 47.5).buffer(0.1))
    utm = reproject_geometry(ring, 4326, 32634)
    assert len(utm.interiors) == 1
    back = reproject_geometry(utm, 32634, 4326)
    assert back.hausdorff_distance(ring) < 1e-6  # ~10 cm
    assert reproject_geometry(ring, 4326, "EPSG:4326").equals(ring)


def test_geodataframe_and_geometry(tmp_path):
    frame = gpd.GeoDataFrame(geometry=[box(1, 1, 2, 2)], crs=4326)
    assert read_aoi(frame).equals(box(1, 1, 2, 2))
    assert read_aoi(box(1, 1, 2, 2)).equals(box(1, 1, 2, 2))


@pytest.mark.realdata
def test_real_budapest_boundary(real_data):
    path = real_data / "aoi" / "budapest.geojson"
    raw = json.loads(path.read_text())
    geometries = (
        [shape(f["geometry"]) for f in raw["features"]]
        if raw.get("type") == "FeatureCollection"
        else [shape(raw.get("geometry", raw))]
    )
    expected = shapely.union_all(geometries)
    result = read_aoi(path)
    assert result.symmetric_difference(expected).area < 1e-12
    assert result.contains(Point(19.04, 47.50))  # the Parliament area lies inside
    minx, miny, maxx, maxy = result.bounds
    assert 18.9 < minx < maxx < 19.4 and 47.3 < miny < maxy < 47.7


def test_hull_is_convex():
    l_shape = Polygon([(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)])
    assert aoi_hull(l_shape).area == pytest.approx(3.5)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("missing.geojson", "does not exist"),
        ((19.2, 47.4, 19.0, 47.6), "min < max"),
        ((500000, 5200000, 510000, 5210000), "degrees"),
        ("POINT (19 47)", "not a polygon"),
        (12, "cannot read an AOI"),
    ],
)
def test_bad_inputs_say_what_was_expected(tmp_path, monkeypatch, value, fragment):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AOIError, match=fragment) as info:
        read_aoi(value)
    assert "\n" not in str(info.value)


def test_empty_and_non_polygon_files(tmp_path):
    empty = tmp_path / "empty.geojson"
    empty.write_text("")
    with pytest.raises(AOIError, match=r"empty\.geojson.*is empty"):
        read_aoi(empty)
    points = tmp_path / "points.geojson"
    gpd.GeoDataFrame(geometry=[Point(19, 47)], crs=4326).to_file(points)
    with pytest.raises(AOIError, match=r"points\.geojson.*not a polygon"):
        read_aoi(points)
    no_features = tmp_path / "none.geojson"
    no_features.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(AOIError, match="none.geojson"):
        read_aoi(no_features)


def test_geocode_without_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "osmnx", None)  # makes `import osmnx` fail
    with pytest.raises(MissingExtraError, match=r"pip install 'sentinel-cube\[geocode\]'"):
        geocode("Budapest")


def test_geocode_unreachable_network_is_explained(monkeypatch):
    fake = types.ModuleType("osmnx")

    def geocode_to_gdf(place):
        raise ConnectionError("Name or service not known")

    fake.geocode_to_gdf = geocode_to_gdf
    monkeypatch.setitem(sys.modules, "osmnx", fake)
    with pytest.raises(SentinelCubeError, match="could not be reached"):
        geocode("Budapest")


def test_geocode_returns_the_place_polygon(monkeypatch):
    fake = types.ModuleType("osmnx")
    fake.geocode_to_gdf = lambda place: gpd.GeoDataFrame(
        {"display_name": [place]}, geometry=[box(19, 47.3, 19.3, 47.6)], crs=4326
    )
    monkeypatch.setitem(sys.modules, "osmnx", fake)
    assert geocode("Budapest").equals(box(19, 47.3, 19.3, 47.6))
