"""Views of the metadata analytics: acquisition counts, land-cover series, correlation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..analysis import CONTENT_COLUMNS, acquisitions, correlation, landcover
from ..analysis._common import resolve_group, sensing_times
from ..exceptions import SentinelCubeError
from ._common import (
    check_size,
    column_label,
    holoviews,
    period_labels,
    plain_frame,
    style,
    thin_mpl_labels,
)
from ._common import thin_category_labels as _thin

__all__ = ["acquisitions_plot", "correlation_plot", "landcover_plot"]

_PERIOD_NAMES = {"D": "day", "W": "week", "MS": "month"}


def acquisitions_plot(
    products: pd.DataFrame,
    freq: str = "W",
    by: str | None = None,
    *,
    start: Any = None,
    end: Any = None,
    width: int = 700,
    height: int = 220,
) -> Any:
    """Bar charts of :func:`sentinel_cube.analysis.acquisitions`: sensing days and products.

    Parameters
    ----------
    products : DataFrame
        A products table.
    freq, by, start, end
        As :func:`sentinel_cube.analysis.acquisitions` takes them; with ``by`` the bars are
        stacked by group (platform, tile, orbit ...).
    width, height : int
        Size of each panel in pixels.

    Returns
    -------
    holoviews.Layout
        Two panels sharing the period axis: distinct sensing days, and products, per
        period (empty periods show as gaps at zero). Hover shows period and count. With
        ``by``, products are stacked (they add up) and days are side by side (one day can
        serve several groups).

    Examples
    --------
    >>> view = acquisitions_plot(products, "MS", by="platform")          # doctest: +SKIP
    """
    hv = holoviews()
    check_size("width", width)
    check_size("height", height)
    table = acquisitions(products, freq, by, start=start, end=end)
    if len(table) == 0:
        raise SentinelCubeError("products is empty and no start/end was given: nothing to count")
    column = None if by is None else resolve_group(products, by)
    frame = table.reset_index()
    periods = pd.DatetimeIndex(frame["period"].unique())
    labels = dict(zip(periods, period_labels(periods, freq), strict=True))
    frame["period"] = frame["period"].map(labels)
    every = _PERIOD_NAMES.get(freq, freq)
    panels = []
    for measure, what in (("days", "sensing days"), ("products", "products")):
        kdims = [hv.Dimension("period", label=f"period ({every}, UTC)")]
        vdim = hv.Dimension(measure, label=what)
        bokeh: dict[str, Any] = {
            "frame_width": width,
            "frame_height": height,
            "tools": ["hover"],
            "hooks": [_thin],
        }
        if column is None:
            bars = hv.Bars(plain_frame(frame), kdims, vdim)
            bokeh["color"] = "#3b75af"
            both: dict[str, Any] = {}
        else:
            frame[column] = frame[column].astype(str)
            kdims.append(hv.Dimension(column, label=column_label(column)))
            bars = hv.Bars(plain_frame(frame), kdims, vdim)
            bokeh.update(color=column, cmap="Category10")
            # products add up across groups (stacked); a day may serve several groups (side
            # by side)
            both = {"stacked": measure == "products", "legend_position": "right"}
        panels.append(
            style(
                bars,
                both={**both, "title": f"{what} per {every}", "xrotation": 90, "ylim": (0, None)},
                bokeh=bokeh,
                matplotlib={"hooks": [thin_mpl_labels], "aspect": 3, "fig_size": 200},
            )
        )
    layout = hv.Layout(panels).cols(1)
    return style(
        layout, bokeh={"shared_axes": True}, matplotlib={"sublabel_format": "", "vspace": 0.9}
    )


def landcover_plot(
    products: pd.DataFrame,
    freq: str = "W",
    columns: Sequence[str] = CONTENT_COLUMNS,
    how: str = "mean",
    *,
    points: bool = True,
    width: int = 700,
    height: int = 160,
) -> Any:
    """One panel per column of :func:`sentinel_cube.analysis.landcover`, shared time axis.

    Parameters
    ----------
    products : DataFrame
        A products table.
    freq, columns, how
        As :func:`sentinel_cube.analysis.landcover` takes them.
    points : bool
        Also draw each product's own value as a faint dot.
    width, height : int
        Size of each panel in pixels.

    Returns
    -------
    holoviews.Layout
        One panel per column (percentages on a 0-100 axis): the per-period value as a line
        with markers (gaps where a period has no product) and the products as dots; all
        panels share the time axis (zooming one zooms all).

    Examples
    --------
    >>> view = landcover_plot(products, "MS", how="median")              # doctest: +SKIP
    """
    hv = holoviews()
    check_size("width", width)
    check_size("height", height)
    table = landcover(products, freq, columns, how)
    times = sensing_times(products)
    every = _PERIOD_NAMES.get(freq, freq)
    time_dim = hv.Dimension("time", label="time (UTC)")
    panels = []
    for column in table.columns:
        label = column_label(column)
        value_dim = hv.Dimension(column, label=label)
        series = (table.index.to_numpy(), table[column].to_numpy())
        name = f"{how} per {every}"
        curve = hv.Curve(series, time_dim, value_dim, label=name)
        markers = hv.Scatter(series, time_dim, value_dim, label=name)
        layers = [
            style(
                curve,
                both={"color": "#1f77b4"},
                bokeh={"line_width": 2, "tools": ["hover"]},
                matplotlib={"linewidth": 2},
            ),
            style(
                markers,
                both={"color": "#1f77b4"},
                bokeh={"size": 6, "tools": ["hover"]},
                matplotlib={"s": 30},
            ),
        ]
        if points:
            values = products[column].astype("float64").to_numpy()
            dots = hv.Scatter((times.to_numpy(), values), time_dim, value_dim, label="products")
            layers.insert(
                0,
                style(
                    dots,
                    both={"color": "#7f7f7f", "alpha": 0.5},
                    bokeh={"size": 4},
                    matplotlib={"s": 12},
                ),
            )
        percent = column.endswith("percentage") and how != "count"
        panels.append(
            style(
                hv.Overlay(layers),
                both={
                    "title": label,
                    "show_legend": True,
                    "legend_position": "right",
                    "ylim": (0, 100) if percent else (None, None),
                },
                bokeh={"frame_width": width, "frame_height": height},
                matplotlib={"aspect": 4, "fig_size": 200, "xrotation": 20, "ylabel": ""},
            )
        )
    # one time axis for the stacked panels of a static picture: only the bottom one shows
    # it (the interactive page keeps every axis, linked for panning and zooming)
    panels = [style(panel, matplotlib={"xaxis": None}) for panel in panels[:-1]] + panels[-1:]
    layout = hv.Layout(panels).cols(1)
    return style(
        layout, bokeh={"shared_axes": True}, matplotlib={"sublabel_format": "", "vspace": 0.45}
    )


def correlation_plot(
    products: pd.DataFrame,
    columns: Sequence[str] = CONTENT_COLUMNS,
    method: str = "pearson",
    *,
    width: int = 420,
) -> Any:
    """Heat map of :func:`sentinel_cube.analysis.correlation` with the coefficients written.

    Parameters
    ----------
    products : DataFrame
        A products table.
    columns, method
        As :func:`sentinel_cube.analysis.correlation` takes them.
    width : int
        Side of the square plot area in pixels.

    Returns
    -------
    holoviews.Overlay
        A ``HeatMap`` (blue -1 .. red +1) of every pair, in the order of ``columns``
        (first column at the top left), and ``Labels`` with the coefficients to two
        decimals (``n/a`` where undefined).

    Examples
    --------
    >>> view = correlation_plot(products, method="spearman")             # doctest: +SKIP
    """
    hv = holoviews()
    check_size("width", width)
    matrix = correlation(products, columns, method)
    names = [column_label(c) for c in matrix.columns]
    rows = []
    for i, row in enumerate(matrix.index):
        for j, column in enumerate(matrix.columns):
            value = float(matrix.loc[row, column])
            text = "n/a" if np.isnan(value) else f"{value:.2f}"
            rows.append((j, i, value, f"{names[i]} / {names[j]}", text))
    frame = pd.DataFrame(rows, columns=["column", "row", "r", "pair", "text"])
    coefficient = hv.Dimension("r", label=f"{method} r", range=(-1, 1))
    ticks = list(enumerate(names))
    heatmap = style(
        hv.HeatMap(plain_frame(frame), ["column", "row"], [coefficient, "pair", "text"]),
        both={
            "cmap": "RdBu_r",
            "clim": (-1, 1),
            "colorbar": True,
            "xticks": ticks,
            "yticks": ticks,
            "invert_yaxis": True,
            "xrotation": 30,
            "xlabel": "",
            "ylabel": "",
        },
        bokeh={
            "tools": ["hover"],
            "frame_width": width,
            "frame_height": width,
            "hover_tooltips": [("pair", "@pair"), (f"{method} r", "@text")],
        },
        matplotlib={"aspect": 1, "fig_size": 150, "show_values": False},
    )
    labels = style(
        hv.Labels(plain_frame(frame), ["column", "row"], "text"),
        bokeh={"text_color": "black", "text_font_size": "11pt"},
        matplotlib={"color": "black", "size": 11},
    )
    title = f"{method.capitalize()} correlation ({matrix.attrs['n']} products)"
    return style(heatmap * labels, both={"title": title})
