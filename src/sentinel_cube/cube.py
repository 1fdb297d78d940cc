"""``open_cube``: Sentinel-2 products -> lazy ``(time, band, y, x)`` xarray cube.

The function only wires the stages together: metadata -> plan
(:mod:`sentinel_cube._plan`) -> dask graph (:mod:`sentinel_cube._graph`) ->
``xarray.DataArray`` with coordinates and a CF grid mapping.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from . import _cloud
from ._graph import cube_array
from ._plan import PERCENT_COORDS, CubePlan, plan_cube
from ._read import capture_env, is_remote_path
from .aoi import read_aoi
from .exceptions import SentinelCubeError
from .safe import Product, read_product
from .schema import S3PATH, STAC_ITEM
from .stac import STAC_PATH_PREFIX, is_stac_item, is_stac_items, items_to_products, registered

__all__ = ["open_cube", "to_products"]

DEFAULT_BANDS = ("B02", "B03", "B04", "B08")


def open_cube(
    products: Any,
    bands: Sequence[str] | str = DEFAULT_BANDS,
    resolution: float = 10,
    *,
    aoi: Any = None,
    bounds: tuple[float, float, float, float] | None = None,
    crs: str | int | None = None,
    chunks: int | tuple[int, int] | Mapping[str, int] | None = None,
    resampling: str = "nearest",
    units: str = "reflectance",
    groupby: str | None = "solar_day",
    on_error: str = "raise",
    reduced_levels: bool | None = None,
    storage_options: Mapping[str, Any] | None = None,
    clip: bool = False,
) -> xr.DataArray:
    """Stack the bands of Sentinel-2 products into a lazy ``(time, band, y, x)`` cube.

    Building the cube reads metadata only; pixels are read when the cube (or a
    part of it) is computed, one dask task per chunk, on any dask scheduler.

    Parameters
    ----------
    products
        The products GeoDataFrame of a catalogue search (its ``path`` column;
        rows without one but with an ``s3path``, as a CDSE search gives, are read
        in place from object storage when S3 credentials are configured, see
        ``storage_options``; rows of a :class:`~sentinel_cube.STACCatalog` search are
        read from their ``stac_item``), a list of product paths or URLs (``.SAFE``
        folders or ``.zip``), a list of :class:`~sentinel_cube.safe.Product`, or STAC
        items: a ``pystac.ItemCollection``, a list of ``pystac.Item`` or of item dicts,
        or a FeatureCollection dict (Earth Search, Planetary Computer, CDSE STAC...;
        band assets read by href, COG or JPEG 2000, see :mod:`sentinel_cube.stac`
        for the band names, grids and radiometry, and the README's "STAC items as
        cube sources"). Unsigned Planetary Computer hrefs are signed with the
        optional ``planetary-computer`` package.
    bands
        Band names (``"B04"``, ``"B8A"``, ``"SCL"``...). Bands of another native
        resolution are resampled to ``resolution``.
    resolution
        Output pixel size in metres of the target CRS.
    aoi
        Anything :func:`sentinel_cube.read_aoi` takes; the cube covers its
        bounding box (snapped outwards to the pixel grid) and only products
        that touch it. Chunks the AOI's box holds but no product touches are
        fills, never reads.
    bounds
        ``(left, bottom, right, top)`` in the target CRS; overrides the AOI's box.
    crs
        Target CRS (``"EPSG:32634"``, ``32634``). Default: the UTM zone that holds
        most of the AOI, or of the products' footprints. Products of another zone
        are reprojected on the fly.
    chunks
        Chunk side in pixels (``int`` or ``(y, x)``), or a dict with any of
        ``"band"`` (bands per chunk), ``"y"``, ``"x"``. Default: 2 x 2 ESA JP2
        tiles of the finest requested band (2048 px at 10 m, 1024 px on a 20 m grid
        of 10 m bands; for a small cube whose time step would make fewer than 8
        tasks, one tile per chunk, then one band per task; between 256 and 2048
        px), so chunks cover whole JP2 tiles,
        with chunk edges aligned to the first product's tile corner when its CRS is
        the target CRS; and neighbouring bands of one native pixel size share a
        chunk, up to 64 MiB per chunk (4 float32 bands of 2048 x 2048 px). One
        task reads one chunk, so selecting one band of a shared chunk still reads
        them all: pass only the bands you need, or ``chunks={"band": 1}``.
    resampling
        rasterio resampling name (``"nearest"``, ``"bilinear"``, ``"average"``...)
        for bands not on the output grid. ``"nearest"`` means what it says: every
        output pixel is one of the source pixels it covers. Class bands (``SCL``,
        see :data:`sentinel_cube.bands.CLASS_BANDS`) ignore it: their codes are
        never blended, at any resolution, and are always taken with nearest from
        their full-resolution pixels.
    units
        ``"reflectance"``: float32 ``(DN + offset) / quantification`` with each
        product's own offset and quantification, NaN for no data.
        ``"dn"``: uint16 digital numbers, every product brought to the
        baseline >= 04.00 convention (offset -1000, quantification 10000), 0 for
        no data, so baselines can be mixed. A *saturated* pixel is one whose DN
        in the band file is 65535 (the sensor or the processing saturated; its
        value is unknown): it is not valid data in either unit, so the next
        product of the same-day mosaic fills it, and where no product has a valid
        value it is no data (NaN, or 0 in DN). Both units therefore take every
        pixel from the same product and have the same no-data pixels. (Class
        bands have no saturated value.)
    groupby
        ``"solar_day"``: products acquired on the same local solar day are
        mosaicked into one time step (first valid pixel wins, products ordered by
        sensing time, then tile id, then newest processing first).
        ``None``: one time step per product.
    on_error
        ``"raise"`` (default): an unreadable band file raises a
        :class:`~sentinel_cube.ProductError` naming it when computed.
        ``"skip"``: warn and leave that product's pixels as no data.
    reduced_levels
        When a band is down-sampled by an integer factor with a multiple of 2
        (e.g. 10 m bands on a 20 m or 40 m grid), read it from the JPEG 2000
        reduced resolution level instead of decoding the full resolution
        (several times faster, see the benchmarks' README; values are the
        codec's low-pass approximation at that level, not an exact resample).
        ``None`` (default): only for the averaging resamplings (``"average"``,
        ``"bilinear"``, ``"cubic"``, ``"cubic_spline"``, ``"lanczos"``,
        ``"gauss"``), for which the level is a fitting approximation. ``True``:
        also for the others, ``"nearest"`` included (an explicit, approximate
        opt-in: pixels are then no longer source pixels). ``False``: never, exact
        resampling of the full-resolution pixels. Class bands never use levels.
        A file that exposes no such level (small images) is read at full
        resolution.
    storage_options
        For products on object storage (``s3://bucket/prefix/NAME.SAFE`` or
        ``.zip``; ``https://`` URLs need none): ``key``, ``secret``, ``token``,
        ``profile``, ``endpoint_url``, ``region_name``, ``anon``, overriding the
        environment (``AWS_*`` variables and profiles, ``AWS_ENDPOINT_URL``, GDAL's
        ``AWS_S3_ENDPOINT``/``AWS_HTTPS``/``AWS_VIRTUAL_HOSTING``, ``CDSE_S3_*``).
        The dask graph carries the endpoint, HTTPS and addressing settings but
        never the keys: tasks in this process (the default threaded scheduler) use
        the keys given here or found on the client; tasks on other machines or
        processes (``dask.distributed``) take them from *their own* environment,
        so set ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (or ``AWS_PROFILE``,
        or ``CDSE_S3_ACCESS_KEY``/``CDSE_S3_SECRET_KEY``) on the workers.
    clip
        With ``aoi``: keep only the pixels inside the AOI polygon (pixel centres,
        as :func:`sentinel_cube.clip` does), no data elsewhere. Chunks outside the
        polygon read nothing and, within a chunk on its outline, JPEG 2000 tiles
        that hold no pixel inside it are never decoded: a thin or ragged AOI
        (a river, a border region) decodes a fraction of its bounding box.

    Returns
    -------
    xarray.DataArray
        Dims ``(time, band, y, x)``; coords ``time`` (UTC, naive
        ``datetime64``), ``band``, ``x``/``y`` (pixel centres), ``spatial_ref``
        (CF grid mapping: ``cube.rio.crs`` and ``cube.rio.transform()`` work), and
        per-time metadata: ``cloudcoverpercentage``, ``vegetationpercentage``,
        ``notvegetatedpercentage``, ``waterpercentage``, ``snowicepercentage``
        (for a fused step, the mean of its products weighted by the share of
        the cube's extent each covers), ``tileid``, ``product_id``, ``platform``,
        ``processingbaseline`` (comma-joined for fused steps),
        ``relativeorbitnumber`` (of the first product), ``n_products`` and
        ``product_path`` (the products' paths in mosaic order, one per line; used
        to read SCL for :func:`sentinel_cube.mask_clouds`). ``SCL`` keeps its
        class codes in either unit (NaN or 0 for no data).

    Raises
    ------
    SentinelCubeError
        Empty ``products``, unknown or missing bands, mixed processing levels,
        an AOI that touches no product, bad arguments; for STAC items, an item
        without a band asked for, without grid information and an unreachable
        asset, or with unusable projection fields (the message names the item).
    MissingExtraError
        Unsigned Planetary Computer hrefs and no ``planetary-computer`` package.

    Examples
    --------
    >>> import sentinel_cube as sc
    >>> products = sc.LocalCatalog("archive/").search(date=("2023-06-01", "2023-08-31"))
    ... # doctest: +SKIP
    >>> cube = sc.open_cube(products, bands=["B04", "B08"], resolution=20,
    ...                     aoi="budapest.geojson")                                # doctest: +SKIP
    >>> cube.sel(band="B08").isel(time=0).compute()                                # doctest: +SKIP
    """
    if on_error not in ("raise", "skip"):
        raise SentinelCubeError(f"on_error={on_error!r}: use 'raise' or 'skip'")
    items = to_products(products, bands, storage_options=storage_options)
    area = None if aoi is None else read_aoi(aoi)
    plan = plan_cube(
        items,
        bands,
        resolution,
        aoi=area,
        bounds=bounds,
        crs=crs,
        chunks=chunks,
        resampling=resampling,
        units=units,
        groupby=groupby,
        clip=clip,
    )
    remote = None
    remote_paths = [b.path for item in items for b in item.bands.values() if is_remote_path(b.path)]
    if remote_paths:
        _check_cdse_items(items, storage_options)
        # the S3 endpoint is what needs settings (https needs none): take it from an S3 path
        s3_paths = [p for p in remote_paths if "/vsis3/" in p]
        remote = _cloud.settings(storage_options, url=(s3_paths or remote_paths)[0])
        if storage_options:  # explicit keys: for this process's tasks, not in the graph
            _cloud.register_credentials(remote)
    data = cube_array(
        plan, env=capture_env(remote), on_error=on_error, reduced_levels=reduced_levels
    )
    return _wrap(plan, data)


def to_products(
    products: Any,
    bands: Sequence[str] | str | None = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> list[Product]:
    """Normalise ``products`` to a list of Products.

    Accepts what :func:`open_cube` accepts: a products GeoDataFrame, paths, URLs,
    Products, STAC items (pystac objects or dicts) or a FeatureCollection, and lists
    mixing them. STAC items are converted by :func:`sentinel_cube.stac.items_to_products`
    (``bands`` must be among their assets); the ``stac://...`` path of a Product made
    from an item earlier in this process gives that Product back.
    """

    def read(path: Any) -> Product:
        text = os.fspath(path)
        if isinstance(text, str) and text.startswith(STAC_PATH_PREFIX):
            found = registered(text)
            if found is None:
                raise SentinelCubeError(
                    f"{text} names a STAC item that was not opened in this process: open "
                    "the cube from the items again (open_cube(items, ...)), with 'SCL' among "
                    "the bands if mask_clouds needs it"
                )
            return found
        return read_product(path, require_bands=None, storage_options=storage_options)

    def from_items(items: Any) -> list[Product]:
        return items_to_products(items, bands, storage_options=storage_options)

    if isinstance(products, Product):
        return [products]
    if isinstance(products, str | os.PathLike):
        return [read(products)]
    if isinstance(products, pd.DataFrame):
        return _in_order(list(_table_sources(products, storage_options)), read, from_items)
    if not isinstance(products, list | tuple) and is_stac_items(products):
        return from_items(products)  # an ItemCollection, a FeatureCollection, one item
    if isinstance(products, Iterable):
        sources: list[Any] = []
        for item in products:
            if isinstance(item, Product | str | os.PathLike):
                sources.append(item)
            elif is_stac_item(item):
                sources.append(item)
            else:
                raise SentinelCubeError(
                    f"products holds a {type(item).__name__}; expected paths, Products or "
                    "STAC items"
                )
        return _in_order(sources, read, from_items)
    raise SentinelCubeError(
        f"products is a {type(products).__name__}; expected a products GeoDataFrame, "
        "a list of product paths, a list of Products or STAC items (a pystac "
        "ItemCollection, pystac Items, item dicts or a FeatureCollection)"
    )


def _in_order(sources: list[Any], read: Any, from_items: Any) -> list[Product]:
    """Products of ``sources`` (Products, paths, STAC items) in their order.

    The items are converted in one call, so a warning about them comes once.
    """
    positions = [i for i, s in enumerate(sources) if not isinstance(s, Product | str | os.PathLike)]
    converted = iter(from_items([sources[i] for i in positions]) if positions else [])
    at_items = set(positions)
    result = []
    for i, source in enumerate(sources):
        if i in at_items:
            result.append(next(converted))
        elif isinstance(source, Product):
            result.append(source)
        else:
            result.append(read(source))
    return result


#: Where CDSE users create the S3 keys that read its ``eodata`` bucket.
CDSE_S3_KEYS_PAGE = "https://eodata-s3keysmanager.dataspace.copernicus.eu/"


def _table_sources(
    products: pd.DataFrame, storage_options: Mapping[str, Any] | None
) -> list[str | dict[str, Any]]:
    """What to read for each row of a products table: its ``path``, ``stac_item`` or ``s3path``.

    A row's local ``path`` wins. A row without one but with a ``stac_item`` (a
    :class:`~sentinel_cube.STACCatalog` search) is read from the item's assets in
    place. A row with only an ``s3path`` (a CDSE search) is read in place from object
    storage, which needs S3 credentials and an S3 endpoint (resolved by
    :func:`sentinel_cube._cloud.settings`: ``storage_options``, the ``AWS_*``
    variables, or ``CDSE_S3_ACCESS_KEY``/``CDSE_S3_SECRET_KEY`` with CDSE's endpoint).
    """
    columns = [c for c in ("path", STAC_ITEM, S3PATH) if c in products.columns]
    if not columns:
        raise SentinelCubeError(
            "the products table has no 'path' column: download the products first "
            "(catalog.download) or search a LocalCatalog"
        )
    empty = pd.Series(pd.NA, index=products.index)
    local = products["path"] if "path" in columns else empty
    items = products[STAC_ITEM] if STAC_ITEM in columns else empty
    remote = products[S3PATH] if S3PATH in columns else empty
    neither = local.isna() & items.isna() & remote.isna()
    if neither.any():
        missing = list(products.index[neither])[:3]
        raise SentinelCubeError(f"products {missing} have no local path: download them first")
    in_place = local.isna() & items.isna()
    if in_place.any():
        _check_s3_access(
            list(products.index[in_place]), storage_options, str(remote[in_place].iloc[0])
        )
    sources: list[str | dict[str, Any]] = []
    for pid, path, item, url in zip(products.index, local, items, remote, strict=True):
        if not pd.isna(path):
            sources.append(str(path))
        elif not pd.isna(item):
            try:
                sources.append(json.loads(str(item)))
            except ValueError:
                raise SentinelCubeError(
                    f"product {pid}: its {STAC_ITEM} column is not a STAC item's JSON; "
                    "search the catalogue again"
                ) from None
        else:
            sources.append(str(url))
    return sources


def _check_s3_access(
    product_ids: list[Any], storage_options: Mapping[str, Any] | None, url: str
) -> None:
    """Raise a clear error when products can only be read on S3 and S3 is not set up."""
    remote = _cloud.settings(storage_options, url=url)
    if (remote.has_credentials or remote.anon) and remote.endpoint is not None:
        return
    count = len(product_ids)
    shown = ", ".join(str(p) for p in product_ids[:3]) + (
        f" and {count - 3} more" if count > 3 else ""
    )
    if remote.has_credentials:  # keys of another service, for AWS itself
        problem = (
            "S3 keys are set but no S3 endpoint (AWS_ACCESS_KEY_ID/AWS_PROFILE are for AWS, "
            "and these products are not on AWS; CDSE_S3_ACCESS_KEY is not set)"
        )
    else:
        problem = "no S3 credentials are configured"
    raise SentinelCubeError(
        f"{count} product(s) have no local path, only a copy on object storage "
        f"({shown}), and {problem}: download them (catalog.download(products, directory)) "
        "and search the directory with LocalCatalog, or set CDSE_S3_ACCESS_KEY and "
        f"CDSE_S3_SECRET_KEY (create them at {CDSE_S3_KEYS_PAGE}) to read them in place "
        "(or pass storage_options with key, secret and endpoint_url)"
    )


def _check_cdse_items(products: Sequence[Product], storage_options: Mapping[str, Any] | None):
    """Raise a clear error when STAC items' files are on CDSE's S3 and no keys are set."""
    on_cdse = [
        p.product_id
        for p in products
        if p.path.startswith(STAC_PATH_PREFIX)
        and any(b.path.startswith("/vsis3/eodata/") for b in p.bands.values())
    ]
    if not on_cdse:
        return
    remote = _cloud.settings(storage_options, url="s3://eodata/")
    if remote.has_credentials or remote.anon:
        return
    shown = ", ".join(on_cdse[:3]) + (f" and {len(on_cdse) - 3} more" if len(on_cdse) > 3 else "")
    raise SentinelCubeError(
        f"{len(on_cdse)} STAC item(s) ({shown}) have their band files on CDSE's S3 "
        "(s3://eodata/), and no S3 credentials are configured: set CDSE_S3_ACCESS_KEY and "
        f"CDSE_S3_SECRET_KEY (create them at {CDSE_S3_KEYS_PAGE}), or pass storage_options "
        "with key and secret"
    )


def _wrap(plan: CubePlan, data: Any) -> xr.DataArray:
    x, y = plan.grid.coords()
    times = np.array([s.time.tz_convert("UTC").tz_localize(None) for s in plan.steps])
    coords: dict[str, Any] = {
        "time": ("time", times.astype("datetime64[ns]")),
        "band": ("band", np.array(plan.bands, dtype=object)),
        "y": ("y", y),
        "x": ("x", x),
    }
    coords.update(_time_coords(plan))
    nodata = np.nan if plan.units == "reflectance" else 0
    cube = xr.DataArray(
        data,
        dims=("time", "band", "y", "x"),
        coords=coords,
        name="reflectance" if plan.units == "reflectance" else "dn",
        attrs={
            "units": "1" if plan.units == "reflectance" else "DN",
            "sentinel_cube_units": plan.units,
            "resampling": plan.resampling,
            "time_zone": "UTC",
            **(
                {}
                if plan.units == "reflectance"
                else {"scale_factor_note": "reflectance = (DN - 1000) / 10000"}
            ),
        },
    )
    cube = cube.rio.write_crs(plan.grid.crs)
    cube = cube.rio.write_transform(plan.grid.transform)
    cube = cube.rio.write_nodata(nodata, encoded=False)
    cube.x.attrs.update(units="metre", standard_name="projection_x_coordinate")
    cube.y.attrs.update(units="metre", standard_name="projection_y_coordinate")
    return cube


def _time_coords(plan: CubePlan) -> dict[str, tuple[str, np.ndarray]]:
    coords: dict[str, tuple[str, np.ndarray]] = {}
    for name, attribute in PERCENT_COORDS.items():
        values = []
        for step in plan.steps:
            pairs = [
                (getattr(p, attribute), w)
                for p, w in zip(step.products, step.weights, strict=True)
                if getattr(p, attribute) is not None
            ]
            total = sum(w for _, w in pairs)
            if not pairs:
                values.append(np.nan)
            elif total > 0:
                values.append(sum(v * w for v, w in pairs) / total)
            else:
                values.append(float(np.mean([v for v, _ in pairs])))
        coords[name] = ("time", np.array(values, dtype=np.float64))

    def joined(attribute: str) -> np.ndarray:
        return np.array(
            [
                ",".join(dict.fromkeys(str(getattr(p, attribute)) for p in s.products))
                for s in plan.steps
            ],
            dtype=object,
        )

    coords["tileid"] = ("time", joined("tile_id"))
    coords["product_id"] = ("time", joined("product_id"))
    coords["platform"] = ("time", joined("platform"))
    coords["processingbaseline"] = ("time", joined("processing_baseline"))
    coords["relativeorbitnumber"] = (
        "time",
        np.array([s.products[0].relative_orbit for s in plan.steps], dtype=np.int64),
    )
    coords["n_products"] = ("time", np.array([len(s.products) for s in plan.steps], np.int64))
    coords["product_path"] = (
        "time",
        np.array(["\n".join(p.path for p in s.products) for s in plan.steps], dtype=object),
    )
    return coords
