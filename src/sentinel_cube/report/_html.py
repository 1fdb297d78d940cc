"""An HTML report of a products table: summary tables, footprints, series, cube browser.

The report is a folder of static files that opens offline: ``index.html`` (tables and
links, no script) and one standalone page per view (BokehJS inline), plus ``rgb.png``.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import __version__
from ..analysis import CONTENT_COLUMNS, acquisitions, coverage_summary, landcover
from ..analysis._common import column_label
from ..aoi import AOILike, read_aoi
from ..catalog import coverage
from ..exceptions import SentinelCubeError

__all__ = ["write_report"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;max-width:1200px;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:0.9em;margin:0.5em 0}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.note{color:#666;font-size:0.9em}
img.rgb{width:480px;max-width:100%;image-rendering:pixelated;border:1px solid #ddd}
"""
_BACK = '<p><a href="index.html">&larr; back to the report</a></p>'
_TABLE_COLUMNS = {
    "beginposition": "sensing (UTC)",
    "tileid": "tile",
    "relativeorbitnumber": "orbit",
    "platformserialidentifier": "platform",
    "processingbaseline": "baseline",
    "cloudcoverpercentage": "cloud %",
    "vegetationpercentage": "vegetation %",
    "waterpercentage": "water %",
    "snowicepercentage": "snow/ice %",
    "aoi_fraction": "AOI fraction",
}


