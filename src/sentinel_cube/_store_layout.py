"""How a cube store is laid out on disk: atomic creation, the ledger, time slots.

The store is an xarray-compatible Zarr v3 group plus a ``_sentinel_cube`` sub-group
whose attributes are the *ledger*: the committed steps as ``[slot, time in ns]``
pairs. Everything here runs under the store's writer lock except reading (see
:mod:`sentinel_cube.store` for the guarantees this layout gives).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr
from xarray.coding.strings import create_vlen_dtype

from ._store_location import META_GROUP, StoreLocation
from ._store_lock import StoreLock, _alive
from .exceptions import SentinelCubeError

__all__ = ["COORD_CHUNK", "FORMAT_VERSION", "META_GROUP", "TIME_ENCODING"]

FORMAT_VERSION = 2
#: Root attribute of every store: tells an unfinished creation from someone else's data.
MARKER = "sentinel_cube_store"
#: The time encoding of every store, fixed at creation (CF units; exact for any time).
TIME_ENCODING = {
    "units": "nanoseconds since 1970-01-01",
    "calendar": "proleptic_gregorian",
    "dtype": "int64",
}
#: Chunk length of the 1-D per-time coordinates: few files, small rewrites per step.
COORD_CHUNK = 4096


def nanoseconds(times: Any) -> np.ndarray:
    """Times as int64 nanoseconds since 1970-01-01: how the store encodes them."""
    return np.asarray(times, dtype="datetime64[ns]").astype(np.int64)


def empty_dataset(cube: xr.DataArray, name: str) -> xr.Dataset:
    """The cube with no time step, as a Dataset: what :func:`build` writes.

    Steps are added by growing the time arrays (:func:`free_slots`), the same way an
    append adds them, so the empty store holds no pixel and writing it needs no dask
    graph: xarray's delayed write of a placeholder made dask import ``distributed``
    (~0.1 s before any pixel was read). A per-time coordinate of Python objects keeps
    the type xarray infers from the whole cube (strings, say): with no value left,
    xarray would infer float64.
    """
    empty = cube.isel(time=slice(0, 0))
    array = empty.copy(data=np.empty(empty.shape, dtype=empty.dtype))
    for coord, values in cube.coords.items():
        if values.dims[:1] == ("time",) and values.dtype == object:
            array = array.assign_coords({coord: array[coord].astype(_object_dtype(values))})
    array.attrs = {k: v for k, v in cube.attrs.items() if k != "_FillValue"}
    array.encoding = {}
    dataset = array.to_dataset(name=name)
    dataset[name].encoding["_FillValue"] = np.nan if cube.dtype.kind == "f" else 0
    for coord in dataset.coords.values():
        coord.encoding = {}
    return dataset


def _object_dtype(values: xr.DataArray) -> np.dtype:
    """The dtype xarray writes a coordinate of Python objects as: that of its first
    value that is not missing (variable-length strings for ``str``), float64 when all
    are missing."""
    present = values.values[~pd.isnull(values.values)]
    if not present.size:
        return np.dtype("float64")
    first = present[0]
    if isinstance(first, str | bytes):
        return create_vlen_dtype(type(first))
    return np.asarray(first).dtype


def staging_name(path: Path, purpose: str) -> Path:
    host = socket.gethostname().replace(".", "_")
    return path.with_name(f".{path.name}.{host}.{os.getpid()}.{uuid.uuid4().hex[:8]}.{purpose}")


def build(folder: Path, cube: xr.DataArray, name: str, encoding: dict[str, Any]) -> None:
    """Write an empty store (metadata, the grid's coordinates, no time step, the empty
    ledger) into a new folder."""
    template = empty_dataset(cube, name)
    template.attrs[MARKER] = FORMAT_VERSION
    encodings: dict[str, Any] = {name: encoding, "time": dict(TIME_ENCODING)}
    for coord, values in template.coords.items():
        if values.dims == ("time",):
            encodings.setdefault(str(coord), {})["chunks"] = (COORD_CHUNK,)
    template.to_zarr(folder, mode="w-", zarr_format=3, consolidated=False, encoding=encodings)
    zarr.open_group(folder, mode="r+", zarr_format=3).create_group(
        META_GROUP,
        attributes={"version": FORMAT_VERSION, "variable": name, "steps": []},
    )


def create(
    loc: StoreLocation, cube: xr.DataArray, name: str, encoding: dict[str, Any], lock_timeout: float
) -> None:
    """Create the empty store; if another writer created it first, leave theirs.

    A folder is built under a hidden sibling name and renamed into place (atomic).
    Object storage has no rename: the store is built in place under the writer
    lock, its ledger written last; a store found without one is rebuilt.
    """
    if loc.path is None:
        with StoreLock(loc.lock_file(), lock_timeout, label=loc.label):
            found = state(loc)
            if found in ("missing", "interrupted"):
                if found == "interrupted":
                    loc.remove_all()
                _build_remote(loc, cube, name, encoding)
            elif found != "ours":
                raise SentinelCubeError(
                    f"{loc.label!r} was created by another program meanwhile: write elsewhere"
                )
        return
    path = loc.path
    staging = staging_name(path, "creating")
    build(staging, cube, name, encoding)
    try:
        os.rename(staging, path)  # atomic; replaces an empty folder, fails on a full one
    except OSError:
        # another writer created the store first: append to it (its grid is checked)
        shutil.rmtree(staging, ignore_errors=True)
        if state(loc) != "ours":
            raise


def _build_remote(
    loc: StoreLocation, cube: xr.DataArray, name: str, encoding: dict[str, Any]
) -> None:
    """Build the empty store in a local temporary folder, then upload it, ledger last.

    A few dozen ``PUT``s, where xarray writing to S3 directly makes hundreds of
    requests (it re-reads the group for every variable).
    """
    with tempfile.TemporaryDirectory(prefix="sentinel-cube-") as folder:
        staging = Path(folder) / loc.name
        build(staging, cube, name, encoding)
        loc.upload(staging, last=f"{META_GROUP}/zarr.json")


def replace(
    loc: StoreLocation,
    cube: xr.DataArray,
    name: str,
    encoding: dict[str, Any],
    lock_timeout: float,
) -> None:
    """``mode="w"``: swap a new empty store in, under the old store's lock."""
    if loc.path is None:
        with StoreLock(loc.lock_file(), lock_timeout, label=loc.label):
            loc.remove_all()
            _build_remote(loc, cube, name, encoding)
        return
    path = loc.path
    staging = staging_name(path, "creating")
    trash = staging_name(path, "replaced")
    try:
        build(staging, cube, name, encoding)
        with StoreLock(loc.lock_file(), lock_timeout, label=loc.label):
            os.rename(path, trash)
            os.rename(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(trash, ignore_errors=True)


def clean_staging(loc: StoreLocation) -> None:
    """Remove the hidden folders of creations on this host whose process died."""
    path = loc.path
    if path is None or not path.parent.is_dir():
        return
    host = socket.gethostname().replace(".", "_")
    for entry in path.parent.glob(f".{path.name}.*"):
        parts = entry.name[len(path.name) + 2 :].split(".")
        if len(parts) != 4 or parts[3] not in ("creating", "replaced") or parts[0] != host:
            continue
        if parts[1].isdigit() and not _alive(int(parts[1])):
            shutil.rmtree(entry, ignore_errors=True)


def state(loc: StoreLocation) -> str:
    """``missing``, ``ours``, ``interrupted`` (ours, no ledger), ``foreign`` or ``folder``."""
    if loc.is_empty():
        return "missing"
    if not loc.exists("zarr.json"):
        return "folder"
    try:
        group = loc.group("r")
    except Exception:  # unreadable root metadata: not ours to touch
        return "foreign"
    with contextlib.suppress(Exception):
        if "variable" in dict(group[META_GROUP].attrs):
            return "ours"
    # no ledger: a creation killed before its ledger, if the store is marked as ours and
    # holds not a single chunk of cube data (anything holding data, e.g. a user's own
    # xarray copy of a cube, is someone else's and never touched)
    marked = MARKER in group.attrs
    with contextlib.suppress(Exception):
        for array in loc.arrays():
            marked = marked or "sentinel_cube_units" in array.attrs
            if len(dims(array)) == 4 and loc.has_keys(f"{array.path}/c"):
                return "foreign"
    return "interrupted" if marked else "foreign"


def read_ledger(loc: StoreLocation) -> dict[str, Any]:
    """The ledger: ``variable``, ``version`` and the committed ``steps`` as (slot, ns) pairs."""
    attrs: dict[str, Any] = dict(loc.group("r", META_GROUP).attrs)
    attrs.setdefault("version", 1)
    if "steps" not in attrs:
        # format 1 listed committed slots only; its times were encoded by xarray with
        # units chosen at the first write, so decode them as xarray does
        times = xr.open_zarr(loc.zarr_store(True), consolidated=False, zarr_format=3)["time"]
        times = times.values
        encoded = nanoseconds(times)
        attrs["steps"] = [[int(s), int(encoded[s])] for s in attrs.get("committed", [])]
    attrs["steps"] = [(int(s), int(t)) for s, t in attrs["steps"]]
    return attrs


def commit(loc: StoreLocation, slot: int, time_ns: int) -> None:
    """Add a step to the ledger: one atomic write of the ledger group's metadata."""
    group = loc.group("r+", META_GROUP)
    steps = sorted({*(tuple(s) for s in read_ledger(loc)["steps"]), (slot, time_ns)})
    group.attrs.update({"version": FORMAT_VERSION, "steps": [list(s) for s in steps]})


def time_arrays(loc: StoreLocation, mode: str = "r+") -> list[zarr.Array]:
    """The arrays along ``time``: the cube and its per-time coordinates."""
    return [array for array in loc.arrays(mode) if dims(array)[:1] == ("time",)]


def dims(array: zarr.Array) -> tuple[str | None, ...]:
    return tuple(getattr(array.metadata, "dimension_names", None) or ())


def even_time_lengths(arrays: list[zarr.Array]) -> None:
    """Finish a growth a kill interrupted: every time array to the longest length."""
    longest = max(a.shape[0] for a in arrays)
    for array in arrays:
        if array.shape[0] != longest:
            array.resize((longest, *array.shape[1:]))


def free_slots(arrays: list[zarr.Array], ledger: dict[str, Any], count: int) -> list[int]:
    """The first ``count`` slots the ledger does not list, growing the time arrays if needed."""
    length = arrays[0].shape[0]
    taken = {slot for slot, _ in ledger["steps"]}
    free = [s for s in range(length) if s not in taken][:count]
    grow = count - len(free)
    if grow > 0:
        free += list(range(length, length + grow))
        for array in arrays:
            array.resize((length + grow, *array.shape[1:]))
    return free


def remove_partial_files(loc: StoreLocation, name: str, slots: Iterable[int]) -> None:
    """Delete temporary files of writes a kill interrupted, where they can be.

    Zarr's local store writes ``KEY.<hex>.partial`` and renames it to ``KEY``: a
    kill in between leaves the temporary file. They can only be in metadata
    folders and in the chunk folders of uncommitted slots (about to be rewritten).
    Object stores write each object whole: nothing to remove there.
    """
    path = loc.path
    if path is None:
        return
    found = [*path.glob("*.partial"), *(path / name).glob("*.partial")]
    for folder in path.iterdir():  # the coordinates and the ledger: a few small files
        if folder.is_dir() and folder.name != name:
            found += folder.rglob("*.partial")
    for slot in slots:
        found += (path / name / "c" / str(slot)).rglob("*.partial")
    for partial in found:
        partial.unlink(missing_ok=True)


def write_coords(
    arrays: list[zarr.Array], cube: xr.DataArray, steps: list[int], slots: list[int]
) -> None:
    """Write the per-time coordinates of ``steps`` into ``slots``, encoded as xarray would.

    All at once, before any step's chunks: a slot's coordinates mean nothing until
    the ledger lists it, and one write per coordinate costs far fewer requests on
    object storage than one per step.
    """
    if not steps:
        return
    stored = {array.path: array for array in arrays}
    where = np.asarray(slots)
    for coord, values in cube.coords.items():
        if values.dims[:1] != ("time",) or coord not in stored:
            continue  # (time, band) ones too: a stretch's per-step bounds, say
        if coord == "time":
            encoded: Any = nanoseconds(values.values[steps])
        else:
            encoded = xr.conventions.encode_cf_variable(values.variable[steps]).values
        array = stored[str(coord)]
        array.oindex[(where, *[slice(None)] * (array.ndim - 1))] = encoded


def open_dataset(loc: StoreLocation, chunks: Any, variable: str) -> xr.Dataset:
    """The store as a Dataset; time arrays of unequal length (a growth cut short) are cut."""
    lengths = {a.path: a.shape[0] for a in time_arrays(loc, "r")}
    store = loc.zarr_store(read_only=True)
    if len(set(lengths.values())) <= 1:
        return xr.open_zarr(store, consolidated=False, zarr_format=3, chunks=chunks)
    common = min(lengths.values())

    def alone(keep: str) -> xr.Dataset:  # xarray refuses unequal lengths in one Dataset
        others = [v for v in lengths if v != keep]
        one = xr.open_zarr(store, consolidated=False, zarr_format=3, chunks=chunks,
                           drop_variables=others)  # fmt: skip
        return one.isel(time=slice(0, common))

    dataset = alone(variable)
    extra = {v: alone(v)[v].variable for v in lengths if v != variable}
    return dataset.assign_coords(extra)


def stored_chunks(loc: StoreLocation, name: str) -> tuple[int, ...]:
    array = loc.array(name)
    return tuple(array.chunks)
