from __future__ import annotations

from datetime import UTC, date, datetime

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

from sentinel_cube.catalog import filter_products, parse_date_range
from sentinel_cube.schema import COLUMNS, empty_products, normalize_products


def test_date_range_day_ends_are_inclusive():
    start, end = parse_date_range(("2023-08-01", "2023-08-31"))
    assert start == pd.Timestamp("2023-08-01T00:00:00Z")
    assert end == pd.Timestamp("2023-08-31T23:59:59.999999Z")


def test_single_day_and_datetimes():
    start, end = parse_date_range(date(2023, 8, 10))
    assert (start, end) == (
        pd.Timestamp("2023-08-10T00:00:00Z"),
        pd.Timestamp("2023-08-10T23:59:59.999999Z"),
    )
    moment = datetime(2023, 8, 10, 9, 45, tzinfo=UTC)
    start, end = parse_date_range((moment, None))
    assert start == pd.Timestamp(moment) and end is None
    # naive times are UTC, aware ones are converted
    start, _ = parse_date_range(("2023-08-10T11:45:00+02:00", None))
    assert start == pd.Timestamp("2023-08-10T09:45:00Z")


def test_bad_dates_are_rejected():
    with pytest.raises(ValueError, match="ends before it starts"):
        parse_date_range(("2023-09-01", "2023-08-01"))
    with pytest.raises(ValueError, match="not a date"):
        parse_date_range(("yesterday-ish", None))


def _table() -> gpd.GeoDataFrame:
    rows = {
        "a": ("2023-06-06T09:45:49Z", "34TCT", "S2MSI2A", "Level-2A", "Sentinel-2A", 5.0, 79),
        "b": ("2023-06-06T09:45:49Z", "34TDT", "S2MSI2A", "Level-2A", "Sentinel-2A", 55.0, 79),
        "c": ("2023-06-16T09:45:49Z", "34TCT", "S2MSI1C", "Level-1C", "Sentinel-2B", 20.0, 79),
        "d": ("2023-07-01T09:35:49Z", "34TCT", "S2MSI2A", "Level-2A", "Sentinel-2B", None, 36),
    }
    frame = pd.DataFrame(
        [
            {
                "beginposition": t,
                "tileid": tile,
                "producttype": ptype,
                "processinglevel": level,
                "platformname": "Sentinel-2",
                "platformserialidentifier": unit,
                "cloudcoverpercentage": cloud,
                "relativeorbitnumber": orbit,
            }
            for t, tile, ptype, level, unit, cloud, orbit in rows.values()
        ],
        index=list(rows),
    )
    geometry = [box(18.3, 46.8, 19.8, 47.8), box(19.6, 46.8, 21.0, 47.8)] + [
        box(18.3, 46.8, 19.8, 47.8)
    ] * 2
    return normalize_products(gpd.GeoDataFrame(frame, geometry=geometry, crs=4326))


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, ["a", "b", "c", "d"]),
        ({"date": ("2023-06-06", "2023-06-16")}, ["a", "b", "c"]),
        ({"date": "2023-06-16"}, ["c"]),
        ({"producttype": "S2MSI2A"}, ["a", "b", "d"]),
        ({"producttype": "L1C"}, ["c"]),
        ({"platformname": "Sentinel-2"}, ["a", "b", "c", "d"]),
        ({"platformname": "S2B"}, ["c", "d"]),
        ({"cloudcoverpercentage": (0, 30)}, ["a", "c"]),
        ({"cloudcoverpercentage": 10}, ["a"]),
        ({"tileid": "T34TDT"}, ["b"]),
        ({"tileid": ["34TCT", "34TDT"], "relativeorbitnumber": 36}, ["d"]),
        ({"aoi": (20.5, 47.0, 20.6, 47.1)}, ["b"]),
        ({"aoi": (25.0, 47.0, 25.1, 47.1)}, []),
    ],
)
def test_filters(kwargs, expected):
    result = filter_products(_table(), **kwargs)
    assert list(result.index) == expected


def test_schema_columns_and_types():
    table = _table()
    assert list(table.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert str(table["beginposition"].dtype) == "datetime64[ns, UTC]"
    assert table.crs.to_epsg() == 4326
    empty = empty_products()
    assert len(empty) == 0 and list(empty.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert empty.index.name == "product_id"
