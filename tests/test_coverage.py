"""sc.coverage: the AOI share inside each footprint, measured in equal area."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import box

from sentinel_cube.analysis._coverage import coverage, equal_area_crs

GEOD = Geod(ellps="WGS84")


def _geodesic_area(geometry) -> float:
    return abs(GEOD.geometry_area_perimeter(shapely.segmentize(geometry, 0.01))[0])


def test_fraction_is_an_area_ratio_not_a_degree_ratio():
    aoi = box(10.5, 60.0, 11.5, 70.0)
    south, north = box(10.0, 60.0, 12.0, 65.0), box(10.0, 65.0, 12.0, 70.0)
    products = gpd.GeoDataFrame({"tile": ["S", "N"]}, geometry=[south, north], crs=4326)
    got = coverage(products, aoi)["aoi_fraction"].to_numpy()
    truth = [_geodesic_area(aoi.intersection(g)) / _geodesic_area(aoi) for g in (south, north)]
    assert got == pytest.approx(truth, abs=1e-4)
    assert got[0] > 0.54  # in degrees it would be 0.5: the southern half is larger
    assert got.sum() == pytest.approx(1.0, abs=1e-9)


def test_full_partial_and_missing_footprints():
    aoi = (19.0, 47.4, 19.2, 47.6)
    products = gpd.GeoDataFrame(
        {"tile": ["whole", "west half", "elsewhere", "none"]},
        geometry=[box(18, 47, 20, 48), box(18, 47, 19.1, 48), box(30, 10, 31, 11), None],
        crs=4326,
    )
    result = coverage(products, aoi)
    fractions = dict(zip(result["tile"], result["aoi_fraction"], strict=True))
    assert fractions["whole"] == pytest.approx(1.0)
    assert fractions["west half"] == pytest.approx(0.5, abs=2e-3)
    assert fractions["elsewhere"] == 0.0 and fractions["none"] == 0.0
    full = result[result.aoi_fraction >= 0.999]
    assert list(full["tile"]) == ["whole"]
    assert "aoi_fraction" not in products.columns  # the input is not modified


def test_footprints_in_another_crs_and_the_antimeridian():
    aoi = box(179.5, -17.5, 180.0, -17.0)
    tile = gpd.GeoSeries([box(179.0, -18.0, 180.0, -16.0)], crs=4326).to_crs(3832)
    products = gpd.GeoDataFrame({"tile": ["01KAB"]}, geometry=tile, crs=3832)
    assert coverage(products, aoi)["aoi_fraction"].iloc[0] == pytest.approx(1.0, abs=1e-3)
    assert equal_area_crs(aoi).coordinate_operation.method_name.startswith("Lambert Azimuthal")
