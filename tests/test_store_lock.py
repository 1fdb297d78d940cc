"""The store's writer lock: holders named, waiting, stale locks recognised and taken over.

Every test runs on both record kinds: a file in a folder (changes made atomic by a
guard ``flock``) and an object on the loopback S3 server (changes made by S3's
conditional requests, ``If-None-Match`` / ``If-Match``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, replace

import pytest

from sentinel_cube._store_lock import (
    LockFile,
    LockRecord,
    ObjectLockFile,
    StoreLock,
    StoreLockedError,
)


class Where:
    """Where the lock record lives; ``file()`` gives a fresh handle on it."""

    def __init__(self, request, tmp_path) -> None:
        self.kind = request.param
        if self.kind == "s3":
            import s3fs

            from _s3 import BUCKET

            server = request.getfixturevalue("s3_server")
            self.fs = s3fs.S3FileSystem(
                key=server.env()["AWS_ACCESS_KEY_ID"],
                secret=server.env()["AWS_SECRET_ACCESS_KEY"],
                client_kwargs={"endpoint_url": server.endpoint_url, "region_name": "us-east-1"},
                config_kwargs={"s3": {"addressing_style": "path"}},
            )
            self.key = f"{BUCKET}/locks/{uuid.uuid4().hex}/.lock"
        else:
            self.folder = tmp_path

    def file(self) -> LockFile | ObjectLockFile:
        return ObjectLockFile(self.fs, self.key) if self.kind == "s3" else LockFile(self.folder)

    def write(self, text: str) -> None:
        """Write the record's bytes as another program would (no condition)."""
        if self.kind == "s3":
            self.fs.pipe_file(self.key, text.encode())
        else:
            (self.folder / ".lock").write_text(text)

    def plant(self, **fields) -> LockRecord:
        """Write a lock record as another writer would have left it."""
        record = replace(LockRecord.mine(), **fields)
        self.write(json.dumps(asdict(record)))
        return record


@pytest.fixture(params=["folder", "s3"])
def where(request, tmp_path) -> Where:
    return Where(request, tmp_path)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_live_holder_blocks_and_is_named(where):
    with StoreLock(where.file(), label="cube.zarr"):
        started = time.monotonic()
        with pytest.raises(StoreLockedError) as error:
            StoreLock(where.file(), timeout=0, label="cube.zarr").acquire()
        assert time.monotonic() - started < 1.0  # fails at once
    message = str(error.value)
    assert f"process {os.getpid()} on host {socket.gethostname()!r}" in message
    assert "'cube.zarr'" in message and "lock_timeout" in message


def test_a_waiting_writer_gets_the_lock_when_the_holder_releases(where):
    holder = StoreLock(where.file())
    holder.acquire()
    threading.Timer(0.5, holder.release).start()
    started = time.monotonic()
    with StoreLock(where.file(), timeout=30) as second:
        waited = time.monotonic() - started
        assert where.file().read() == second.record
    assert 0.4 < waited < 10
    assert where.file().read() is None  # released


def test_a_dead_holder_on_this_host_is_stale(where):
    planted = where.plant(pid=_dead_pid(), heartbeat=time.time())
    with StoreLock(where.file(), timeout=0) as lock:
        assert lock.record is not None and lock.record.token != planted.token


def test_a_reused_pid_is_stale(where):
    # our own, live pid, but recorded with another start time: the holder is gone
    where.plant(pid_start="1")
    with StoreLock(where.file(), timeout=0):
        pass


@pytest.mark.parametrize("age, free", [(5.0, False), (3600.0, True)])
def test_a_holder_on_another_host_is_stale_only_without_heartbeat(where, age, free):
    where.plant(host="worker-17.cluster", pid=1, heartbeat=time.time() - age)
    lock = StoreLock(where.file(), timeout=0, stale_after=60)
    if free:
        with lock:
            pass
    else:
        with pytest.raises(StoreLockedError, match="worker-17.cluster"):
            lock.acquire()


def test_an_unreadable_record_is_freed_only_by_its_age(where):
    where.write("{not json")
    with pytest.raises(StoreLockedError):
        StoreLock(where.file(), timeout=0).acquire()
    # an unreadable record's age is the age of its file or object
    if where.kind == "s3":  # an object's time cannot be set: wait past a short limit
        time.sleep(2.5)
        stale_after = 1.0
    else:
        old = time.time() - 3600
        os.utime(where.folder / ".lock", (old, old))
        stale_after = 60.0
    with StoreLock(where.file(), timeout=0, stale_after=stale_after):
        pass


def test_the_heartbeat_advances_and_a_takeover_is_noticed(where):
    lock = StoreLock(where.file(), heartbeat=0.05)
    lock.acquire()
    first = where.file().read()
    time.sleep(0.3)
    later = where.file().read()
    assert first is not None and later is not None
    assert later.token == first.token and later.heartbeat > first.heartbeat
    lock.check()  # still ours
    # another writer presumed us dead and took over. Its conditional replace loses to a
    # heartbeat that lands between its read and its write (on S3 the request pair can
    # outlast a heartbeat period under load), as it should: it tries again, as a real
    # takeover would
    other = LockRecord.mine()
    deadline = time.monotonic() + 10
    while not where.file().replace(other, later.token):
        assert time.monotonic() < deadline, "the takeover never won against the heartbeat"
    time.sleep(0.3)
    with pytest.raises(StoreLockedError, match="taken over"):
        lock.check()
    lock.release()
    assert where.file().read() == other  # our release leaves their lock alone


def test_only_one_of_many_threads_holds_the_lock_at_a_time(where):
    inside = []
    overlaps = []

    def work():
        with StoreLock(where.file(), timeout=60):
            inside.append(1)
            if len(inside) > 1:
                overlaps.append(len(inside))
            time.sleep(0.01)
            inside.pop()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []
