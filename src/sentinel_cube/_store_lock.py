"""One writer at a time per cube store: a lock that survives its holder's death.

The lock is a small JSON record (``_sentinel_cube/.lock`` in the store) naming its
holder: a random token, the process id and its start time, the host, when it
was taken and when its holder last showed signs of life (a heartbeat the holder
refreshes from a background thread). A waiting writer takes the lock over when
the record is *stale*:

- the holder ran on this host and its process is gone (or the pid now belongs to
  a process started at another time), or
- the heartbeat is older than ``stale_after`` seconds (a holder on another host
  that died, or a host that went away).

Every change of the record is a *conditional write*, so two writers can never
both believe they hold the lock:

- ``create``: write the record only if no record exists;
- ``replace``: overwrite it only if it still is the version that was read
  (taking over a stale lock, refreshing the heartbeat);
- ``delete``: remove it only if it still is our version (releasing).

On a local or network file system these are made atomic by holding an
``fcntl.flock`` on a guard file for the few microseconds each takes (the
kernel drops a flock when its process dies, so the guard itself can never be
left stuck). Object stores offer the same three operations natively: S3's
``PutObject`` with ``If-None-Match: *`` (create) and ``If-Match: <etag>``
(replace), and a delete conditioned on the ETag; GCS and Azure have their
generation / ETag preconditions. A :class:`LockFile` for them only swaps the
three methods (:class:`ObjectLockFile` does it for S3), :class:`StoreLock` is unchanged.

No maintained library gives a lock with a readable holder record, stale-lock
take-over and object-store semantics (``filelock`` is flock-only: it reports no
holder and cannot live on object storage), hence this module.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .exceptions import SentinelCubeError

__all__ = ["LOCK_NAME", "LockFile", "LockRecord", "ObjectLockFile", "StoreLock", "StoreLockedError"]

LOCK_NAME = ".lock"
#: The holder refreshes its heartbeat this often (seconds).
HEARTBEAT_SECONDS = 10.0
#: A record whose heartbeat is older than this is stale even when its host cannot
#: be checked (another machine): six missed heartbeats.
STALE_AFTER_SECONDS = 60.0


class StoreLockedError(SentinelCubeError):
    """Another writer holds the store's lock."""


