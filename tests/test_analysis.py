"""sentinel_cube.analysis against expectations computed by hand from a generated archive.

The archive's metadata is known from its specs (dates, tiles, orbits, platforms); the
image-content percentages are read back from each product's MTD XML with a regular
expression, and every expected number is computed here with plain Python.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box

from sentinel_cube import SentinelCubeError
from sentinel_cube.analysis import (
    CONTENT_COLUMNS,
    acquisitions,
    climatology,
    correlation,
    coverage_summary,
    landcover,
)
from sentinel_cube.catalog import LocalCatalog
from sentinel_cube.testing import default_specs, make_archive

#: Relative orbit 79 over both Budapest tiles (platforms: S2A, S2B, S2A, S2A, S2B, S2A).
DATES_79 = ("2023-05-07", "2023-06-01", "2023-06-06", "2023-06-16", "2023-06-21", "2023-07-06")
#: Relative orbit 36 over 34TDT only (platforms: S2B, S2A, S2B); 06-16 shares a day with 79.
DATES_36 = ("2023-06-03", "2023-06-16", "2023-07-13")

_ELEMENTS = {
    "vegetationpercentage": "VEGETATION_PERCENTAGE",
    "waterpercentage": "WATER_PERCENTAGE",
    "snowicepercentage": "SNOW_ICE_PERCENTAGE",
    "cloudcoverpercentage": "Cloud_Coverage_Assessment",
    "notvegetatedpercentage": "NOT_VEGETATED_PERCENTAGE",
}


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("analysis")
    specs = default_specs(
        ("34TCT", "34TDT"), DATES_79, partial=None,
        cloud_fractions=(0.05, 0.6, 0.1, 0.3, 0.0, 0.15),
    ) + default_specs(
        ("34TDT",), DATES_36, partial=None, relative_orbit=36,
        time_of_day=dt.time(9, 35, 41), cloud_fractions=(0.4, 0.2, 0.05),
    )  # fmt: skip
    make_archive(root, specs, scale=61, bands=["B04"])
    return root


@pytest.fixture(scope="module")
def products(archive):
    return LocalCatalog(archive, require_bands=None, cache_dir=archive / ".cache").search()


@pytest.fixture(scope="module")
def mtd(archive) -> dict[str, dict]:
    """Per product id: sensing time, platform, orbit, tile and percentages from the XML."""
    records = {}
    for safe in sorted(archive.glob("*.SAFE")):
        text = (safe / "MTD_MSIL2A.xml").read_text()
        record = {
            "time": dt.datetime.fromisoformat(
                re.search(r"<PRODUCT_START_TIME>([^<]+)<", text).group(1).replace("Z", "+00:00")
            ),
            "platform": re.search(r"<SPACECRAFT_NAME>([^<]+)<", text).group(1),
            "orbit": int(re.search(r"<SENSING_ORBIT_NUMBER>(\d+)<", text).group(1)),
            "tile": re.search(r"_T(\d\d[A-Z]{3})_", safe.name).group(1),
        }
        for column, element in _ELEMENTS.items():
            record[column] = float(re.search(rf"<{element}>([^<]+)<", text).group(1))
        records[safe.name.removesuffix(".SAFE")] = record
    assert len(records) == 2 * len(DATES_79) + len(DATES_36)
    return records


def _week_end(day: dt.date) -> dt.date:
    """The Sunday ending the ISO week of ``day`` (pandas' 'W' label)."""
    return day + dt.timedelta(days=6 - day.weekday())


def _day_range(first: dt.date, last: dt.date, step: int) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range(0, (last - first).days + 1, step)]


def test_the_catalogue_reports_the_xml_percentages(products, mtd):
    for product_id, record in mtd.items():
        for column in _ELEMENTS:
            assert products.loc[product_id, column] == pytest.approx(record[column])


# ----------------------------------------------------------------------------- acquisitions


