"""Where a cube store lives: a local folder or a prefix on S3-compatible object storage.

The store code asks its location a few questions (is it empty, does a key exist, are
there keys under a prefix, how many bytes) and takes from it the Zarr store and the
writer lock's record. What differs between the two kinds, and why:

- **Local folders** are created atomically by renaming a hidden sibling folder into
  place, and Zarr writes each file through a temporary file renamed into place.
- **Object storage** has no rename, but every ``PUT`` is atomic (an object is either
  the old bytes or the new ones) and S3 offers conditional writes. A store there is
  created under the writer lock, its ledger written last, so a kill leaves either a
  complete store or one without a ledger that the next writer rebuilds; the lock
  record is changed only by conditional requests (:class:`~._store_lock.ObjectLockFile`).

A location that travels into a dask graph (it is pickled with the chunk writer)
drops its keys; the worker that unpickles it takes them from its own process
(:meth:`sentinel_cube._cloud.Remote.with_task_credentials`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import zarr
from zarr.storage import FsspecStore, LocalStore

from . import _cloud
from ._store_lock import LOCK_NAME, LockFile, ObjectLockFile
from .exceptions import SentinelCubeError

__all__ = ["StoreLocation"]

META_GROUP = "_sentinel_cube"


class StoreLocation:
    """A cube store's place: ``Path`` for a folder, or an ``s3://bucket/prefix`` URL.

    Parameters
    ----------
    store
        A local path or an ``s3://`` URL.
    storage_options
        For ``s3://`` stores: keys, endpoint... (see :func:`sentinel_cube._cloud.settings`);
        the environment is used where they are not given.

    Examples
    --------
    >>> StoreLocation("cubes/budapest.zarr").label
    'cubes/budapest.zarr'
    >>> StoreLocation("s3://bucket/cubes/budapest.zarr", {"key": "K", "secret": "S"})
    StoreLocation('s3://bucket/cubes/budapest.zarr')
    """

    def __init__(
        self, store: str | os.PathLike[str], storage_options: dict[str, Any] | None = None
    ) -> None:
        text = store if isinstance(store, str) else os.fspath(store)
        self.url: str | None = None
        self.path: Path | None = None
        self.remote: _cloud.Remote | None = None
        self._fs: Any = None
        if _cloud.is_remote(text):
            if not text.lower().startswith("s3://"):
                raise SentinelCubeError(
                    f"cannot write a store to {_cloud.redact(text)!r}: HTTP is read-only; "
                    "use a local path or an s3:// URL"
                )
            self.url = "s3://" + text[len("s3://") :].strip("/")
            if "/" not in self.url[len("s3://") :]:
                raise SentinelCubeError(
                    f"store {self.url!r} names a bucket only: give a prefix, e.g. "
                    f"{self.url}/cube.zarr"
                )
            self.remote = _cloud.settings(storage_options, url=self.url)
        else:
            if storage_options:
                raise SentinelCubeError(
                    f"storage_options was given for the local store {text!r}: it applies "
                    "to s3:// stores only"
                )
            self.path = Path(text)

    # ------------------------------------------------------------------ identity

    @property
    def label(self) -> str:
        """The store as shown in messages: its path, or its URL without secrets."""
        return _cloud.redact(self.url) if self.url else str(self.path)

    @property
    def name(self) -> str:
        """The last component (``budapest.zarr``)."""
        return self.label.rstrip("/").rsplit("/", 1)[-1]

    @property
    def is_remote(self) -> bool:
        return self.url is not None

    def __repr__(self) -> str:
        return f"StoreLocation({self.label!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fs"] = None
        if self.remote is not None:
            state["remote"] = self.remote.without_secrets()
        return state

    # ------------------------------------------------------------------ access

    def _storage_options(self) -> dict[str, Any]:
        assert self.remote is not None
        options = self.remote.with_task_credentials().storage_options()
        # never answer from a cached listing: other writers (and the upload of a new
        # store through another file system object) change the store meanwhile
        options["use_listings_cache"] = False
        return options

    def fs(self) -> Any:
        """The s3fs file system (synchronous), made once per location and process."""
        if self._fs is None:
            import s3fs

            self._fs = s3fs.S3FileSystem(**self._storage_options())
            # s3fs repeats a failing call 5 times on top of botocore's own retries (see
            # _cloud): twice is enough, a throttled store then fails in seconds, not minutes
            self._fs.retries = 2
        return self._fs

    def secrets(self) -> tuple[str, ...]:
        """The secret strings of this location (to keep them out of messages)."""
        return self.remote.with_task_credentials().secrets() if self.remote else ()

    def key(self, relative: str = "") -> str:
        """``bucket/prefix/relative`` (remote) for s3fs calls."""
        assert self.url is not None
        base = self.url[len("s3://") :]
        return f"{base}/{relative}" if relative else base

    def zarr_store(self, read_only: bool = False) -> Any:
        """The Zarr store object for this location."""
        if self.path is not None:
            return LocalStore(self.path, read_only=read_only)
        assert self.url is not None
        return FsspecStore.from_url(
            self.url, storage_options=self._storage_options(), read_only=read_only
        )

    def group(self, mode: str = "r", path: str | None = None) -> zarr.Group:
        # zarr_format=3: no probing for version 2 metadata, a request per probe on S3
        store = self.zarr_store(read_only=mode == "r")
        if path is None:
            return zarr.open_group(store, mode=mode, zarr_format=3)  # type: ignore[arg-type]
        return zarr.open_group(store, mode=mode, path=path, zarr_format=3)  # type: ignore[arg-type]

    def arrays(self, mode: str = "r") -> list[zarr.Array]:
        """The arrays of the store's root group."""
        with warnings.catch_warnings():
            # on S3, before the ledger exists _sentinel_cube/ holds only the lock record,
            # an object Zarr notes as "not a component of a Zarr hierarchy"
            warnings.filterwarnings("ignore", f"Object at {META_GROUP} is not recognized")
            return [array for _, array in self.group(mode).arrays()]

    def array(self, path: str, mode: str = "r") -> zarr.Array:
        store = self.zarr_store(read_only=mode == "r")
        return zarr.open_array(store, path=path, mode=mode, zarr_format=3)

    def lock_file(self) -> LockFile | ObjectLockFile:
        """The writer lock's record: ``_sentinel_cube/.lock`` in the store."""
        if self.path is not None:
            return LockFile(self.path / META_GROUP)
        return ObjectLockFile(self.fs(), self.key(f"{META_GROUP}/{LOCK_NAME}"))

    # ------------------------------------------------------------------ questions

    def exists(self, relative: str) -> bool:
        """Whether the file or object ``relative`` exists."""
        if self.path is not None:
            return (self.path / relative).exists()
        return bool(self.fs().exists(self.key(relative)))

    def is_empty(self) -> bool:
        """Nothing there (a writer's lock record alone counts as nothing)."""
        if self.path is not None:
            if not self.path.exists():
                return True
            return self.path.is_dir() and not any(self.path.iterdir())
        names = {entry.rsplit("/", 1)[-1] for entry in self._listing("")}
        if names <= {META_GROUP}:
            return not any(
                not entry.endswith("/" + LOCK_NAME) for entry in self._listing(META_GROUP)
            )
        return False

    def has_keys(self, relative: str) -> bool:
        """Whether any file or object lies below ``relative``."""
        if self.path is not None:
            folder = self.path / relative
            return folder.is_dir() and any(folder.iterdir())
        return bool(self._listing(relative))

    def _listing(self, relative: str) -> list[str]:
        fs = self.fs()
        try:
            return list(fs.ls(self.key(relative), detail=False))
        except FileNotFoundError:
            return []

    def size(self, relative: str) -> int:
        """Bytes of the files or objects below ``relative``."""
        if self.path is not None:
            folder = self.path / relative
            if not folder.exists():
                return 0
            return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        fs = self.fs()
        return int(sum(fs.du(self.key(relative), total=False).values()))

    def upload(self, folder: Path, last: str) -> None:
        """Upload a local store folder: its root ``zarr.json`` first, ``last`` after all.

        The root metadata first, so that a store cut short is recognised as ours (it
        carries the store marker); the others in parallel.
        """
        files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
        middle = sorted(r for r in files if r not in ("zarr.json", last))
        fs = self.fs()
        fs.put_file(str(folder / "zarr.json"), self.key("zarr.json"))
        if middle:
            fs.put([str(folder / r) for r in middle], [self.key(r) for r in middle])
        fs.put_file(str(folder / last), self.key(last))

    def remove_all(self) -> None:
        """Delete every object of a remote store but the writer lock's record.

        The ledger goes first, so a kill part-way leaves a store with no committed
        step (and, once the data chunks are gone, one the next writer rebuilds).
        """
        fs = self.fs()
        ledger = self.key(f"{META_GROUP}/zarr.json")
        if fs.exists(ledger):
            fs.rm_file(ledger)
        keys = [
            k
            for k in fs.find(self.key())
            if not k.endswith(f"/{META_GROUP}/{LOCK_NAME}") and k != ledger
        ]
        if keys:
            fs.rm(keys)