def write_report(
    products: pd.DataFrame,
    aoi: AOILike,
    out: str | os.PathLike[str],
    *,
    cube: xr.DataArray | str | os.PathLike[str] | None = None,
    rgb: Sequence[str] = ("B04", "B03", "B02"),
    freq: str = "W",
    title: str = "Sentinel-2 products report",
    max_frames: int = 24,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Write an HTML report of a products table over an AOI into the folder ``out``.

    Parameters
    ----------
    products : GeoDataFrame
        A products table (a catalogue search, or :func:`sentinel_cube.catalog.read_products`).
    aoi
        Anything :func:`sentinel_cube.read_aoi` takes.
    out : path
        Output folder (created; files of the same names are replaced).
    cube : DataArray or path, optional
        A cube (or a Zarr store written by :func:`sentinel_cube.to_zarr`) over the AOI:
        adds ``rgb.png`` (the clearest time step, 2-98 % stretch) and ``cube.html`` (a
        browser of at most ``max_frames`` evenly spaced time steps).
    rgb : three band names
        Red, green and blue bands of the picture and the browser; when the cube lacks one
        of them, the browser shows single bands and no picture is written.
    freq : str
        Period of the acquisition and land-cover series (``"D"``, ``"W"``, ``"MS"``).
    title : str
        Report title.
    echo : callable, optional
        Receives one line per file written.

    Returns
    -------
    dict
        Paths by name: ``index``, ``footprints``, ``acquisitions``, ``landcover``,
        ``correlation`` (the last two only when the table has content percentages),
        ``rgb`` and ``cube`` with a cube.

    Examples
    --------
    >>> paths = write_report(products, "budapest.geojson", "report/",   # doctest: +SKIP
    ...                      cube="budapest.zarr")
    >>> paths["index"]                                                  # doctest: +SKIP
    PosixPath('report/index.html')
    """
    from .. import plot
    from ..plot._save import standalone_html

    if len(products) == 0:
        raise SentinelCubeError(
            "the products table is empty: nothing to report (widen the search window or AOI)"
        )
    shape = read_aoi(aoi)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    products = coverage(products, shape)
    written: dict[str, Path] = {}
    sections: list[str] = []
    notes: list[str] = []

    def page(name: str, view: Any, heading: str, about: str) -> None:
        target = folder / f"{name}.html"
        text = standalone_html(
            view,
            title=f"{heading} - {title}",
            header=_BACK + f"<h1>{html.escape(heading)}</h1>"
            f'<p class="note">{html.escape(about)}</p>',
            max_frames=max_frames,
        )
        target.write_text(text, encoding="utf-8")
        written[name] = target
        sections.append(
            f'<li><a href="{name}.html">{html.escape(heading)}</a>: {html.escape(about)}</li>'
        )
        if echo:
            echo(f"  {name:<13} {target}")

    page(
        "footprints",
        plot.footprints(products, shape),
        "Footprints over the AOI",
        "product footprints coloured by cloud cover, the AOI in red; hover for details",
    )
    by = "platform" if products["platformserialidentifier"].nunique() > 1 else None
    page(
        "acquisitions",
        plot.acquisitions_plot(products, freq, by=by),
        "Acquisitions",
        f"sensing days and products per period ({freq})",
    )
    content = [c for c in CONTENT_COLUMNS if c in products and products[c].notna().any()]
    if content:
        page(
            "landcover",
            plot.landcover_plot(products, freq, content),
            "Land-cover series",
            f"mean image-content percentages per period ({freq}) and per product",
        )
    if len(content) >= 2 and len(products) >= 2:
        page(
            "correlation",
            plot.correlation_plot(products, content),
            "Correlation",
            "Pearson correlation of the image-content percentages over the products",
        )
    if len(content) < len(CONTENT_COLUMNS):
        missing = ", ".join(c for c in CONTENT_COLUMNS if c not in content)
        notes.append(f"no values for {missing} (e.g. a search without enrich=True)")
    picture = None
    if cube is not None:
        picture = _cube_pages(cube, list(rgb), folder, max_frames, page, written, notes, echo)
    index = folder / "index.html"
    index.write_text(_index(products, shape, title, sections, notes, picture), encoding="utf-8")
    written = {"index": index, **written}
    if echo:
        echo(f"  {'index':<13} {index}")
    return written


def _cube_pages(cube, rgb, folder, max_frames, page, written, notes, echo) -> str | None:
    from ..export import to_png
    from ..ops import stretch
    from ..plot import cube_view
    from ..store import open_zarr

    if not isinstance(cube, xr.DataArray):
        cube = open_zarr(cube)
    steps = cube.sizes["time"]
    has_rgb = "band" in cube.dims and all(b in cube["band"].to_numpy() for b in rgb)
    if steps > max_frames:
        keep = np.unique(np.linspace(0, steps - 1, max_frames).round().astype(int))
        notes.append(f"the cube browser shows {len(keep)} of the cube's {steps} time steps")
        shown = cube.isel(time=keep)
    else:
        shown = cube
    view = cube_view(shown, rgb if has_rgb else None)
    page(
        "cube",
        view,
        "Cube browser",
        "time slider"
        + ("" if has_rgb else " and band selector")
        + "; "
        + (f"RGB {'/'.join(rgb)} stretched 2-98 % per frame" if has_rgb else "single bands"),
    )
    if not has_rgb:
        notes.append(f"the cube lacks one of the bands {', '.join(rgb)}: no RGB picture")
        return None
    clearest = 0
    if "cloudcoverpercentage" in cube.coords:
        cloud = np.asarray(cube["cloudcoverpercentage"].to_numpy(), dtype=float)
        if np.isfinite(cloud).any():
            clearest = int(np.nanargmin(cloud))
    picture = stretch(cube.isel(time=[clearest]).sel(band=rgb), (2, 98))
    target = to_png(picture.isel(time=0), folder / "rgb.png")
    written["rgb"] = Path(target)
    if echo:
        echo(f"  {'rgb':<13} {target}")
    day = pd.Timestamp(cube["time"].to_numpy()[clearest]).strftime("%Y-%m-%d")
    return f"{day} ({'/'.join(rgb)}, 2-98 % stretch, the clearest time step)"


def _index(products, shape, title, sections, notes, picture) -> str:
    times = pd.to_datetime(products["beginposition"], utc=True)
    days = times.dt.floor("D").nunique()
    facts = [
        ("products", f"{len(products)}"),
        ("sensing days", f"{days}"),
        ("first / last (UTC)", f"{times.min():%Y-%m-%d} / {times.max():%Y-%m-%d}"),
        ("tiles", ", ".join(sorted(map(str, products["tileid"].dropna().unique())))),
        (
            "relative orbits",
            ", ".join(map(str, sorted(products["relativeorbitnumber"].dropna().unique()))),
        ),
        (
            "platforms",
            ", ".join(sorted(map(str, products["platformserialidentifier"].dropna().unique()))),
        ),
        ("AOI bounds (lon/lat)", ", ".join(f"{v:.4f}" for v in shape.bounds)),
        ("products covering the whole AOI", f"{int((products['aoi_fraction'] >= 0.999).sum())}"),
    ]
    summary = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts
    )
    monthly = acquisitions(products, "MS")
    content = [c for c in CONTENT_COLUMNS if products[c].notna().any()]
    if content:
        monthly = monthly.join(
            landcover(products, "MS", content).rename(columns=lambda c: f"mean {column_label(c)}")
        )
    monthly.index = monthly.index.strftime("%Y-%m")
    cover = coverage_summary(products, None).rename(
        columns={
            "share_of_days": "share of days",
            "full_coverage": "full coverage",
            "aoi_fraction_mean": "AOI fraction mean",
            "aoi_fraction_min": "min",
            "aoi_fraction_max": "max",
        }
    )
    table = pd.DataFrame(products[[c for c in _TABLE_COLUMNS if c in products]])
    table["beginposition"] = pd.to_datetime(table["beginposition"], utc=True).dt.strftime(
        "%Y-%m-%d %H:%M"
    )
    if "aoi_fraction" in table:
        table["aoi_fraction"] = table["aoi_fraction"].map("{:.3f}".format)
    table = table.rename(columns=_TABLE_COLUMNS)
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">Written by sentinel-cube {html.escape(__version__)}; every page '
        "opens offline.</p>",
        "<h2>Summary</h2>",
        f"<table>{summary}</table>",
        "<h2>Views</h2>",
        "<ul>" + "".join(sections) + "</ul>",
    ]
    if notes:
        parts.append(
            '<ul class="note">' + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"
        )
    if picture:
        parts += [
            "<h2>RGB picture</h2>",
            f'<p class="note">{html.escape(picture)}</p>',
            '<p><img class="rgb" src="rgb.png" alt="true-colour picture"></p>',
        ]
    parts += [
        "<h2>Coverage of the AOI per tile and relative orbit</h2>",
        _html_table(cover, "{:.3f}"),
        "<h2>Acquisitions and mean content per month</h2>",
        _html_table(monthly, "{:.1f}"),
        "<h2>Products</h2>",
        _html_table(table, "{:.1f}"),
    ]
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _html_table(frame: pd.DataFrame, float_format: str) -> str:
    return frame.to_html(escape=True, float_format=float_format.format, na_rep="-", border=0)
