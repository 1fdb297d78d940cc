"""Browse a cube frame by frame: time slider, band selector, stretched RGB composites."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from ..exceptions import SentinelCubeError
from ..ops import cube_percentiles, stretch
from ._common import check_size, holoviews, style

__all__ = ["cube_view"]


def cube_view(
    cube: xr.DataArray,
    bands: Sequence[str] | str | None = None,
    *,
    rgb: bool | None = None,
    percentiles: tuple[float, float] = (2, 98),
    stretch_dims: Sequence[str] = ("y", "x"),
    max_size: int = 800,
    cmap: str = "gray",
    width: int = 600,
) -> Any:
    """Browse a ``(time, band, y, x)`` cube: a time slider and a band selector.

    Nothing is computed when the view is built; showing a frame computes that frame
    only (a holoviews ``DynamicMap``: each slider move reads one time step of the
    chosen bands), so the view works on lazy cubes of any length.

    Parameters
    ----------
    cube : xarray.DataArray
        Dims ``(time, band, y, x)`` (or ``(time, y, x)``: one unnamed band), lazy or not,
        e.g. from :func:`sentinel_cube.open_cube` or :func:`sentinel_cube.open_zarr`.
    bands : str or sequence of str, optional
        Bands to browse (default all). Three bands give an RGB composite in the order
        given (red, green, blue), e.g. ``["B04", "B03", "B02"]``.
    rgb : bool, optional
        Force (True) or refuse (False) the composite; default: composite when ``bands``
        names exactly three bands.
    percentiles : (low, high)
        Stretch percentiles. RGB frames are stretched with :func:`sentinel_cube.stretch`
        (exact percentiles, no data transparent); single bands are drawn with a colour
        map whose limits are these percentiles of the frame shown.
    stretch_dims : sequence of str
        ``("y", "x")`` (default): each frame gets its own stretch, computed from that
        frame only. ``("time", "y", "x")``: one stretch for every frame (frames compare),
        computed once over the whole cube on the first frame shown (this reads the whole
        cube once).
    max_size : int
        Frames larger than this many pixels along a side are shown subsampled (every
        k-th pixel) so that the browser receives at most ``max_size`` px per side.
    cmap : str
        Colour map of single-band frames.
    width : int
        Width of the image area in pixels.

    Returns
    -------
    holoviews.DynamicMap
        Key dimensions ``time`` (the cube's time stamps, UTC: a slider; text labels and a
        selector if two time steps share a stamp) and, for single bands, ``band``. In a
        notebook it shows with its widgets; ``panel serve`` serves it.
        :func:`sentinel_cube.plot.save` writes a static HTML page that
        holds every frame (at most ``max_frames``; select fewer time steps with
        ``cube.isel(time=...)`` for long cubes).

    Examples
    --------
    >>> cube = sc.open_zarr("budapest.zarr")                                 # doctest: +SKIP
    >>> view = cube_view(cube, ["B04", "B03", "B02"])                        # doctest: +SKIP
    >>> sc.plot.save(view, "browser.html")   # every frame, static        # doctest: +SKIP
    """
    hv = holoviews()
    cube = _check_cube(cube)
    band_names = _check_bands(cube, bands)
    if rgb is None:
        rgb = bands is not None and len(band_names) == 3
    if rgb and len(band_names) != 3:
        raise SentinelCubeError(
            f"rgb=True needs exactly three bands (red, green, blue), got bands={band_names}"
        )
    if not isinstance(max_size, int) or max_size < 2:
        raise SentinelCubeError(f"max_size={max_size!r} must be an integer number of pixels >= 2")
    check_size("width", width)
    stretch_dims = tuple(stretch_dims)
    if set(stretch_dims) not in ({"y", "x"}, {"time", "y", "x"}):
        raise SentinelCubeError(
            f"stretch_dims={stretch_dims!r}: use ('y', 'x') (per frame) or ('time', 'y', 'x')"
        )
    stamps = pd.DatetimeIndex(cube["time"].to_numpy())
    labels = _time_labels(stamps)
    keys: list[Any] = list(stamps) if stamps.is_unique else labels
    step = max(1, math.ceil(max(cube.sizes["y"], cube.sizes["x"]) / max_size))
    browser = _Browser(
        cube, band_names, keys, labels, rgb, tuple(percentiles), stretch_dims, step, cmap, width
    )
    kdims = [hv.Dimension("time", values=keys, label="time (UTC)")]
    if not rgb:
        kdims.append(hv.Dimension("band", values=band_names))
    return hv.DynamicMap(browser.frame, kdims=kdims)


class _Browser:
    """Computes and draws one frame on request; caches the cube-wide stretch if any."""

    def __init__(
        self, cube, bands, keys, labels, rgb, percentiles, stretch_dims, step, cmap, width
    ):
        self.cube = cube
        self.bands = bands
        self.index = {key: i for i, key in enumerate(keys)}
        self.labels = labels
        self.rgb = rgb
        self.percentiles = percentiles
        self.global_stretch = "time" in stretch_dims
        self.step = step
        self.cmap = cmap
        self.width = width
        self._bounds: dict[str, np.ndarray] = {}
        crs = _crs_name(cube)
        self.xlabel = f"x ({crs})" if crs else "x"
        self.ylabel = f"y ({crs})" if crs else "y"

    def frame(self, time: Any, band: str | None = None) -> Any:
        hv = holoviews()
        i = self.index[time if isinstance(time, str) else pd.Timestamp(time)]
        sub = {"y": slice(None, None, self.step), "x": slice(None, None, self.step)}
        title = f"{self.labels[i]} UTC · {self._describe(band)}{self._cloud(i)}"
        if self.rgb:
            source = self.cube.isel(time=[i]).sel(band=self.bands)
            if self.global_stretch:
                low, high = self._global_bounds("rgb", self.cube.sel(band=self.bands))
                shown = _apply_stretch(source, low, high)
            else:
                # one frame, read once: stretch needs it twice (percentiles, then pixels),
                # and the frame is held whole anyway while its own percentiles are counted
                source = source.persist()
                shown = stretch(source, self.percentiles, dims=("time", "y", "x"), out="uint8")
            valid = _valid(source).any("band")
            values, mask = dask.compute(shown.isel(sub).data, valid.isel(sub).data)
            channels = np.moveaxis(np.asarray(values)[0], 0, -1)
            alpha = np.where(np.asarray(mask)[0], 255, 0).astype(np.uint8)
            image = np.dstack([channels, alpha])
            x, y = self.cube["x"].to_numpy()[sub["x"]], self.cube["y"].to_numpy()[sub["y"]]
            image, bounds = _orient(image, x, y, self.cube, self.step)
            element = hv.RGB(image, bounds=bounds, kdims=["x", "y"], vdims=["R", "G", "B", "A"])
            both: dict[str, Any] = {}
            bokeh: dict[str, Any] = {}
        else:
            name = band if band is not None else self.bands[0]
            source = self.cube.isel(time=i)
            if "band" in source.dims:
                source = source.sel(band=name)
            values = np.asarray(source.isel(sub).values, dtype=np.float64)
            if source.dtype.kind in "iu":
                values[values == 0] = np.nan
            if self.global_stretch:
                whole = self.cube.sel(band=[name]) if "band" in self.cube.dims else self.cube
                vmin, vmax = (float(v[0]) for v in self._global_bounds(name, whole))
            else:
                finite = values[np.isfinite(values)]
                limits = np.percentile(finite, self.percentiles) if finite.size else (0.0, 1.0)
                vmin, vmax = float(limits[0]), float(limits[1])
            x, y = self.cube["x"].to_numpy()[sub["x"]], self.cube["y"].to_numpy()[sub["y"]]
            values, bounds = _orient(values, x, y, self.cube, self.step)
            element = hv.Image(values, bounds=bounds, kdims=["x", "y"], vdims=[name])
            vmax = vmax if vmax > vmin else vmin + 1e-9
            both = {"cmap": self.cmap, "clim": (vmin, vmax), "colorbar": True}
            bokeh = {"clipping_colors": {"NaN": (0, 0, 0, 0)}}
        return style(
            element,
            both={**both, "title": title, "xlabel": self.xlabel, "ylabel": self.ylabel},
            bokeh={**bokeh, "frame_width": self.width, "data_aspect": 1, "tools": ["hover"]},
            matplotlib={"aspect": "equal", "fig_size": 150},
        )

    def _describe(self, band: str | None) -> str:
        if self.rgb:
            return "RGB " + "/".join(self.bands)
        return str(band if band is not None else self.bands[0])

    def _cloud(self, i: int) -> str:
        if "cloudcoverpercentage" not in self.cube.coords:
            return ""
        value = float(self.cube["cloudcoverpercentage"].to_numpy()[i])
        return "" if np.isnan(value) else f" · cloud {value:.1f} %"

    def _global_bounds(self, key: str, data: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
        if key not in self._bounds:
            bounds = cube_percentiles(data, self.percentiles, dims=("time", "y", "x"))
            self._bounds[key] = np.asarray(bounds.transpose("band", "percentile").values)
        values = self._bounds[key]
        return values[:, 0], values[:, 1]


def _apply_stretch(source: xr.DataArray, low: np.ndarray, high: np.ndarray) -> xr.DataArray:
    """The mapping of :func:`sentinel_cube.stretch` with known per-band bounds (uint8)."""
    low_da = xr.DataArray(low, dims="band", coords={"band": source["band"]})
    high_da = xr.DataArray(high, dims="band", coords={"band": source["band"]})
    values = source.astype(np.float64)
    if source.dtype.kind in "iu":
        values = values.where(source != 0)
    span = high_da - low_da
    scaled = ((values - low_da) / span.where(span > 0)).fillna(0).where(values.notnull())
    return (scaled.clip(0, 1) * 255).round().fillna(0).astype(np.uint8).transpose(*source.dims)


def _valid(source: xr.DataArray) -> xr.DataArray:
    return source != 0 if source.dtype.kind in "iu" else source.notnull()


def _orient(values: np.ndarray, x: np.ndarray, y: np.ndarray, cube: xr.DataArray, step: int):
    """Rows top (north) first, and the image's (left, bottom, right, top) bounds."""
    dx = _spacing(cube["x"].to_numpy())
    dy = _spacing(cube["y"].to_numpy())
    if len(y) > 1 and y[1] > y[0]:
        values = values[::-1]
    left = float(x.min()) - dx / 2
    top = float(y.max()) + dy / 2
    right = left + values.shape[1] * dx * step
    bottom = top - values.shape[0] * dy * step
    return values, (left, bottom, right, top)


