"""Plain-text summaries of a products table for the command line and the demo."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

__all__ = ["products_table", "metadata_summary", "write_products"]

_TABLE_COLUMNS = {
    "beginposition": "sensing (UTC)",
    "tileid": "tile",
    "platformserialidentifier": "platform",
    "processingbaseline": "baseline",
    "cloudcoverpercentage": "cloud %",
    "vegetationpercentage": "veg %",
    "waterpercentage": "water %",
    "snowicepercentage": "snow %",
}


def products_table(products: gpd.GeoDataFrame) -> str:
    """One line per product: time, tile, platform, baseline and content percentages."""
    if len(products) == 0:
        return "(no products)"
    table = pd.DataFrame(products[list(_TABLE_COLUMNS)]).rename(columns=_TABLE_COLUMNS)
    table["sensing (UTC)"] = table["sensing (UTC)"].dt.strftime("%Y-%m-%d %H:%M")
    table = table.reset_index(drop=True)
    table.index = table.index + 1
    return table.to_string(float_format=lambda v: f"{v:.1f}", na_rep="-")


def metadata_summary(products: gpd.GeoDataFrame) -> str:
    """Counts per tile and month, and mean image-content percentages."""
    if len(products) == 0:
        return "no products"
    lines = []
    first, last = products["beginposition"].min(), products["beginposition"].max()
    days = products["beginposition"].dt.floor("D").nunique()
    lines.append(
        f"{len(products)} products, {days} acquisition days, "
        f"{first:%Y-%m-%d} .. {last:%Y-%m-%d}, tiles {', '.join(sorted(products.tileid.unique()))}"
    )
    per_month = (
        products.assign(month=products["beginposition"].dt.strftime("%Y-%m"))
        .groupby("month")
        .agg(
            products=("title", "size"), days=("beginposition", lambda s: s.dt.floor("D").nunique())
        )
    )
    lines.append("acquisitions per month:")
    lines.extend("  " + line for line in per_month.to_string().splitlines())
    means = products[
        ["cloudcoverpercentage", "vegetationpercentage", "waterpercentage", "snowicepercentage"]
    ].mean()
    lines.append(
        "mean content: "
        + ", ".join(
            f"{name.removesuffix('percentage')} {value:.1f} %" for name, value in means.items()
        )
    )
    return "\n".join(lines)


def write_products(products: gpd.GeoDataFrame, path: str) -> None:
    """Write a products table as GeoJSON, GeoPackage, Parquet or CSV (by suffix)."""
    lower = str(path).lower()
    if lower.endswith(".csv"):
        frame = pd.DataFrame(products.drop(columns="geometry"))
        frame["geometry"] = products.geometry.to_wkt()
        frame.to_csv(path)
    elif lower.endswith(".parquet"):
        products.to_parquet(path)
    else:
        out = products.reset_index()
        for column in out.columns:
            if str(out[column].dtype).startswith("datetime"):
                out[column] = out[column].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out.to_file(path)
