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
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr

from ._store_lock import StoreLock, _alive

__all__ = ["COORD_CHUNK", "FORMAT_VERSION", "META_GROUP", "TIME_ENCODING"]

META_GROUP = "_sentinel_cube"
FORMAT_VERSION = 2
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


def empty_dataset(cube: xr.DataArray, name: str, block: tuple[int, int]) -> xr.Dataset:
    """The cube as a Dataset whose data is a never-computed placeholder."""
    placeholder = da.zeros(cube.shape, dtype=cube.dtype, chunks=(1, 1, *block))
    array = cube.copy(data=placeholder)
    array.attrs = {k: v for k, v in cube.attrs.items() if k != "_FillValue"}
    array.encoding = {}
    dataset = array.to_dataset(name=name)
    dataset[name].encoding["_FillValue"] = np.nan if cube.dtype.kind == "f" else 0
    for coord in dataset.coords.values():
        coord.encoding = {}
    return dataset


def staging_name(path: Path, purpose: str) -> Path:
    host = socket.gethostname().replace(".", "_")
    return path.with_name(f".{path.name}.{host}.{os.getpid()}.{uuid.uuid4().hex[:8]}.{purpose}")


def build(path: Path, cube: xr.DataArray, name: str, encoding: dict[str, Any]) -> Path:
    """Write an empty store (metadata, coordinates, empty ledger) in a hidden sibling folder."""
    staging = staging_name(path, "creating")
    shards = encoding.get("shards")
    block = (shards[2], shards[3]) if shards else encoding["chunks"][2:]
    template = empty_dataset(cube, name, block)
    encodings: dict[str, Any] = {name: encoding, "time": dict(TIME_ENCODING)}
    for coord, values in template.coords.items():
        if values.dims == ("time",):
            encodings.setdefault(str(coord), {})["chunks"] = (COORD_CHUNK,)
    template.to_zarr(staging, mode="w-", compute=False, zarr_format=3, consolidated=False,
                     encoding=encodings)  # fmt: skip
    zarr.open_group(staging, mode="r+").create_group(
        META_GROUP,
        attributes={"version": FORMAT_VERSION, "variable": name, "steps": []},
    )
    return staging


def create(path: Path, cube: xr.DataArray, name: str, encoding: dict[str, Any]) -> None:
    staging = build(path, cube, name, encoding)
    try:
        os.rename(staging, path)  # atomic; replaces an empty folder, fails on a full one
    except OSError:
        # another writer created the store first: append to it (its grid is checked)
        shutil.rmtree(staging, ignore_errors=True)
        if state(path) != "ours":
            raise