def test_monthly_acquisitions_counted_by_hand(products):
    table = acquisitions(products, "MS")
    assert list(table.columns) == ["days", "products"]
    assert table.index.name == "period"
    assert list(table.index) == list(pd.to_datetime(["2023-05-01", "2023-06-01", "2023-07-01"]))
    # May: 05-07 on two tiles; June: 01 (2), 03 (1), 06 (2), 16 (2 + 1), 21 (2); July: 06, 13
    assert table["days"].tolist() == [1, 5, 2]
    assert table["products"].tolist() == [2, 10, 3]
    assert table.dtypes.tolist() == [np.int64, np.int64]
    assert "distinct sensing days" in table.attrs["units"]["days"]


@pytest.mark.parametrize("freq", ["D", "W"])
def test_daily_and_weekly_acquisitions_include_empty_periods(products, mtd, freq):
    label = (lambda d: d) if freq == "D" else _week_end
    days: dict[dt.date, set] = defaultdict(set)
    count: dict[dt.date, int] = defaultdict(int)
    for record in mtd.values():
        day = record["time"].date()
        days[label(day)].add(day)
        count[label(day)] += 1
    periods = _day_range(min(days), max(days), 1 if freq == "D" else 7)
    table = acquisitions(products, freq)
    assert [p.date() for p in table.index] == periods
    assert table["days"].tolist() == [len(days.get(p, ())) for p in periods]
    assert table["products"].tolist() == [count.get(p, 0) for p in periods]
    if freq == "W":
        assert len(periods) == 11  # Sunday 2023-05-07 .. Sunday 2023-07-16
        # week of 06-01 and 06-03; week of 06-16 (two orbits, three products)
        assert table.loc["2023-06-04"].tolist() == [2, 3]
        assert table.loc["2023-06-18"].tolist() == [1, 3]
    assert (table["products"] == 0).sum() == len(periods) - len(days)


def test_acquisitions_by_orbit_platform_and_tile(products):
    by_orbit = acquisitions(products, "MS", by="orbit")
    assert by_orbit.index.names == ["period", "relativeorbitnumber"]
    days = by_orbit["days"].unstack()
    assert days[79].tolist() == [1, 4, 1] and days[36].tolist() == [0, 2, 1]
    assert by_orbit["products"].unstack()[79].tolist() == [2, 8, 2]
    assert by_orbit["products"].unstack()[36].tolist() == [0, 2, 1]

    by_platform = acquisitions(products, "MS", by="platform")["products"].unstack()
    assert by_platform["Sentinel-2A"].tolist() == [2, 5, 2]
    assert by_platform["Sentinel-2B"].tolist() == [0, 5, 1]
    platform_days = acquisitions(products, "MS", by="platformserialidentifier")["days"].unstack()
    assert platform_days["Sentinel-2A"].tolist() == [1, 2, 1]
    assert platform_days["Sentinel-2B"].tolist() == [0, 3, 1]

    by_tile = acquisitions(products, "W", by="tile")
    weekly = by_tile["products"].unstack()
    assert weekly["34TCT"].sum() == len(DATES_79)
    assert weekly["34TDT"].sum() == len(DATES_79) + len(DATES_36)
    # every (period, tile) pair is present, zeros included, and totals add up
    assert len(by_tile) == 11 * 2
    total = acquisitions(products, "W")["products"]
    assert (weekly.sum(axis=1) == total).all()


def test_products_without_a_group_value_count_as_unknown(products):
    table = products.copy()
    table.loc[table.index[0], "relativeorbitnumber"] = pd.NA
    monthly = acquisitions(table, "MS", by="orbit")["products"].unstack()
    assert list(monthly.columns) == [36, 79, "unknown"]
    assert monthly["unknown"].tolist() == [1, 0, 0] and monthly[79].tolist() == [1, 8, 2]


def test_start_and_end_extend_the_periods(products):
    table = acquisitions(products, "MS", start="2023-03-15", end=dt.date(2023, 9, 30))
    assert [p.strftime("%Y-%m") for p in table.index] == [
        "2023-03", "2023-04", "2023-05", "2023-06", "2023-07", "2023-08", "2023-09",
    ]  # fmt: skip
    assert table["products"].tolist() == [0, 0, 2, 10, 3, 0, 0]
    by = acquisitions(products, "MS", by="orbit", start="2023-04-01")
    assert by.loc[(pd.Timestamp("2023-04-01"), 36), "products"] == 0


