"""The only module that reads pixels: one band of one product onto one chunk grid.

Tasks call :func:`read_source` with plain, picklable descriptions (a
:class:`Source` and a :class:`~sentinel_cube.grid.Grid`); files are opened inside
the task's thread (``sharing=False``, a small per-thread cache of handles), so no
open dataset is ever pickled or shared between threads, and the GDAL settings
captured on the client are restored around each read.

Three ways to read, cheapest first:

1. *Native window*: same CRS, same pixel size, pixels aligned -> a plain windowed
   read of the intersection.
2. *Integer down-sampling*: same CRS, output pixels an integer multiple ``k`` of the
   source pixels and aligned -> a windowed read of the full-resolution pixels,
   decimated: ``nearest`` takes one source pixel of each ``k x k`` block (the one
   GDAL's nearest takes), other resamplings are GDAL's over exactly that block.
   *Reduced resolution level* (the fast path): when :func:`use_reduced_levels` says
   so, the JP2 is opened at its level ``2**L`` (the largest power of two dividing
   ``k`` that the file exposes, GDAL's ``OVERVIEW_LEVEL``) and only that level is
   decoded. A level is the codec's low-pass approximation of the image, so it
   stands in for averaging resamplings only, never silently for ``nearest``. A file
   too small to expose the level (or any level) is read at full resolution.
   Integer up-sampling (e.g. 20 m bands on a 10 m grid) reads the native window
   and repeats pixels.
3. *Warp*: anything else (another UTM zone, non-aligned grids). ``nearest`` (and class
   bands): the source window under the chunk is decoded once and each output pixel
   takes the source pixel holding its centre, located by :mod:`sentinel_cube._warp`
   (exact to ~1e-6 pixel, independent of the chunking). Other resamplings: GDAL's
   warper (``rasterio.vrt.WarpedVRT``) from the source onto the chunk grid, with an
   exact transformation so results do not depend on the chunking.

Which resampling and which path a band gets is decided by :func:`read_rules`:
class bands (:data:`~sentinel_cube.bands.CLASS_BANDS`) are always nearest from
full-resolution pixels.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

import cachetools
import numpy as np
import rasterio
import rasterio.session
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.features import geometry_mask
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from . import _cloud
from ._source import Source, resampling_name, use_reduced_levels
from ._tiles import TileCache
from ._warp import forget_nodes, source_pixels
from .exceptions import ProductError, SentinelCubeWarning
from .grid import Grid

__all__ = [
    "GDAL_DEFAULTS",
    "Source",
    "block_mean",
    "capture_env",
    "drop_caches",
    "is_remote_path",
    "pixels_inside",
    "read_source",
    "tile_parts",
]

#: JPEG 2000 decoding in the thread that reads. With ``OPJ_NUM_THREADS`` unset, GDAL's
#: JP2OpenJPEG driver gives each read's OpenJPEG codec a pool of ``GDAL_NUM_THREADS``
#: threads, so even with 1 every read starts a thread and hands it each code block
#: (~400,000 context switches for the 193 MPix of the large-AOI benchmark); when the
#: variable is set, GDAL leaves OpenJPEG's own setting alone, and 0 decodes in the
#: calling thread: 5 % less wall time for the same ingest (measured). dask already runs
#: one task per core. It is an environment variable (GDAL reads it with ``getenv``, not
#: as a configuration option), set once here, when the reader is imported, unless the
#: user set it: it also makes other JPEG 2000 reads of this process single-threaded.
os.environ.setdefault("OPJ_NUM_THREADS", "0")

#: GDAL settings used inside every read task; each says why.
GDAL_DEFAULTS: dict[str, str | int | bool] = {
    # dask already runs one task per core: one decoding thread per task avoids
    # oversubscribing the cores (OpenJPEG would otherwise start a thread per core).
    "GDAL_NUM_THREADS": 1,
    # a 1024 x 1024 uint16 JP2 tile decodes to 2 MB and tile-aligned chunks rarely
    # read a tile twice: a small block cache keeps workers' memory low.
    "GDAL_CACHEMAX": 64,
    # .SAFE folders hold dozens of files: do not list folders on every open.
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    # no per-handle byte cache for plain files (the OS page cache already holds them;
    # 25 MB per cached handle grew workers by ~200 MB per time step of a full-size
    # ingest); zip members get a small one, see ``ZIP_CACHE``.
    "VSI_CACHE": False,
    # a read error must raise, not come back as zeros.
    "CPL_VSIL_CURL_NON_CACHED": "",
}


def capture_env(remote: _cloud.Remote | None = None) -> dict[str, object]:
    """GDAL settings for read tasks: defaults, ``remote``'s, an active ``rasterio.Env``.

    Called on the client when a cube is built; the tasks restore these settings
    around each read, so workers read with the client's settings. Secrets (AWS keys,
    session tokens) are left out, even from an active ``rasterio.Env``: the graph
    carries the endpoint, HTTPS and addressing of ``remote`` (see
    :meth:`sentinel_cube._cloud.Remote.gdal_env`), and each task takes the keys from
    its own process (:func:`sentinel_cube._cloud.task_credentials`).
    """
    env: dict[str, object] = dict(GDAL_DEFAULTS)
    if remote is not None:
        env.update(remote.gdal_env())
    if rasterio.env.hasenv():
        env.update(rasterio.env.getenv())
    for secret in _cloud.SECRET_SETTINGS:
        env.pop(secret, None)
    return env


_REMOTE_PREFIXES = ("/vsis3/", "/vsicurl/", "/vsizip//vsis3/", "/vsizip//vsicurl/",
                    "/vsizip/{/vsis3/", "/vsizip/{/vsicurl/")  # fmt: skip


def is_remote_path(path: str) -> bool:
    """Whether the GDAL ``path`` is read over the network (``/vsis3/``, ``/vsicurl/``)."""
    return path.startswith(_REMOTE_PREFIXES)


_EPS = 1e-6

#: Settings in force while a band file inside a product zip (``/vsizip/``) is opened:
#: a deflated member cannot seek, so a small per-handle cache of its bytes saves
#: re-inflating when a task reads tiles out of order.
ZIP_CACHE: dict[str, str | int | bool] = {"VSI_CACHE": True, "VSI_CACHE_SIZE": 8 * 2**20}

#: Open datasets kept per thread. Opening a JP2 (parsing its codestream index)
#: costs ~4 ms, reading a 64 x 64 window from an open one ~0.2 ms: tasks of the
#: same file in the same thread reuse its handle. Handles never leave their
#: thread (rasterio datasets are not thread-safe) and are keyed by the file's
#: size and modification time, so a replaced file is opened afresh. A chunk reads
#: every band of every product meeting it (4 bands x 4 overlapping products is 16
#: files); an open full-size JP2 holds well under 1 MB once read (measured).
MAX_OPEN_PER_THREAD = 32
_LOCAL = threading.local()

#: Error tolerance (in source pixels) of the warper's transformation. GDAL's usual
#: 0.125 interpolates the transformation across each destination window, so the
#: value of a pixel would depend on how the cube is chunked (~1 % of pixels move by
#: one source pixel). A negligible tolerance makes every pixel the exact nearest (or
#: exactly resampled) value whatever the chunking, at ~2x the warp cost (measured:
#: 0.15 s vs 0.02 s per 1024 x 1024 chunk; a JP2 decode of the same costs ~0.13 s).
WARP_TOLERANCE = 1e-6


def read_source(
    source: Source,
    grid: Grid,
    resampling: Resampling | str = Resampling.nearest,
    *,
    env: Mapping[str, object] | None = None,
    reduced_levels: bool | None = None,
    on_error: str = "raise",
    inside: np.ndarray | None = None,
) -> np.ndarray:
    """Read ``source`` onto ``grid`` as uint16 DN, 0 where the source has no data.

    The caller decides what kind of band it reads (see
    :func:`sentinel_cube._source.read_rules`): this function applies ``resampling`` as
    given.

    Parameters
    ----------
    source
        The band file to read.
    grid
        The output grid (usually one chunk of the cube).
    resampling
        rasterio resampling (or its name) used when grids differ. With ``nearest``
        every output pixel is one of the source pixels it covers.
    env
        GDAL settings for the read (default :data:`GDAL_DEFAULTS`).
    reduced_levels
        Read the JP2's reduced resolution levels for integer down-sampling: ``None``
        for averaging resamplings only, ``True`` also for the others (approximate),
        ``False`` never (see :func:`sentinel_cube._source.use_reduced_levels`).
    on_error
        ``"raise"`` raises a :class:`ProductError` naming the file when it
        cannot be decoded; ``"skip"`` warns and returns no data instead.
    inside
        Optional boolean mask of ``grid``'s pixels that matter (a clipped cube's
        AOI): the grid is cut along the file's internal tiles (its JPEG 2000 tiles
        or COG blocks, as GDAL reports them) and only the parts holding such
        pixels are read, so tiles outside are never decoded; the rest stays 0.
    """
    settings = dict(GDAL_DEFAULTS if env is None else env)
    remote = is_remote_path(source.path)
    # keys from this process, never from the graph
    keys = _cloud.task_credentials(settings) if remote else {}
    session = _Keys(keys) if keys else None
    method = Resampling[resampling_name(resampling)]
    statuses: list[int] = []
    try:
        with rasterio.Env(session=session, **settings), _http_statuses(statuses, remote):
            levels = use_reduced_levels(method, reduced_levels)
            if inside is not None and not inside.any():
                return np.zeros(grid.shape, dtype=np.uint16)
            return _read(source, grid, method, levels, None if inside is None or inside.all()
                         else inside)  # fmt: skip
    except (RasterioError, OSError, _WrongSize) as error:
        if isinstance(error, _WrongSize):
            problem = (
                f"band file {_cloud.scrub(source.path)} {error}; the file does not belong to "
                "this product or was replaced: delete the product and download it again"
            )
        elif remote:
            problem = _remote_problem(source.path, error, statuses, tuple(keys.values()))
            _forget(source.path, settings, session)
            _scrub_causes(error, tuple(keys.values()))
        else:
            problem = (
                f"could not read band file {source.path} ({error}); the file is corrupt or "
                "truncated: delete the product and download it again"
            )
        where = source.product_id or _cloud.object_url(source.path)[0]
        if on_error == "skip":
            warnings.warn(
                f"{where}: {problem}; its pixels are left as no data",
                SentinelCubeWarning,
                stacklevel=2,
            )
            return np.zeros(grid.shape, dtype=np.uint16)
        raise ProductError(where, problem) from error


def pixels_inside(geometry: BaseGeometry, grid: Grid, all_touched: bool = False) -> np.ndarray:
    """Mask of the pixels of ``grid`` inside ``geometry`` (in the grid's CRS), as
    :func:`rasterio.features.geometry_mask` rasterises it (pixel centres inside, or every
    pixel touched)."""
    return geometry_mask(
        [geometry], out_shape=grid.shape, transform=grid.transform,
        all_touched=all_touched, invert=True,
    )  # fmt: skip


def _forget(path: str, settings: Mapping[str, object], session: _Keys | None) -> None:
    """Make GDAL forget what it kept of the remote object ``path`` reads, after a failure.

    GDAL remembers an object whose request failed (a 503 after all its retries too) as
    missing, or a bad block of it, for the life of the process: a cube computed again
    once the service has recovered would fail again without a request. With
    ``CPL_VSIL_CURL_NON_CACHED`` naming the object, GDAL discards what it cached of it
    when a handle of it closes: one more open, not retried, does that (its outcome does
    not matter). The setting is a list of prefixes separated by ``:``, so for an HTTP(S)
    URL it names all of them, for the moment of this open in this thread only.
    """
    forget = {
        **settings,
        "CPL_VSIL_CURL_NON_CACHED": _cloud.split_gdal_path(path)[0],
        "GDAL_HTTP_MAX_RETRY": 0,
    }
    try:
        with rasterio.Env(session=session, **forget), rasterio.open(path, sharing=False):
            pass
    except (RasterioError, OSError):
        pass


#: GDAL's messages that give the status of a request it gave up on (0: no answer): the
#: warning "HTTP response code on <url>: 503" and the error "HTTP response code: 503" of
#: a request it remembers (not "HTTP error code: 503 ... Retrying": it may yet succeed).
_HTTP_STATUS_RE = re.compile(r"HTTP response code(?: on \S+)?: (\d{1,3})\b")


class _ScrubURLs(logging.Filter):
    """GDAL's messages name the URLs it requests, signed query strings (a Planetary
    Computer SAS token, a pre-signed URL) included: logged without them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "://" in message and "?" in message:
            record.msg, record.args = _cloud.scrub(message), ()
        return True


