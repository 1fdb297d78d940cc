"""Write views to standalone HTML (bokeh JavaScript inline, no network) or PNG."""

from __future__ import annotations

import datetime as dt
import html
import importlib
import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import MissingExtraError, SentinelCubeError
from ._common import BACKEND, holoviews

__all__ = ["save", "standalone_html"]

#: Default bound on the frames a view with sliders may hold in a static page.
MAX_FRAMES = 50


def save(
    view: Any,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    max_frames: int = MAX_FRAMES,
    dpi: int = 100,
) -> Path:
    """Write a view to a standalone HTML page or a PNG picture (chosen by the suffix).

    Parameters
    ----------
    view
        A view of :mod:`sentinel_cube.plot` (any holoviews object, or a bokeh model).
    path : str or path-like
        ``*.html``: one file with BokehJS and the data inline; it opens offline, from a
        disk or an e-mail attachment, with no server. Views with sliders (a
        ``DynamicMap`` such as :func:`cube_view`, or a ``HoloMap``) are written with
        every frame computed and stored in the page and plain bokeh widgets switching
        between them (at most ``max_frames`` frames).
        ``*.png``: a static picture rendered with matplotlib (``pip install
        'sentinel-cube[png]'``); a view with sliders gives its first frame (save
        ``view[key]`` for another one). Interactive-only styling (hover, widgets) is
        dropped.
    title : str, optional
        The HTML page title (default: the file name).
    max_frames : int
        Upper bound on the frames of a view with sliders written to HTML.
    dpi : int
        PNG resolution.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    SentinelCubeError
        Unknown suffix, or a view with more frames than ``max_frames``.
    MissingExtraError
        PNG without matplotlib.

    Examples
    --------
    >>> save(footprints(products, aoi), "footprints.html")              # doctest: +SKIP
    >>> save(cube_view(cube.isel(time=slice(0, 12)), ["B04", "B03", "B02"]),
    ...      "browser.html")                                           # doctest: +SKIP
    >>> save(landcover_plot(products), "landcover.png")                # doctest: +SKIP
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".html", ".htm", ".png"):
        raise SentinelCubeError(
            f"path={str(path)!r}: the suffix must be .html (interactive page) or .png (picture)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        _write_png(view, target, dpi)
    else:
        page = standalone_html(view, title=title or target.stem, max_frames=max_frames)
        target.write_text(page, encoding="utf-8")
    return target


def standalone_html(
    view: Any, title: str = "sentinel-cube", header: str = "", max_frames: int = MAX_FRAMES
) -> str:
    """The text of a standalone HTML page showing ``view`` (see :func:`save`).

    ``header`` is HTML put above the view (e.g. a link back to a report's index).
    The page references no external file: every script is inline.
    """
    from bokeh.core.validation import silenced
    from bokeh.core.validation.warnings import FIXED_SIZING_MODE
    from bokeh.embed import components
    from bokeh.embed.bundle import bundle_for_objs_and_resources
    from bokeh.model import Model
    from bokeh.resources import INLINE

    model = view if isinstance(view, Model) else to_bokeh(view, max_frames)
    # figures sized by frame_width and data_aspect are laid out by BokehJS: not a problem
    with silenced(FIXED_SIZING_MODE):
        script, div = components(model)
    bundle = bundle_for_objs_and_resources([model], INLINE)
    styles = "".join(f"<style>{css}</style>\n" for css in bundle.css_raw)
    scripts = "".join(f'<script type="text/javascript">\n{js}\n</script>\n' for js in bundle.js_raw)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n"
        "<style>body{font-family:system-ui,sans-serif;margin:16px;}</style>\n"
        f"{styles}{scripts}</head>\n<body>\n{header}\n{div}\n{script}\n</body>\n</html>\n"
    )


def to_bokeh(view: Any, max_frames: int = MAX_FRAMES) -> Any:
    """Render a holoviews view to a bokeh model; frames of a (Dynamic/Holo)Map become a
    column of figures behind bokeh widgets (see :func:`save`)."""
    hv = holoviews()
    if isinstance(view, hv.DynamicMap):
        view = _holomap(view, max_frames)
    if isinstance(view, hv.HoloMap):
        if len(view) > max_frames:
            raise SentinelCubeError(
                f"the view has {len(view)} frames, more than max_frames={max_frames}: select "
                "fewer (e.g. cube.isel(time=slice(0, 24))) or raise max_frames"
            )
        return _frames(view)
    if not isinstance(view, hv.core.Dimensioned):
        raise SentinelCubeError(
            f"cannot save a {type(view).__name__}: pass a view of sentinel_cube.plot "
            "(a holoviews object) or a bokeh model"
        )
    return hv.render(view, backend=BACKEND)


def _holomap(view: Any, max_frames: int) -> Any:
    """Evaluate every key of a DynamicMap whose dimensions list their values."""
    hv = holoviews()
    values = []
    for dim in view.kdims:
        if not dim.values:
            raise SentinelCubeError(
                f"the DynamicMap dimension {dim.name!r} lists no values: it cannot be written "
                "to a static page"
            )
        values.append(list(dim.values))
    keys = list(itertools.product(*values))
    if len(keys) > max_frames:
        raise SentinelCubeError(
            f"the view has {len(keys)} frames, more than max_frames={max_frames}: select "
            "fewer time steps (e.g. cube.isel(time=slice(0, 24))) or bands, or raise max_frames"
        )
    frames = {key if len(key) > 1 else key[0]: view[key] for key in keys}
    return hv.HoloMap(frames, kdims=view.kdims)


def _frames(holomap: Any) -> Any:
    """One bokeh figure per frame, all but one hidden; a slider or select per dimension.

    The widgets are named ``frame-widget-0``, ``frame-widget-1`` ... (first dimension: a
    slider over the frame index whose label shows the key; others: selects).
    """
    from bokeh.layouts import column, row
    from bokeh.models import CustomJS, CustomJSTickFormatter
    from bokeh.models.widgets.inputs import Select
    from bokeh.models.widgets.sliders import Slider

    hv = holoviews()
    keys = [k if isinstance(k, tuple) else (k,) for k in holomap.keys()]
    names = [d.pprint_label for d in holomap.kdims]
    figures: list[Any] = []
    for n, key in enumerate(keys):
        figure = hv.render(holomap[key if len(key) > 1 else key[0]], backend=BACKEND)
        if figures and hasattr(figure, "x_range") and hasattr(figures[0], "x_range"):
            figure.x_range, figure.y_range = figures[0].x_range, figures[0].y_range
        figure.visible = n == 0
        figures.append(figure)
    keys = [tuple(_label(v) for v in k) for k in keys]
    labels = [list(dict.fromkeys(k[d] for k in keys)) for d in range(len(names))]
    widgets: list[Any] = []
    kinds = []
    for d, (name, options) in enumerate(zip(names, labels, strict=True)):
        if d == 0 and len(options) > 1:
            widgets.append(
                Slider(
                    start=0,
                    end=len(options) - 1,
                    value=0,
                    step=1,
                    title=name,
                    format=CustomJSTickFormatter(
                        args={"labels": options}, code="return labels[Math.round(tick)]"
                    ),
                    width=420,
                    name=f"frame-widget-{d}",
                )
            )
            kinds.append("slider")
        else:
            choices: list[str | None] = list(options)
            widgets.append(
                Select(
                    title=name,
                    value=options[0],
                    options=choices,
                    width=200,
                    name=f"frame-widget-{d}",
                )
            )
            kinds.append("select")
    code = """
    const chosen = widgets.map((w, d) => kinds[d] === "slider" ? labels[d][w.value] : w.value);
    figures.forEach((figure, i) => {
      figure.visible = keys[i].every((k, d) => k === chosen[d]);
    });
    """
    arguments: dict[str, Any] = {
        "widgets": widgets,
        "figures": figures,
        "kinds": kinds,
        "labels": labels,
        "keys": [list(k) for k in keys],
    }
    callback = CustomJS(args=arguments, code=code)
    for widget in widgets:
        widget.js_on_change("value", callback)
    return column(row(*widgets), *figures)


def _label(value: Any) -> str:
    """Widget text of a frame key: times as ``YYYY-MM-DD HH:MM`` (or the day at midnight)."""
    if isinstance(value, (pd.Timestamp, np.datetime64, dt.datetime)):
        stamp = pd.Timestamp(value)
        return stamp.strftime("%Y-%m-%d" if stamp == stamp.normalize() else "%Y-%m-%d %H:%M")
    return str(value)


def _write_png(view: Any, target: Path, dpi: int) -> None:
    try:
        import matplotlib  # noqa: F401 - the PNG renderer
    except ImportError:
        raise MissingExtraError("png", "matplotlib", "Saving a view as PNG") from None
    hv = holoviews()
    importlib.import_module("holoviews.plotting.mpl")  # registers the matplotlib renderer

    if isinstance(view, hv.DynamicMap):
        first = tuple(d.values[0] for d in view.kdims if d.values)
        view = view[first if len(first) > 1 else first[0]]
    elif isinstance(view, hv.HoloMap):
        view = view.last if not len(view) else view[view.keys()[0]]
    if not isinstance(view, hv.core.Dimensioned):
        raise SentinelCubeError(
            f"cannot write a {type(view).__name__} as PNG: pass a view of sentinel_cube.plot"
        )
    renderer = hv.renderer("matplotlib").instance(dpi=dpi)
    png, _ = renderer(view, fmt="png")
    target.write_bytes(png)