def test_acquisitions_of_an_empty_table_and_bad_arguments(products):
    empty = acquisitions(products.iloc[:0], "W")
    assert empty.empty and list(empty.columns) == ["days", "products"]
    assert acquisitions(products.iloc[:0], "MS", start="2023-01-01", end="2023-02-01")[
        "products"
    ].tolist() == [0, 0]
    with pytest.raises(SentinelCubeError, match="freq='fortnight'"):
        acquisitions(products, "fortnight")
    with pytest.raises(SentinelCubeError, match="by='sensor'.*no column 'sensor'"):
        acquisitions(products, "W", by="sensor")
    with pytest.raises(SentinelCubeError, match="start='soon'"):
        acquisitions(products, "W", start="soon")


# ----------------------------------------------------------------------------- land cover


@pytest.mark.parametrize("freq", ["W", "MS"])
def test_landcover_means_per_period_by_hand(products, mtd, freq):
    def label(day: dt.date) -> dt.date:
        return _week_end(day) if freq == "W" else day.replace(day=1)

    groups: dict[dt.date, list[dict]] = defaultdict(list)
    for record in mtd.values():
        groups[label(record["time"].date())].append(record)
    table = landcover(products, freq)
    assert list(table.columns) == list(CONTENT_COLUMNS)
    assert table.attrs["units"]["waterpercentage"] == "%"
    for period, row in table.iterrows():
        members = groups.get(period.date(), [])
        for column in CONTENT_COLUMNS:
            if members:
                assert row[column] == pytest.approx(statistics.mean(r[column] for r in members))
            else:
                assert math.isnan(row[column])
    if freq == "W":
        assert table.isna().all(axis=1).sum() == 11 - len(groups)


def test_landcover_reductions(products, mtd):
    june = [r for r in mtd.values() if r["time"].month == 6]
    water = [r["waterpercentage"] for r in june]
    for how, expected in [
        ("median", statistics.median(water)),
        ("max", max(water)),
        ("min", min(water)),
        ("std", statistics.stdev(water)),
        ("count", len(water)),
    ]:
        table = landcover(products, "MS", columns=["waterpercentage"], how=how)
        assert table.loc["2023-06-01", "waterpercentage"] == pytest.approx(expected)
    counts = landcover(products, "W", columns=["waterpercentage"], how="count")
    assert counts["waterpercentage"].dtype == np.int64 and counts["waterpercentage"].sum() == 15
    with pytest.raises(SentinelCubeError, match="how='sum'"):
        landcover(products, "W", how="sum")
    with pytest.raises(SentinelCubeError, match="no column 'greenness'"):
        landcover(products, "W", columns=["greenness"])
    with pytest.raises(SentinelCubeError, match="'tileid' is not numeric"):
        landcover(products, "W", columns=["tileid"])


def test_climatology_by_month_and_season(products, mtd):
    table = climatology(products, "cloudcoverpercentage")
    assert table.index.name == "month" and list(table.index) == list(range(1, 13))
    assert list(table.columns) == ["mean", "median", "std", "min", "max", "count"]
    for month in range(1, 13):
        values = [r["cloudcoverpercentage"] for r in mtd.values() if r["time"].month == month]
        assert table.loc[month, "count"] == len(values)
        if values:
            assert table.loc[month, "mean"] == pytest.approx(statistics.mean(values))
            assert table.loc[month, "max"] == pytest.approx(max(values))
        else:
            assert math.isnan(table.loc[month, "mean"])
    seasons = climatology(products, "vegetationpercentage", by="season")
    assert list(seasons.index) == ["DJF", "MAM", "JJA", "SON"]
    assert seasons["count"].tolist() == [0, 2, 13, 0]  # May: 05-07 on two tiles
    may = [r["vegetationpercentage"] for r in mtd.values() if r["time"].month == 5]
    assert seasons.loc["MAM", "mean"] == pytest.approx(statistics.mean(may))
    weeks = climatology(products, "waterpercentage", by="week")
    assert len(weeks) == 53 and weeks["count"].sum() == 15
    with pytest.raises(SentinelCubeError, match="by='year'"):
        climatology(products, "waterpercentage", by="year")