logging.getLogger("rasterio._env").addFilter(_ScrubURLs())


def _scrub_causes(error: BaseException, secrets: tuple[str, ...]) -> None:
    """Strip URL query strings and ``secrets`` from ``error`` and its causes' messages,
    which a traceback shows (GDAL names the signed URL it failed to read)."""
    for cause in _cloud.causes(error):
        args = tuple(
            _cloud.scrub(arg, secrets) if isinstance(arg, str) else arg for arg in cause.args
        )
        if args != cause.args:
            try:
                cause.args = args
            except (AttributeError, TypeError):  # read-only (GDAL's CPLE_* errors): left
                pass


class _StatusLog(logging.Handler):
    """Collects the HTTP statuses of GDAL's warnings in the thread that created it."""

    def __init__(self, statuses: list[int]) -> None:
        super().__init__(logging.WARNING)
        self.statuses = statuses
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.statuses.extend(int(s) for s in _HTTP_STATUS_RE.findall(record.getMessage()))


@contextmanager
def _http_statuses(statuses: list[int], remote: bool) -> Iterator[None]:
    """Append to ``statuses`` the HTTP statuses GDAL reports in this thread meanwhile.

    GDAL tells the status of a failed request only in its warnings (rasterio logs them
    to ``rasterio._env``); the error it raises next often does not (a band file inside
    a zip then merely "does not exist"). Without those warnings (logging turned off for
    rasterio), errors are told apart by GDAL's error alone.
    """
    if not remote:
        yield
        return
    logger = logging.getLogger("rasterio._env")
    handler = _StatusLog(statuses)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


