"""Kill ``to_zarr`` with SIGKILL at chosen moments: the driver of ``test_store_faults.py``.

Run as ``python _store_fault_driver.py SPEC.json``. The spec names the products of
the first and the second ingest of each trial, the store, and the *event* at which
the writing process kills itself. An event is any change of a file that a write
makes: every ``os.replace`` (zarr writes each file as a temporary file renamed into
place; the lock record is written the same way), ``os.rename`` (store creation),
``os.unlink``/``os.link``. Killing just *before* an ``os.replace`` leaves a torn
temporary file, just *after* it a complete one; the trials do both.

The driver imports everything once, then forks one child per ingest, so a trial
costs a fork rather than an interpreter start. The driver itself starts no thread
before forking (forking a threaded process is unsafe); each child does the writing
with the threaded dask scheduler, exactly as a user's session would.

A store on S3 (``s3://`` in the spec) is killed at its changing requests instead
(``PutObject``, ``DeleteObject(s)``), just before one is sent or just after its answer.

Results (one JSON line per trial: event count, the event killed at, exit status)
go to the spec's ``report`` file.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

import dask

from sentinel_cube.cube import open_cube
from sentinel_cube.store import to_zarr

_REAL = {name: getattr(os, name) for name in ("replace", "rename", "unlink", "link")}


def _instrument(kill_at: int, after: bool, log: list[str]) -> None:
    """Count file changes; SIGKILL this process at change number ``kill_at`` (1-based)."""
    guard = threading.Lock()

    def wrap(name):
        real = _REAL[name]

        def changed(*args, **kwargs):
            with guard:
                log.append(f"{name} {args[-1] if name != 'unlink' else args[0]}")
                number = len(log)
            if number == kill_at and not after:
                os.kill(os.getpid(), signal.SIGKILL)
            try:
                return real(*args, **kwargs)
            finally:  # also after a change that failed (a link to a file that exists)
                if number == kill_at and after:
                    os.kill(os.getpid(), signal.SIGKILL)

        return changed

    for name in _REAL:
        setattr(os, name, wrap(name))


#: The S3 requests that change a store (everything else only reads).
_CHANGES = ("put_object", "delete_object", "delete_objects", "copy_object",
            "complete_multipart_upload")  # fmt: skip


def _instrument_s3(kill_at: int, after: bool, log: list[str]) -> None:
    """Count changing S3 requests; SIGKILL this process at request number ``kill_at``.

    Killed *before* a request, it never reaches the server; *after*, the server
    applied it but the writer never learnt so.
    """
    import s3fs

    real = s3fs.S3FileSystem._call_s3
    guard = threading.Lock()

    async def call(self, method, *args, **kwargs):
        if method not in _CHANGES:
            return await real(self, method, *args, **kwargs)
        with guard:
            log.append(f"{method} {kwargs.get('Key', '')}")
            number = len(log)
        if number == kill_at and not after:
            os.kill(os.getpid(), signal.SIGKILL)
        try:
            return await real(self, method, *args, **kwargs)
        finally:  # also after a request that failed
            if number == kill_at and after:
                os.kill(os.getpid(), signal.SIGKILL)

    s3fs.S3FileSystem._call_s3 = call


def _ingest(paths: list[str], store: str, spec: dict) -> None:
    cube = open_cube(paths, bands=spec["bands"], resolution=spec["resolution"],
                     chunks=spec["chunks"], bounds=tuple(spec["bounds"]))  # fmt: skip
    with dask.config.set(scheduler="threads", num_workers=2):
        to_zarr(cube, store, progress=False)


def _child(target, *args) -> int:
    """Run ``target`` in a forked child; its wait status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            target(*args)
        except BaseException as error:  # report, then leave without running atexit
            print(f"child failed: {error!r}", file=sys.stderr, flush=True)
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status


def _killed_ingest(paths, store, spec, kill_at, after, log_path) -> None:
    log: list[str] = []
    (_instrument_s3 if store.startswith("s3://") else _instrument)(kill_at, after, log)
    try:
        _ingest(paths, store, spec)
    finally:
        with open(log_path, "w") as f:  # only reached when no kill happened
            f.write("\n".join(log))


def main(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    with open(spec["report"], "w") as report:
        for number, trial in enumerate(spec["trials"]):
            if trial["first"]:  # the store already holds an earlier ingest
                status = _child(_ingest, trial["first"], trial["store"], spec)
                assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
            log_path = f"{spec['report']}.{number}.events"
            status = _child(
                _killed_ingest, trial["second"], trial["store"], spec,
                trial["kill_at"], trial["after"], log_path,
            )  # fmt: skip
            killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            events = []
            if os.path.exists(log_path):
                with open(log_path) as f:
                    events = f.read().splitlines()
                os.unlink(log_path)
            report.write(json.dumps({**trial, "killed": killed, "status": status,
                                     "events": events}) + "\n")  # fmt: skip
            report.flush()


if __name__ == "__main__":
    main(sys.argv[1])