@dataclass(frozen=True)
class LockRecord:
    """Who holds a store's lock."""

    token: str
    pid: int
    pid_start: str
    host: str
    started: float
    heartbeat: float

    @classmethod
    def mine(cls) -> LockRecord:
        now = time.time()
        pid = os.getpid()
        return cls(uuid.uuid4().hex, pid, _process_start(pid), socket.gethostname(), now, now)

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started))
        return f"process {self.pid} on host {self.host!r} (since {since})"

    def stale(self, stale_after: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if self.host == socket.gethostname():
            if not _alive(self.pid):
                return True
            start = _process_start(self.pid)
            if start and self.pid_start and start != self.pid_start:
                return True  # the pid was reused by another process
            return False  # a live writer on this machine is never stale
        return now - self.heartbeat > stale_after


class LockFile:
    """The lock record as a file, with conditional create / replace / delete."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._guard = Path(folder) / (LOCK_NAME + ".guard")

    @contextlib.contextmanager
    def _guarded(self) -> Iterator[None]:
        self._guard.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._guard, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the flock

    def _read(self) -> LockRecord | None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        try:
            return LockRecord(**json.loads(text))
        except (ValueError, TypeError):
            # an unreadable record (written by hand, or by another version): its holder
            # cannot be checked, so it frees itself like a silent holder on another host,
            # ``stale_after`` seconds after the file last changed
            changed = self.path.stat().st_mtime
            return LockRecord(f"unreadable-{changed}", -1, "", "?", changed, changed)

    def _write(self, record: LockRecord) -> None:
        tmp = self.path.with_name(f"{LOCK_NAME}.{record.token}.tmp")
        tmp.write_text(json.dumps(asdict(record)))
        os.replace(tmp, self.path)  # readers see the old record or the new one

    def read(self) -> LockRecord | None:
        with self._guarded():
            return self._read()

    def create(self, record: LockRecord) -> bool:
        with self._guarded():
            if self.path.exists():
                return False
            self._write(record)
            return True

    def replace(self, record: LockRecord, expected: str) -> bool:
        with self._guarded():
            current = self._read()
            if current is None or current.token != expected:
                return False
            self._write(record)
            return True

    def delete(self, expected: str) -> bool:
        with self._guarded():
            current = self._read()
            if current is None or current.token != expected:
                return False
            self.path.unlink()
            return True


class ObjectLockFile:
    """The lock record as an S3 object, changed only by conditional requests.

    ``create`` is a ``PutObject`` with ``If-None-Match: *``; ``replace`` and
    ``delete`` carry ``If-Match`` with the ETag of the record they read, so the
    object store itself refuses a change when another writer changed the record
    in between (AWS S3 since 2024, MinIO, Ceph RGW, moto). A store that ignores
    these headers gives no guarantee against two concurrent writers.

    Parameters
    ----------
    fs
        An :class:`s3fs.S3FileSystem`.
    key
        ``bucket/key`` of the record.
    """

    #: Answers meaning "the condition did not hold": another writer got there first.
    LOST = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")

    def __init__(self, fs: Any, key: str) -> None:
        self.fs = fs
        self.bucket, self.key = key.split("/", 1)
        self.path = f"s3://{key}"

    def _call(self, method: str, **kwargs: Any) -> Any:
        from fsspec.asyn import sync

        async def call() -> Any:
            answer = await self.fs._call_s3(method, Bucket=self.bucket, Key=self.key, **kwargs)
            if "Body" in answer:
                async with answer["Body"] as body:
                    answer["Data"] = await body.read()
            return answer

        return sync(self.fs.loop, call)

    def _lost(self, error: BaseException) -> bool:
        cause = error.__cause__ or error
        answer = getattr(cause, "response", None) or {}
        code = str(answer.get("Error", {}).get("Code", ""))
        status = str(answer.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        return isinstance(error, FileExistsError) or code in self.LOST or status in self.LOST

    def _get(self) -> tuple[LockRecord | None, str]:
        try:
            answer = self._call("get_object")
        except FileNotFoundError:
            return None, ""
        etag = str(answer["ETag"])
        try:
            return LockRecord(**json.loads(answer["Data"])), etag
        except (ValueError, TypeError):
            # unreadable: frees itself ``stale_after`` seconds after it last changed
            changed = answer["LastModified"].timestamp()
            return LockRecord(f"unreadable-{etag}", -1, "", "?", changed, changed), etag

    def _put(self, record: LockRecord, **condition: str) -> bool:
        try:
            self._call("put_object", Body=json.dumps(asdict(record)).encode(), **condition)
        except OSError as error:
            if self._lost(error):
                return False
            raise
        return True

    def read(self) -> LockRecord | None:
        return self._get()[0]

    def create(self, record: LockRecord) -> bool:
        return self._put(record, IfNoneMatch="*")

    def replace(self, record: LockRecord, expected: str) -> bool:
        current, etag = self._get()
        if current is None or current.token != expected:
            return False
        return self._put(record, IfMatch=etag)

    def delete(self, expected: str) -> bool:
        current, etag = self._get()
        if current is None or current.token != expected:
            return False
        try:
            self._call("delete_object", IfMatch=etag)
        except FileNotFoundError:
            return False
        except OSError as error:
            if self._lost(error):
                return False
            raise
        return True


class StoreLock:
    """Hold a store's writer lock for the duration of a ``with`` block.

    Parameters
    ----------
    folder
        The store folder's ``_sentinel_cube`` folder, or the record of an object store
        (:class:`ObjectLockFile`).
    timeout
        Seconds to wait for another writer to finish; ``0`` fails at once.
    stale_after
        Seconds without a heartbeat after which a holder on another host is
        taken for dead.
    heartbeat
        Seconds between two refreshes of the holder's heartbeat.
    label
        What the lock protects, for messages (default: ``folder``).

    Raises
    ------
    StoreLockedError
        When the lock is still held by a live writer after ``timeout`` seconds.
    """

    def __init__(
        self,
        folder: Path | LockFile | ObjectLockFile,
        timeout: float = 0.0,
        *,
        stale_after: float = STALE_AFTER_SECONDS,
        heartbeat: float = HEARTBEAT_SECONDS,
        label: str | None = None,
    ) -> None:
        self.file = folder if isinstance(folder, LockFile | ObjectLockFile) else LockFile(folder)
        self.label = label or str(folder)
        self.timeout = float(timeout)
        self.stale_after = float(stale_after)
        self.heartbeat = float(heartbeat)
        self.record: LockRecord | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        delay = 0.05
        while True:
            record = LockRecord.mine()
            if self.file.create(record):
                break
            holder = self.file.read()
            if holder is None:
                continue  # released between our two looks: try again at once
            if holder.stale(self.stale_after) and self.file.replace(record, holder.token):
                break
            if time.monotonic() >= deadline:
                raise StoreLockedError(
                    f"another writer holds the store {self.label!r}: "
                    f"{holder.describe()}. Run again when it has finished (or pass "
                    "lock_timeout=SECONDS to wait for it); if that process is gone and its "
                    f"host cannot be reached, the lock frees itself {self.stale_after:.0f} s "
                    f"after its last heartbeat, or delete {str(self.file.path)!r} by hand"
                )
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 1.0)
        self.record = record
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="store-lock-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            record = self.record
            if record is None:
                return
            fresh = LockRecord(**{**asdict(record), "heartbeat": time.time()})
            try:
                # the token stays ours: a replace that fails means the lock was taken over
                if not self.file.replace(fresh, record.token):
                    self.lost = True
                    return
            except OSError:
                continue  # a passing file-system error: try again at the next beat
            self.record = fresh

    def check(self) -> None:
        """Raise if the lock was taken over (this writer was presumed dead)."""
        if self.lost:
            raise StoreLockedError(
                f"the lock of {self.label!r} was taken over by another writer "
                "while this one was writing (its heartbeat stalled for more than "
                f"{self.stale_after:.0f} s): nothing more is written; run again"
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.record is not None:
            self.file.delete(self.record.token)
            self.record = None


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    except OSError as error:  # pragma: no cover - other platforms
        return error.errno != errno.ESRCH
    return _state(pid) != "Z"  # a zombie has exited


def _stat_fields(pid: int) -> list[str]:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return text.rsplit(")", 1)[-1].split()  # fields after the command name


def _state(pid: int) -> str:
    fields = _stat_fields(pid)
    return fields[0] if fields else ""


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' where /proc is absent)."""
    fields = _stat_fields(pid)
    return fields[19] if len(fields) > 19 else ""