_ACCESS_ERRORS = {
    "CPLE_AWSAccessDeniedError",
    "CPLE_AWSInvalidCredentialsError",
    "CPLE_AWSSignatureDoesNotMatchError",
}
_MISSING_ERRORS = {"CPLE_AWSObjectNotFoundError", "CPLE_AWSBucketNotFoundError"}


def _remote_problem(
    path: str, error: BaseException, statuses: list[int], secrets: tuple[str, ...]
) -> str:
    """What went wrong reading the remote band file ``path``, and what to do; no secrets.

    Access refused (401, 403), missing (404) and a service that throttles, fails or does
    not answer (429, 5xx, timeouts: :func:`sentinel_cube._cloud.unavailable`) are told
    apart, from the HTTP ``statuses`` GDAL reported (the last counts) and its error.
    """
    chain = _cloud.causes(error)
    names = {type(cause).__name__ for cause in chain}
    text = " ".join(str(cause) for cause in chain)
    reported = statuses or [int(s) for s in _HTTP_STATUS_RE.findall(text)]
    status = reported[-1] if reported else None
    url, member = _cloud.object_url(path)
    what = f"band file {member} of {url}" if member else f"band file {url}"
    detail = _cloud.scrub(str(error), secrets)
    if status in (401, 403) or names & _ACCESS_ERRORS:
        return (
            f"could not read {what}: access was refused (HTTP {status or 403}); check that "
            "every process reading pixels (each dask worker) has credentials that may read "
            "it: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or CDSE_S3_ACCESS_KEY/"
            "CDSE_S3_SECRET_KEY in its environment (keys given as storage_options reach "
            "this process only)"
        )
    if status == 404 or names & _MISSING_ERRORS or (status is None and "does not exist" in text):
        return (
            f"could not read {what}: it does not exist; the product was moved or deleted "
            "since its metadata was read, or the URL or endpoint is wrong: check them "
            "(AWS_ENDPOINT_URL, AWS_S3_ENDPOINT, CDSE_S3_ENDPOINT), or search the catalogue "
            "again"
        )
    if status in _cloud.RETRY_STATUSES or status == 0 or "CURL error" in text:
        shown = detail if "CURL error" in detail else ""
        return f"could not read {what}: {_cloud.unavailable(status or None, shown)}"
    return (
        f"could not read {what} ({detail}); check that the object exists, that the "
        "endpoint answers (AWS_ENDPOINT_URL, AWS_S3_ENDPOINT, CDSE_S3_ENDPOINT) and that "
        "this process has credentials that may read it (AWS_ACCESS_KEY_ID/"
        "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or CDSE_S3_ACCESS_KEY/CDSE_S3_SECRET_KEY in "
        "the environment of every dask worker)"
    )