# ----------------------------------------------------------------------------- correlation


def _pearson(a: list[float], b: list[float]) -> float:
    ma, mb = statistics.mean(a), statistics.mean(b)
    num = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    den = math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))
    return num / den


def _ranks(values: list[float]) -> list[float]:
    """Ranks 1..n, ties sharing the mean of their ranks."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_correlation_by_hand(products, mtd, method):
    columns = ["vegetationpercentage", "waterpercentage", "cloudcoverpercentage"]
    matrix = correlation(products, columns, method=method)
    assert list(matrix.index) == columns and list(matrix.columns) == columns
    assert matrix.attrs["n"] == 15 and matrix.attrs["method"] == method
    records = [mtd[p] for p in products.index]
    for a in columns:
        for b in columns:
            x, y = [r[a] for r in records], [r[b] for r in records]
            if method == "spearman":
                x, y = _ranks(x), _ranks(y)
            assert matrix.loc[a, b] == pytest.approx(_pearson(x, y), abs=1e-12)
    assert np.allclose(matrix.to_numpy(), matrix.to_numpy().T)


def test_correlation_of_a_constant_column_is_nan(products):
    frame = products.assign(constant=5.0)
    matrix = correlation(frame, ["constant", "waterpercentage"])
    assert math.isnan(matrix.loc["constant", "waterpercentage"])
    with pytest.raises(SentinelCubeError, match="method='cosine'"):
        correlation(products, method="cosine")
    with pytest.raises(SentinelCubeError, match="at least two different columns"):
        correlation(products, ["waterpercentage"])


# ----------------------------------------------------------------------------- coverage


def test_coverage_summary_per_tile_and_orbit(products):
    # An AOI across the tiles' overlap: fully inside 34TDT, partly inside 34TCT.
    aoi = box(19.70, 47.30, 19.95, 47.45)
    to_utm = Transformer.from_crs(4326, 32634, always_xy=True)

    def utm(geometry):
        return shapely.transform(geometry.segmentize(0.005), to_utm.transform, interleaved=False)

    aoi_utm = utm(aoi)

    def fraction(footprint) -> float:
        return utm(footprint).intersection(aoi_utm).area / aoi_utm.area

    expected_tct = fraction(products[products.tileid == "34TCT"].geometry.iloc[0])
    assert 0.05 < expected_tct < 0.95
    summary = coverage_summary(products, aoi)
    assert summary.index.names == ["tileid", "relativeorbitnumber"]
    assert list(summary.index) == [("34TCT", 79), ("34TDT", 36), ("34TDT", 79)]
    total_days = len(set(DATES_79) | set(DATES_36))  # 06-16 is shared: 8 days
    assert summary["products"].tolist() == [6, 3, 6]
    assert summary["days"].tolist() == [6, 3, 6]
    assert summary["share_of_days"].tolist() == pytest.approx([6 / total_days, 3 / 8, 6 / 8])
    assert summary["full_coverage"].tolist() == [0, 3, 6]
    assert summary.loc[("34TCT", 79), "aoi_fraction_mean"] == pytest.approx(expected_tct, abs=2e-3)
    assert summary.loc[("34TDT", 79), "aoi_fraction_min"] == pytest.approx(1.0, abs=1e-6)
    by_tile = coverage_summary(products, aoi, by="tile")
    assert by_tile.loc["34TDT", "products"] == 9 and by_tile.loc["34TDT", "full_coverage"] == 9


def test_coverage_summary_uses_an_existing_fraction_or_asks_for_an_aoi(products):
    table = products.assign(aoi_fraction=np.where(products.tileid == "34TCT", 0.5, 1.0))
    summary = coverage_summary(table, by="orbit")
    assert summary.loc[79, "aoi_fraction_mean"] == pytest.approx(0.75)
    assert summary.loc[36, "full_coverage"] == 3
    with pytest.raises(SentinelCubeError, match="pass aoi="):
        coverage_summary(products)
    with pytest.raises(SentinelCubeError, match="full=1.5"):
        coverage_summary(table, full=1.5)
