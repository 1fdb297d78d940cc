"""Shared helpers of the views: the holoviews import, labels, option checks."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import numpy as np
import pandas as pd

from ..analysis._common import column_label
from ..exceptions import SentinelCubeError

__all__ = [
    "BACKEND",
    "check_size",
    "column_label",
    "holoviews",
    "matplotlib_backend",
    "period_labels",
    "style",
    "thin_category_labels",
    "thin_mpl_labels",
]

#: Every view is styled for this holoviews backend (PNG export re-renders with matplotlib).
BACKEND = "bokeh"

#: At most this many category labels are written on a bar chart's time axis.
MAX_AXIS_LABELS = 40

_MATPLOTLIB: bool | None = None  # whether holoviews' matplotlib backend is loaded


def holoviews() -> Any:
    """Import holoviews with its bokeh backend loaded, without touching the current backend."""
    import holoviews as hv
    import holoviews.plotting.bokeh  # noqa: F401 - registers the bokeh renderer

    if hv.Store.current_backend not in hv.Store.renderers:
        hv.Store.set_current_backend(BACKEND)
    return hv


def period_labels(periods: pd.DatetimeIndex, freq: str) -> list[str]:
    """Axis labels of period timestamps: ``YYYY-MM`` for monthly periods, else the day.

    Examples
    --------
    >>> period_labels(pd.DatetimeIndex(["2023-06-01", "2023-07-01"]), "MS")
    ['2023-06', '2023-07']
    >>> period_labels(pd.DatetimeIndex(["2023-06-04"]), "W")
    ['2023-06-04']
    """
    monthly = freq.upper().lstrip("0123456789").startswith(("M", "Q", "Y", "A"))
    monthly = monthly and bool(len(periods)) and bool((periods.day == 1).all())
    return [p.strftime("%Y-%m" if monthly else "%Y-%m-%d") for p in periods]


def thin_category_labels(plot: Any, element: Any) -> None:
    """holoviews hook: at most :data:`MAX_AXIS_LABELS` labels on a categorical x axis.

    With nested (period, group) factors, the group names are left to the legend and the
    periods are written vertically.
    """
    factors = list(getattr(plot.state.x_range, "factors", []) or [])
    if factors and isinstance(factors[0], tuple):
        for axis in plot.state.xaxis:
            axis.major_label_text_font_size = "0pt"
            axis.major_tick_line_color = None
            axis.group_label_orientation = "vertical"
        return
    if len(factors) <= MAX_AXIS_LABELS:
        return
    step = -(-len(factors) // MAX_AXIS_LABELS)
    hidden = {f: "" for i, f in enumerate(factors) if i % step}
    for axis in plot.state.xaxis:
        axis.major_label_overrides = hidden


def check_size(name: str, value: int | None) -> None:
    """Raise unless ``value`` is a positive pixel size (or None)."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 50):
        raise SentinelCubeError(f"{name}={value!r} must be a size in pixels, at least 50")


def style(
    obj: Any, both: dict | None = None, bokeh: dict | None = None, matplotlib: dict | None = None
) -> Any:
    """Apply options for the bokeh backend and, when matplotlib is installed, for it too.

    ``both`` holds options valid in both backends; the matplotlib ones make
    :func:`sentinel_cube.plot.save` PNGs look like the interactive views.
    """
    common = dict(both or {})
    obj = obj.opts(**common, **(bokeh or {}), backend=BACKEND)
    if matplotlib_backend():
        obj = obj.opts(**common, **(matplotlib or {}), backend="matplotlib")
    return obj


def matplotlib_backend() -> bool:
    """Whether holoviews' matplotlib backend is available (loading it if needed)."""
    global _MATPLOTLIB
    if _MATPLOTLIB is None:
        try:
            found = importlib.util.find_spec("matplotlib") is not None
        except (ImportError, ValueError):  # e.g. blocked in sys.modules
            found = False
        if found:
            importlib.import_module("holoviews.plotting.mpl")
        _MATPLOTLIB = found
    return _MATPLOTLIB


def thin_mpl_labels(plot: Any, element: Any) -> None:
    """holoviews matplotlib hook: at most :data:`MAX_AXIS_LABELS` x tick labels."""
    axis = plot.handles["axis"]
    labels = axis.get_xticklabels()
    if len(labels) <= MAX_AXIS_LABELS:
        return
    step = -(-len(labels) // MAX_AXIS_LABELS)
    for i, label in enumerate(labels):
        label.set_visible(i % step == 0)


def plain_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with text columns as Python objects.

    pandas 3 keeps text in pyarrow-backed arrays, which holoviews and bokeh cannot
    reshape when they compute ranges; object columns work with every version.
    """
    out = frame.copy()
    for column in out.columns:
        dtype = out[column].dtype
        if dtype != np.dtype("O") and pd.api.types.is_string_dtype(dtype):
            out[column] = out[column].astype(object)
    if out.index.dtype != np.dtype("O") and pd.api.types.is_string_dtype(out.index.dtype):
        out.index = out.index.astype(object)
    return out