class _Keys(rasterio.session.Session):
    """Credentials as GDAL settings (rasterio refuses keys among plain settings); no boto3."""

    def __init__(self, options: Mapping[str, str]) -> None:
        self._options = dict(options)

    def get_credential_options(self) -> dict[str, str]:
        return dict(self._options)

    def __repr__(self) -> str:  # never show the keys
        return "_Keys(...)"


class _WrongSize(Exception):
    """The band file's size is not the one the product metadata gives."""


def _check_size(dataset: rasterio.io.DatasetReader, source: Source) -> None:
    """Refuse a full-resolution ``dataset`` whose size differs from ``source.shape``."""
    if (dataset.height, dataset.width) != tuple(source.shape):
        rows, cols = source.shape
        raise _WrongSize(
            f"is {dataset.width} x {dataset.height} px, but the product metadata "
            f"(MTD_TL.xml, or a STAC item's proj:shape) gives {cols} x {rows} px"
        )


def _read(
    source: Source,
    grid: Grid,
    resampling: Resampling,
    reduced_levels: bool,
    inside: np.ndarray | None = None,
) -> np.ndarray:
    """``source`` on ``grid``; with ``inside``, only the file's tiles under those pixels
    are decoded (the other pixels may stay 0)."""
    out = np.zeros(grid.shape, dtype=np.uint16)
    if grid.height == 0 or grid.width == 0:
        return out
    if source.crs == grid.crs:
        factor = grid.resolution / source.resolution
        if _is_int(factor) and round(factor) >= 1 and grid.transform.e == -grid.transform.a:
            if _decimated_read(source, grid, round(factor), out, resampling, reduced_levels,
                               inside):  # fmt: skip
                return out
        elif _is_int(1 / factor) and resampling == Resampling.nearest:
            if _upsampled_read(source, grid, int(round(1 / factor)), out, inside):
                return out
    if resampling == Resampling.nearest:
        _nearest_read(source, grid, out, inside)
    elif inside is None:
        _warped_read(source, grid, resampling, out)
    else:
        _warped_parts(source, grid, resampling, inside, out)
    return out


def _warped_parts(
    source: Source, grid: Grid, resampling: Resampling, inside: np.ndarray, out: np.ndarray
) -> None:
    """Warp only the parts of ``grid`` (cut along the file's tiles, approximately) that
    hold ``inside`` pixels."""
    with _open(source.path) as dataset:
        block = dataset.block_shapes[0]
    for r0, r1, c0, c1 in tile_parts(source, grid, block):
        if inside[r0:r1, c0:c1].any():
            _warped_read(source, grid.window(r0, r1, c0, c1), resampling, out[r0:r1, c0:c1])


def _tiles_under(
    mask: np.ndarray,
    rows: tuple[np.ndarray, np.ndarray],
    cols: tuple[np.ndarray, np.ndarray],
    block: tuple[int, int],
) -> set[tuple[int, int]]:
    """The file's tiles (``(row, column)`` of its ``block``-sized tiles) that the ``True``
    pixels of ``mask`` read: ``rows`` gives the first and last file row each row of
    ``mask`` reads, ``cols`` the same for its columns.

    Examples
    --------
    >>> mask = np.array([[False, True], [False, False]])
    >>> first, last = np.array([0, 4]), np.array([3, 7])  # 4 file pixels per mask pixel
    >>> sorted(_tiles_under(mask, (first, last), (first, last), (4, 4)))
    [(0, 1)]
    """
    tile_rows = _spans(*rows, block[0])
    tile_cols = _spans(*cols, block[1])
    found = set()
    for tile_row, r0, r1 in tile_rows:
        line = np.asarray(mask[r0:r1].any(axis=0))  # one pass over the mask in all
        for tile_col, c0, c1 in tile_cols:
            if line[c0:c1].any():
                found.add((tile_row, tile_col))
    return found