def _spacing(coords: np.ndarray) -> float:
    return float(abs(coords[1] - coords[0])) if len(coords) > 1 else 1.0


def _crs_name(cube: xr.DataArray) -> str | None:
    try:
        crs = cube.rio.crs
    except Exception:  # noqa: BLE001 - no rioxarray accessor or no spatial_ref
        return None
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}, m" if epsg else None


def _check_cube(cube: Any) -> xr.DataArray:
    if not isinstance(cube, xr.DataArray):
        raise SentinelCubeError(
            f"cube must be an xarray.DataArray with dims (time, band, y, x), got "
            f"{type(cube).__name__}; pick one variable of a Dataset first"
        )
    missing = [d for d in ("time", "y", "x") if d not in cube.dims]
    extra = [d for d in cube.dims if d not in ("time", "band", "y", "x")]
    if missing or extra:
        raise SentinelCubeError(
            f"cube has dims {cube.dims}: cube_view needs (time, band, y, x) or (time, y, x); "
            "select or reduce the other dims first"
        )
    if cube.sizes["time"] == 0:
        raise SentinelCubeError("the cube has no time step to show")
    return cube


def _check_bands(cube: xr.DataArray, bands: Sequence[str] | str | None) -> list[str]:
    if "band" not in cube.dims:
        if bands not in (None, [], ()):
            raise SentinelCubeError(f"bands={bands!r}: the cube has no band dimension")
        return [str(cube.name or "value")]
    available = [str(b) for b in cube["band"].to_numpy()]
    if bands is None:
        return available
    wanted = [bands] if isinstance(bands, str) else [str(b) for b in bands]
    unknown = [b for b in wanted if b not in available]
    if unknown or not wanted:
        raise SentinelCubeError(
            f"bands={wanted!r}: the cube has bands {', '.join(available)}; pick among them"
        )
    return wanted


def _time_labels(stamps: pd.DatetimeIndex) -> list[str]:
    daily = stamps.normalize().is_unique
    labels = [t.strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:%M") for t in stamps]
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return unique