def replace(
    path: Path, cube: xr.DataArray, name: str, encoding: dict[str, Any], lock_timeout: float
) -> None:
    """``mode="w"``: swap a new empty store in, under the old store's lock."""
    staging = build(path, cube, name, encoding)
    trash = staging_name(path, "replaced")
    try:
        with StoreLock(path / META_GROUP, lock_timeout, label=str(path)):
            os.rename(path, trash)
            os.rename(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(trash, ignore_errors=True)


def clean_staging(path: Path) -> None:
    """Remove the hidden folders of creations on this host whose process died."""
    if not path.parent.is_dir():
        return
    host = socket.gethostname().replace(".", "_")
    for entry in path.parent.glob(f".{path.name}.*"):
        parts = entry.name[len(path.name) + 2 :].split(".")
        if len(parts) != 4 or parts[3] not in ("creating", "replaced") or parts[0] != host:
            continue
        if parts[1].isdigit() and not _alive(int(parts[1])):
            shutil.rmtree(entry, ignore_errors=True)


def state(path: Path) -> str:
    """``missing``, ``ours``, ``interrupted`` (ours, no ledger), ``foreign`` or ``folder``."""
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return "missing"
    if not (path / "zarr.json").exists():
        return "folder"
    try:
        group = zarr.open_group(path, mode="r")
    except Exception:  # unreadable root metadata: not ours to touch
        return "foreign"
    with contextlib.suppress(Exception):
        if "variable" in dict(group[META_GROUP].attrs):
            return "ours"
    with contextlib.suppress(Exception):
        for _, array in group.arrays():
            # our cube without a ledger and without a single chunk written: a creation by
            # an earlier version, killed before its ledger (anything holding data, e.g. a
            # user's own xarray copy of a cube, is someone else's and never touched)
            chunks = path / array.path / "c"
            if "sentinel_cube_units" in array.attrs and not (
                chunks.is_dir() and any(chunks.iterdir())
            ):
                return "interrupted"
    return "foreign"


def read_ledger(path: Path) -> dict[str, Any]:
    """The ledger: ``variable``, ``version`` and the committed ``steps`` as (slot, ns) pairs."""
    attrs: dict[str, Any] = dict(zarr.open_group(path, mode="r", path=META_GROUP).attrs)
    attrs.setdefault("version", 1)
    if "steps" not in attrs:
        # format 1 listed committed slots only; its times were encoded by xarray with
        # units chosen at the first write, so decode them as xarray does
        times = xr.open_zarr(path, consolidated=False, zarr_format=3)["time"].values
        encoded = nanoseconds(times)
        attrs["steps"] = [[int(s), int(encoded[s])] for s in attrs.get("committed", [])]
    attrs["steps"] = [(int(s), int(t)) for s, t in attrs["steps"]]
    return attrs


def commit(path: Path, slot: int, time_ns: int) -> None:
    """Add a step to the ledger: one atomic write of the ledger group's metadata."""
    group = zarr.open_group(path, mode="r+", path=META_GROUP)
    steps = sorted({*(tuple(s) for s in read_ledger(path)["steps"]), (slot, time_ns)})
    group.attrs.update({"version": FORMAT_VERSION, "steps": [list(s) for s in steps]})


def time_arrays(path: Path, mode: str = "r+") -> list[zarr.Array]:
    """The arrays along ``time``: the cube and its per-time coordinates."""
    group = zarr.open_group(path, mode=mode)  # type: ignore[arg-type]
    return [array for _, array in group.arrays() if dims(array)[:1] == ("time",)]


def dims(array: zarr.Array) -> tuple[str | None, ...]:
    return tuple(getattr(array.metadata, "dimension_names", None) or ())


def even_time_lengths(path: Path) -> None:
    """Finish a growth a kill interrupted: every time array to the longest length."""
    arrays = time_arrays(path)
    longest = max(a.shape[0] for a in arrays)
    for array in arrays:
        if array.shape[0] != longest:
            array.resize((longest, *array.shape[1:]))


def free_slots(path: Path, ledger: dict[str, Any], count: int) -> list[int]:
    """The first ``count`` slots the ledger does not list, growing the time arrays if needed."""
    arrays = time_arrays(path)
    length = arrays[0].shape[0]
    taken = {slot for slot, _ in ledger["steps"]}
    free = [s for s in range(length) if s not in taken][:count]
    grow = count - len(free)
    if grow > 0:
        free += list(range(length, length + grow))
        for array in arrays:
            array.resize((length + grow, *array.shape[1:]))
    return free


def remove_partial_files(path: Path, name: str, slots: Iterable[int]) -> None:
    """Delete temporary files of writes a kill interrupted, where they can be.

    Zarr's local store writes ``KEY.<hex>.partial`` and renames it to ``KEY``: a
    kill in between leaves the temporary file. They can only be in metadata
    folders and in the chunk folders of uncommitted slots (about to be rewritten).
    """
    found = [*path.glob("*.partial"), *(path / name).glob("*.partial")]
    for folder in path.iterdir():  # the coordinates and the ledger: a few small files
        if folder.is_dir() and folder.name != name:
            found += folder.rglob("*.partial")
    for slot in slots:
        found += (path / name / "c" / str(slot)).rglob("*.partial")
    for partial in found:
        partial.unlink(missing_ok=True)


def write_coords(path: Path, cube: xr.DataArray, t: int, slot: int, name: str) -> None:
    """Write the per-time coordinates of step ``t`` into ``slot``, encoded as xarray would."""
    stored = {array.path: array for array in time_arrays(path)}
    for coord, values in cube.coords.items():
        if values.dims != ("time",) or coord not in stored:
            continue
        if coord == "time":
            encoded: Any = nanoseconds(values.values[t : t + 1])
        else:
            encoded = xr.conventions.encode_cf_variable(values.variable[t : t + 1]).values
        stored[str(coord)][slot : slot + 1] = encoded


def open_dataset(path: Path, chunks: Any, variable: str) -> xr.Dataset:
    """The store as a Dataset; time arrays of unequal length (a growth cut short) are cut."""
    lengths = {a.path: a.shape[0] for a in time_arrays(path, "r")}
    if len(set(lengths.values())) <= 1:
        return xr.open_zarr(path, consolidated=False, zarr_format=3, chunks=chunks)
    common = min(lengths.values())

    def alone(keep: str) -> xr.Dataset:  # xarray refuses unequal lengths in one Dataset
        others = [v for v in lengths if v != keep]
        one = xr.open_zarr(path, consolidated=False, zarr_format=3, chunks=chunks,
                           drop_variables=others)  # fmt: skip
        return one.isel(time=slice(0, common))

    dataset = alone(variable)
    extra = {v: alone(v)[v].variable for v in lengths if v != variable}
    return dataset.assign_coords(extra)


def stored_chunks(path: Path, name: str) -> tuple[int, ...]:
    array = zarr.open_array(path, path=name, mode="r")
    return tuple(array.chunks)