def _spans(first: np.ndarray, last: np.ndarray, size: int) -> list[tuple[int, int, int]]:
    """``(tile, start, stop)``: the mask rows ``start:stop`` that read file tile ``tile``
    (``first``/``last``: the first and last file row each mask row reads, increasing)."""
    first_tile, last_tile = first // size, last // size
    found = []
    for tile in range(int(first_tile[0]), int(last_tile[-1]) + 1):
        start = int(np.searchsorted(last_tile, tile, "left"))
        stop = int(np.searchsorted(first_tile, tile, "right"))
        if stop > start:
            found.append((tile, start, stop))
    return found


def tile_parts(
    source: Source, grid: Grid, block: tuple[int, int]
) -> list[tuple[int, int, int, int]]:
    """``(row0, row1, col0, col1)`` parts of ``grid`` cut along the source's tile edges.

    ``block`` is the file's internal tile ``(rows, cols)`` in source pixels. When the
    source shares the grid's CRS its tile edges are mapped onto the grid; otherwise
    (a warped source) the grid is cut into blocks of the same ground size from its
    corner, an approximation of the tiles a warped window decodes.

    Examples
    --------
    >>> from affine import Affine
    >>> src = Source("b.jp2", "EPSG:32634", Affine(10, 0, 0, 0, -10, 0), (4000, 4000))
    >>> grid = Grid("EPSG:32634", Affine(10, 0, 9000, 0, -10, -1000), (300, 2000))
    >>> tile_parts(src, grid, (1024, 1024))  # the grid starts 900 px into the first tile
    [(0, 300, 0, 124), (0, 300, 124, 1148), (0, 300, 1148, 2000)]
    """
    same_crs = source.crs == grid.crs
    origin = (
        (source.transform.c, source.transform.f)
        if same_crs
        else (grid.transform.c, grid.transform.f)
    )

    def cuts(offset: float, length: int, step: float) -> list[int]:
        first = (-offset) % step
        edges = {round(first + k * step) for k in range(int(length / step) + 2)}
        return sorted({0, length} | {e for e in edges if 0 < e < length})

    rows = cuts(
        (origin[1] - grid.transform.f) / grid.resolution,
        grid.height,
        block[0] * abs(source.transform.e) / grid.resolution,
    )
    cols = cuts(
        (grid.transform.c - origin[0]) / grid.resolution,
        grid.width,
        block[1] * source.transform.a / grid.resolution,
    )
    return [
        (r0, r1, c0, c1)
        for r0, r1 in zip(rows[:-1], rows[1:], strict=True)
        for c0, c1 in zip(cols[:-1], cols[1:], strict=True)
    ]


def _signature(path: str) -> tuple[int, int]:
    local = path
    if local.startswith("/vsizip/"):
        local = local[len("/vsizip/") :].lstrip("{")
        local = local[: local.lower().find(".zip") + 4] if ".zip" in local.lower() else local
    try:
        stat = os.stat(local)
    except OSError:
        return (-1, -1)
    return (stat.st_size, stat.st_mtime_ns)


@contextmanager
def _open(path: str, **options: object) -> Iterator[rasterio.io.DatasetReader]:
    """A thread-local cached read handle of ``path`` (see ``MAX_OPEN_PER_THREAD``)."""
    cache: OrderedDict = getattr(_LOCAL, "datasets", None) or OrderedDict()
    _LOCAL.datasets = cache
    key = (path, tuple(sorted(options.items())), _signature(path))
    dataset = cache.pop(key, None)
    if dataset is None or dataset.closed:
        if path.startswith("/vsizip/") and not is_remote_path(path):  # remote: REMOTE_GDAL
            with rasterio.Env(**ZIP_CACHE):
                dataset = rasterio.open(path, sharing=False, **options)
        else:
            dataset = rasterio.open(path, sharing=False, **options)
    try:
        yield dataset
    except BaseException:
        dataset.close()  # a failed read may leave the handle in a bad state
        raise
    cache[key] = dataset
    while len(cache) > MAX_OPEN_PER_THREAD:
        _, oldest = cache.popitem(last=False)
        oldest.close()


#: Decoded JPEG 2000 tiles of local files, shared by the threads of this process.
TILE_CACHE = TileCache()
#: Reads of selected tiles of other files (remote, or not JPEG 2000): nothing is kept.
_PASS_THROUGH = TileCache(max_bytes=0)

#: Files tiled in blocks larger than this (pixels) are read directly: a file stored as
#: one huge tile would fill the cache with a single entry.
_MAX_CACHED_BLOCK = 2048 * 2048


def _window(
    dataset: rasterio.io.DatasetReader,
    path: str,
    options: Mapping[str, object],
    window: Window,
    only: set[tuple[int, int]] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``dataset.read(1, window=window)``, through :data:`TILE_CACHE` for local JPEG 2000
    files, so that tiles shared by neighbouring chunks are decoded once.

    ``only``: the file's tiles (``(row, column)`` of its blocks) to decode; the pixels of
    the others are 0, or as they were in ``out``, an array of the window's shape to
    write into (returned).
    """
    block = dataset.block_shapes[0]
    if window.width <= 0 or window.height <= 0:
        return dataset.read(1, window=window) if out is None else out
    signature = _signature(path)
    cached = (
        dataset.driver == "JP2OpenJPEG"
        and signature != (-1, -1)  # remote, or not a file: no way to tell it was replaced
        and block[0] * block[1] <= _MAX_CACHED_BLOCK
    )
    if not cached and only is None:
        data = dataset.read(1, window=window)
        if out is None:
            return data
        out[...] = data
        return out
    cache = TILE_CACHE if cached else _PASS_THROUGH
    file = (path, tuple(sorted(options.items())), signature)
    return cache.read(
        file,
        (dataset.height, dataset.width),
        block,
        window,
        lambda w: dataset.read(1, window=w),
        only,
        dataset.dtypes[0],
        out,
    )


def _is_int(value: float) -> bool:
    return abs(value - round(value)) < _EPS


def _decimated_read(
    source: Source,
    grid: Grid,
    factor: int,
    out: np.ndarray,
    resampling: Resampling,
    reduced_levels: bool,
    inside: np.ndarray | None = None,
) -> bool:
    """Cases 1 and 2: output pixels are ``factor`` source pixels wide and aligned."""
    col = (grid.transform.c - source.transform.c) / source.resolution
    row = (source.transform.f - grid.transform.f) / source.resolution
    if not (_is_int(col) and _is_int(row)):
        return False
    col, row = round(col), round(row)
    # the part of the output covered by the source, in output pixels
    out_col0 = max(0, math.ceil(-col / factor))
    out_row0 = max(0, math.ceil(-row / factor))
    out_col1 = min(grid.width, (source.shape[1] - col) // factor)
    out_row1 = min(grid.height, (source.shape[0] - row) // factor)
    if out_col1 <= out_col0 or out_row1 <= out_row0:
        return True  # nothing of the source falls inside: all no data
    first_col, first_row = col + out_col0 * factor, row + out_row0 * factor
    level = _reduced_level(source, factor, first_col, first_row) if reduced_levels else 0
    scale = 1 << level
    step = factor // scale  # decimation still needed on top of the level
    if level:  # that level only: GDAL must not pick a coarser one for the decimation
        open_options = {"OVERVIEW_LEVEL": f"{level - 1}only"}
    elif step > 1 and resampling not in (Resampling.nearest, Resampling.average):
        # a down-sampled read of the full-resolution dataset would let GDAL substitute a
        # reduced level silently: refuse its levels
        open_options = {"OVERVIEW_LEVEL": "NONE"}
    else:
        open_options = {}
    window = Window(
        first_col // scale,
        first_row // scale,
        (out_col1 - out_col0) * step,
        (out_row1 - out_row0) * step,
    )
    with _open(source.path, **open_options) as dataset:
        if not level:
            _check_size(dataset, source)
        if level and (dataset.width, dataset.height) != (
            math.ceil(source.shape[1] / scale),
            math.ceil(source.shape[0] / scale),
        ):  # not the level the file should have: read the full resolution instead
            return _decimated_read(source, grid, factor, out, resampling, False, inside)
        only = None
        if inside is not None:
            first_r = window.row_off + np.arange(out_row1 - out_row0) * step
            first_c = window.col_off + np.arange(out_col1 - out_col0) * step
            only = _tiles_under(
                inside[out_row0:out_row1, out_col0:out_col1],
                (first_r, first_r + step - 1),
                (first_c, first_c + step - 1),
                dataset.block_shapes[0],
            )
        if step > 1 and resampling == Resampling.average:
            # GDAL's resampled read costs ~4x a plain read of the same window (measured on
            # 1024 x 1024 windows of a full-size band): average the blocks in numpy
            data = block_mean(_window(dataset, source.path, open_options, window, only), step)
        elif step > 1 and resampling != Resampling.nearest:
            data = dataset.read(
                1,
                window=window,
                out_shape=(out_row1 - out_row0, out_col1 - out_col0),
                resampling=resampling,
            )
        elif step == 1:  # straight into `out` (its pixels outside `only`'s tiles stay 0)
            _window(dataset, source.path, open_options, window, only,
                    out=out[out_row0:out_row1, out_col0:out_col1])  # fmt: skip
            return True
        else:  # nearest: the pixel at the centre of each block, as GDAL picks it
            data = _window(dataset, source.path, open_options, window, only)
            data = data[step // 2 :: step, step // 2 :: step]
    out[out_row0:out_row1, out_col0:out_col1] = data
    return True


def block_mean(data: np.ndarray, step: int) -> np.ndarray:
    """Mean of each ``step x step`` block of an integer array, rounded half up as GDAL does.

    Examples
    --------
    >>> block_mean(np.array([[1, 2, 5, 5], [2, 2, 5, 6]], dtype=np.uint16), 2)
    array([[2, 5]], dtype=uint16)
    """
    rows, cols = data.shape[0] // step, data.shape[1] // step
    blocks = data[: rows * step, : cols * step].reshape(rows, step, cols, step)
    total = blocks.sum(axis=(1, 3), dtype=np.uint64)
    count = step * step
    return ((total + count // 2) // count).astype(data.dtype)


def _reduced_level(source: Source, factor: int, first_col: int, first_row: int) -> int:
    """The JP2 level ``L`` (1/2**L) to read a ``factor`` down-sampling from; 0: full resolution.

    The largest power of two dividing ``factor`` on whose pixels the window starts, and
    that the file exposes: small files have fewer levels than they were encoded with
    (GDAL exposes none below ~128 pixels), and an absent level cannot be opened.
    """
    level = int(math.log2(factor & -factor)) if factor > 1 else 0
    while level and (first_col % (1 << level) or first_row % (1 << level)):
        level -= 1  # the window must start on a pixel of the reduced level
    if not level:
        return 0
    with _open(source.path) as dataset:
        available = set(dataset.overviews(1))
    while level and (1 << level) not in available:
        level -= 1
    return level


def _upsampled_read(
    source: Source, grid: Grid, factor: int, out: np.ndarray, inside: np.ndarray | None = None
) -> bool:
    """Integer up-sampling with nearest (e.g. a 20 m band on a 10 m grid): repeat pixels."""
    col = (grid.transform.c - source.transform.c) / grid.resolution
    row = (source.transform.f - grid.transform.f) / grid.resolution
    if not (_is_int(col) and _is_int(row)):
        return False
    col, row = round(col), round(row)  # output grid origin in output pixels of the source grid
    src_cols, src_rows = source.shape[1] * factor, source.shape[0] * factor
    out_col0, out_row0 = max(0, -col), max(0, -row)
    out_col1, out_row1 = min(grid.width, src_cols - col), min(grid.height, src_rows - row)
    if out_col1 <= out_col0 or out_row1 <= out_row0:
        return True
    fine_col0, fine_row0 = col + out_col0, row + out_row0
    fine_col1, fine_row1 = col + out_col1, row + out_row1
    src_col0, src_row0 = fine_col0 // factor, fine_row0 // factor
    src_col1, src_row1 = -(-fine_col1 // factor), -(-fine_row1 // factor)
    with _open(source.path) as dataset:
        _check_size(dataset, source)
        window = Window(src_col0, src_row0, src_col1 - src_col0, src_row1 - src_row0)
        only = None
        if inside is not None:
            file_rows = np.arange(fine_row0, fine_row1) // factor
            file_cols = np.arange(fine_col0, fine_col1) // factor
            only = _tiles_under(
                inside[out_row0:out_row1, out_col0:out_col1],
                (file_rows, file_rows),
                (file_cols, file_cols),
                dataset.block_shapes[0],
            )
        data = _window(dataset, source.path, {}, window, only)
    fine = np.repeat(np.repeat(data, factor, axis=0), factor, axis=1)
    r0, c0 = fine_row0 - src_row0 * factor, fine_col0 - src_col0 * factor
    out[out_row0:out_row1, out_col0:out_col1] = fine[
        r0 : r0 + (out_row1 - out_row0), c0 : c0 + (out_col1 - out_col0)
    ]
    return True


def _nearest_read(
    source: Source, grid: Grid, out: np.ndarray, inside: np.ndarray | None = None
) -> None:
    """Case 3 with ``nearest``: each output pixel takes the source pixel holding its centre.

    The source window under the grid is decoded once and gathered with numpy at the
    positions :func:`sentinel_cube._warp.source_pixels` gives (exact to ~1e-6 pixel,
    independent of the chunking); GDAL's warper with a transformation that precise costs
    more than the decode itself. The positions are computed once for all the bands of a
    product that share a grid (the 10 m bands of a chunk, say).
    """
    found = _gather_plan(grid, source.crs, source.transform, source.shape)
    if found is None:
        return
    window, where, index = found
    with _open(source.path) as dataset:
        _check_size(dataset, source)
        only = None
        if inside is not None:  # decode only the tiles under the pixels that matter
            block = dataset.block_shapes[0]
            tiles_across = -(-source.shape[1] // block[1])
            key = (grid, source.crs, source.transform, source.shape, block)
            pixels, starts, tiles = _kept(
                key, lambda: _pixels_by_tile(window, where, index, block, tiles_across)
            )
            used = tiles[np.logical_or.reduceat(inside.ravel()[pixels], starts)]
            if not used.size:
                return
            only = {divmod(int(tile), tiles_across) for tile in used}
        data = _window(dataset, source.path, {}, window, only)
    if where is None and data.dtype == out.dtype:
        data.ravel().take(index, out=out.ravel())
    elif where is None:  # a class band (uint8)
        out.ravel()[:] = data.ravel().take(index)
    else:
        out.ravel()[where] = data.ravel().take(index)


#: Gather plans kept per process, in bytes: the same chunk of every date (and the other
#: bands of a product) reuses its plan. At 10 dates, planning every date again was ~9 %
#: of a reprojected ingest's read time. A plan holds 8 or 9 bytes per output pixel.
PLAN_CACHE_BYTES = 256 * 2**20
GatherPlan = tuple[Window, np.ndarray | None, np.ndarray]


def _nbytes(value: object) -> int:
    """Bytes of the arrays in a kept value (at least 1)."""
    items = value if isinstance(value, tuple) else (value,)
    return max(1, sum(item.nbytes for item in items if isinstance(item, np.ndarray)))


# cachetools' byte-bounded LRU; it is not thread-safe by itself, hence the lock
_PLANS: cachetools.LRUCache[tuple[object, ...], object] = cachetools.LRUCache(
    PLAN_CACHE_BYTES, getsizeof=_nbytes
)
_PLANS_LOCK = threading.Lock()


def _kept(key: tuple[object, ...], compute: Callable[[], Any]) -> Any:
    """``compute()``, kept in :data:`_PLANS` under ``key`` (computed again once dropped;
    two threads may both compute it, the result is the same)."""
    with _PLANS_LOCK:
        if key in _PLANS:
            return _PLANS[key]
    value = compute()
    for item in value if isinstance(value, tuple) else (value,):
        if isinstance(item, np.ndarray):
            item.flags.writeable = False
    with _PLANS_LOCK, suppress(ValueError):  # larger than the whole budget: not kept
        _PLANS[key] = value
    return value


def drop_caches() -> None:
    """Forget this process's decoded tiles, gather plans and lattice nodes, so that the
    next read starts cold (``sentinel-cube bench`` runs each ingest so)."""
    TILE_CACHE.clear()
    with _PLANS_LOCK:
        _PLANS.clear()
    forget_nodes()


def _gather_plan(grid: Grid, crs: str, transform: Any, shape: tuple[int, int]) -> GatherPlan | None:
    """:func:`_plan_gather`, kept in :data:`_PLANS`."""
    key = (grid, crs, transform, shape)
    plan: GatherPlan | None = _kept(key, lambda: _plan_gather(grid, crs, transform, shape))
    return plan


def _pixels_by_tile(
    window: Window,
    where: np.ndarray | None,
    index: np.ndarray,
    block: tuple[int, int],
    tiles_across: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gathered output pixels grouped by the file tile they come from.

    Returns ``(pixels, starts, tiles)``: flat output indices sorted by tile, where each
    tile's run of them starts, and each run's tile (``tile row * tiles_across + tile
    column``). ``index``: flat source indices in ``window`` of the pixels ``where``
    marks (None: all). The tiles under a mask of output pixels are then one gather
    and one ``logical_or.reduceat``: half the time of counting the masked pixels' tiles.

    Examples
    --------
    >>> window = Window(0, 0, 4, 1)  # source pixels 0-3 of a row; tiles 2 px wide
    >>> pixels, starts, tiles = _pixels_by_tile(window, None, np.array([3, 0, 2]), (1, 2), 2)
    >>> pixels.tolist(), starts.tolist(), tiles.tolist()
    ([1, 0, 2], [0, 1], [0, 1])
    """
    rows, cols = np.divmod(index, int(window.width))
    rows += int(window.row_off)
    cols += int(window.col_off)
    rows //= block[0]
    cols //= block[1]
    rows *= tiles_across
    rows += cols
    order = np.argsort(rows, kind="stable")
    tile = rows[order]
    pixels = order if where is None else np.flatnonzero(where)[order]
    starts = np.flatnonzero(np.concatenate(([True], tile[1:] != tile[:-1])))
    return pixels, starts, tile[starts]


def _plan_gather(grid: Grid, crs: str, transform: Any, shape: tuple[int, int]) -> GatherPlan | None:
    """The source window under ``grid``, the mask of the output pixels inside the source
    (flat; None: all of them) and, for each, the flat index of its source pixel in that
    window. A mask, not indices: 1 byte per pixel, and numpy assigns through it faster."""
    rows, cols = source_pixels(grid, crs, transform)
    np.floor(rows, out=rows)
    np.floor(cols, out=cols)
    height, width = shape
    r0, r1, c0, c1 = rows.min(), rows.max(), cols.min(), cols.max()
    if r1 < 0 or c1 < 0 or r0 >= height or c0 >= width:
        return None
    if r0 >= 0 and c0 >= 0 and r1 < height and c1 < width:  # all inside (most chunks)
        inside = None
        row, col = rows.ravel(), cols.ravel()
    else:
        keep = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        inside = keep.ravel()
        row, col = rows.ravel()[inside], cols.ravel()[inside]
        r0, r1, c0, c1 = row.min(), row.max(), col.min(), col.max()
    window = Window(int(c0), int(r0), int(c1 - c0) + 1, int(r1 - r0) + 1)
    # the flat index in the window, exact in float64 (band files are far below 2**53
    # pixels), as numpy's own index type: take() converts any other on every call
    row -= r0
    row *= window.width
    col -= c0
    row += col
    return window, inside, row.astype(np.intp)


def _warped_read(source: Source, grid: Grid, resampling: Resampling, out: np.ndarray) -> None:
    """Case 3: GDAL's warper onto the output grid (another CRS or a non-aligned grid)."""
    with _open(source.path) as dataset:
        _check_size(dataset, source)
    with (
        _open(source.path) as dataset,
        WarpedVRT(
            dataset,
            crs=grid.crs,
            transform=grid.transform,
            width=grid.width,
            height=grid.height,
            resampling=resampling,
            src_crs=source.crs,
            src_transform=source.transform,
            src_nodata=0,
            nodata=0,
            tolerance=WARP_TOLERANCE,
        ) as warped,
    ):
        out[:] = warped.read(1)
