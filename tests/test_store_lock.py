"""The store's writer lock: holders named, waiting, stale locks recognised and taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, replace

import pytest

from sentinel_cube._store_lock import LockFile, LockRecord, StoreLock, StoreLockedError


def _plant(folder, **fields) -> LockRecord:
    """Write a lock record as another writer would have left it."""
    record = replace(LockRecord.mine(), **fields)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".lock").write_text(json.dumps(asdict(record)))
    return record


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_live_holder_blocks_and_is_named(tmp_path):
    with StoreLock(tmp_path, label="cube.zarr"):
        started = time.monotonic()
        with pytest.raises(StoreLockedError) as error:
            StoreLock(tmp_path, timeout=0, label="cube.zarr").acquire()
        assert time.monotonic() - started < 1.0  # fails at once
    message = str(error.value)
    assert f"process {os.getpid()} on host {socket.gethostname()!r}" in message
    assert "'cube.zarr'" in message and "lock_timeout" in message


def test_a_waiting_writer_gets_the_lock_when_the_holder_releases(tmp_path):
    holder = StoreLock(tmp_path)
    holder.acquire()
    threading.Timer(0.5, holder.release).start()
    started = time.monotonic()
    with StoreLock(tmp_path, timeout=30) as second:
        waited = time.monotonic() - started
        assert LockFile(tmp_path).read() == second.record
    assert 0.4 < waited < 10
    assert LockFile(tmp_path).read() is None  # released


def test_a_dead_holder_on_this_host_is_stale(tmp_path):
    planted = _plant(tmp_path, pid=_dead_pid(), heartbeat=time.time())
    with StoreLock(tmp_path, timeout=0) as lock:
        assert lock.record is not None and lock.record.token != planted.token


def test_a_reused_pid_is_stale(tmp_path):
    # our own, live pid, but recorded with another start time: the holder is gone
    _plant(tmp_path, pid_start="1")
    with StoreLock(tmp_path, timeout=0):
        pass


@pytest.mark.parametrize("age, free", [(5.0, False), (3600.0, True)])
def test_a_holder_on_another_host_is_stale_only_without_heartbeat(tmp_path, age, free):
    _plant(tmp_path, host="worker-17.cluster", pid=1, heartbeat=time.time() - age)
    lock = StoreLock(tmp_path, timeout=0, stale_after=60)
    if free:
        with lock:
            pass
    else:
        with pytest.raises(StoreLockedError, match="worker-17.cluster"):
            lock.acquire()


def test_an_unreadable_record_is_freed_only_by_its_age(tmp_path):
    (tmp_path / ".lock").write_text("{not json")
    with pytest.raises(StoreLockedError):
        StoreLock(tmp_path, timeout=0).acquire()
    old = time.time() - 3600  # an unreadable record's age is its file's age
    os.utime(tmp_path / ".lock", (old, old))
    with StoreLock(tmp_path, timeout=0, stale_after=60):
        pass


def test_the_heartbeat_advances_and_a_takeover_is_noticed(tmp_path):
    lock = StoreLock(tmp_path, heartbeat=0.05)
    lock.acquire()
    first = LockFile(tmp_path).read()
    time.sleep(0.3)
    later = LockFile(tmp_path).read()
    assert first is not None and later is not None
    assert later.token == first.token and later.heartbeat > first.heartbeat
    lock.check()  # still ours
    # another writer presumed us dead and took over
    other = LockRecord.mine()
    assert LockFile(tmp_path).replace(other, later.token)
    time.sleep(0.3)
    with pytest.raises(StoreLockedError, match="taken over"):
        lock.check()
    lock.release()
    assert LockFile(tmp_path).read() == other  # our release leaves their lock alone


def test_only_one_of_many_threads_holds_the_lock_at_a_time(tmp_path):
    inside = []
    overlaps = []

    def work():
        with StoreLock(tmp_path, timeout=60):
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
