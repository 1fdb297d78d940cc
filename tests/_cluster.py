"""A dask cluster started from the command line, as on separate machines, for tests.

:func:`cli_cluster` starts ``dask scheduler`` and ``dask worker`` processes with the
``dask`` command line, on the loopback, and connects a :class:`distributed.Client`
to them (the default scheduler inside the ``with`` block)::

    with cli_cluster(tmp_path, env=s3_server.env()) as cluster:
        cube.compute()                  # runs on the workers
        cluster.kill_worker(1)          # SIGKILL, as a machine that dies

Each process runs as if on a machine of its own: its working directory is a fresh
empty folder, which is also its ``HOME``, ``TMPDIR`` and dask local directory; it
inherits no ``AWS_*``, ``CDSE_*``, ``DASK_*``, ``XDG_*`` or ``PYTHONPATH`` of the test
process, only ``env`` (e.g. the S3 server's keys: read tasks take keys from their
worker's environment) and ``PYTHONPATH`` set to the package source. Nothing else of
the test's files is on its path: what a task needs travels in the graph or is read
from object storage.

Workers run without a nanny: a nanny restarts a killed worker, so killing one would
not take its memory and its thread away for good; without it a SIGKILL is a machine
lost, and the scheduler must rerun the lost tasks on the workers left.

Every process gets its own session (process group), which teardown kills (SIGTERM,
then SIGKILL), whatever happened in the ``with`` block. Each process's output goes to
a log file; their tails are added as a note to an exception raised in the block, and
to the error when the cluster does not come up. Should the test process itself die
without its teardown, the scheduler closes after :data:`IDLE_TIMEOUT` of idleness and
workers close when the scheduler goes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import site
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import distributed

SRC = Path(__file__).resolve().parents[1] / "src"

#: Seconds to wait for the scheduler's address and for the workers to register.
START_TIMEOUT = 60.0
#: Seconds a process has to exit after SIGTERM before it gets SIGKILL.
STOP_TIMEOUT = 10.0
#: The scheduler closes itself after this long without work (a watchdog for the case
#: where the test process is killed before its teardown; workers follow the scheduler).
IDLE_TIMEOUT = "120s"
#: Variables of the test process that a machine of the cluster would not have.
_NOT_INHERITED = ("AWS_", "CDSE_", "DASK_", "XDG_", "PYTHONPATH", "PYTHONHOME", "TMPDIR")


@dataclass
class Process:
    """One ``dask`` command-line process, in its own folder, logging to a file."""

    name: str
    home: Path
    log: Path
    popen: subprocess.Popen[bytes]

    @property
    def running(self) -> bool:
        """Whether the process has not exited."""
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of its output, under a header with its state."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        state = "running" if self.running else f"exited with {self.popen.returncode}"
        body = "\n".join(text.splitlines()[-lines:])
        return f"--- {self.name} ({state}), last lines of {self.log.name}:\n{body}"

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> None:
        """Send ``sig`` to its process group and wait; SIGKILL the group if it lingers.

        Nothing is sent once the process has been waited for: its id may be another
        process's by then (until then it is ours, even after the process has exited).
        """
        if self.popen.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):  # a zombie leader's group is gone
            os.killpg(self.popen.pid, sig)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=timeout)


@dataclass
class CliCluster:
    """A running command-line cluster: its processes and a client connected to it."""

    scheduler: Process
    #: the scheduler's address, ``tcp://127.0.0.1:PORT``
    address: str = ""
    workers: list[Process] = field(default_factory=list)
    #: worker name (``worker-0``...) -> the worker's address at the scheduler
    addresses: dict[str, str] = field(default_factory=dict)
    _client: distributed.Client | None = None

    @property
    def client(self) -> distributed.Client:
        """The client connected to the scheduler (the default dask scheduler)."""
        if self._client is None:
            raise RuntimeError("the cluster has no client (not started or already closed)")
        return self._client

    def tails(self, lines: int = 30) -> str:
        """The last lines of every process's log."""
        return "\n".join(p.tail(lines) for p in (self.scheduler, *self.workers))

    def kill_worker(self, index: int, timeout: float = 30.0) -> str:
        """SIGKILL worker ``index`` and wait until the scheduler has dropped it.

        Returns the killed worker's address.
        """
        worker = self.workers[index]
        address = self.addresses[worker.name]
        worker.stop(signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while address in self.client.scheduler_info()["workers"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the scheduler still lists {worker.name} after its kill")
            time.sleep(0.05)
        return address


@contextlib.contextmanager
def cli_cluster(
    root: Path,
    env: Mapping[str, str] | None = None,
    n_workers: int = 2,
    nthreads: int = 1,
) -> Iterator[CliCluster]:
    """Start a scheduler and ``n_workers`` workers from the ``dask`` command line.

    Parameters
    ----------
    root
        A folder for the processes' folders (``scheduler/``, ``worker-0/``...) and
        their logs (``logs/``); the folders must not exist yet.
    env
        Variables added to each process's environment (e.g. object storage keys).
    n_workers, nthreads
        Worker processes, and threads in each.

    Yields
    ------
    CliCluster
        With a connected client, the default dask scheduler inside the block.
    """
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        home = _folder(root, "scheduler")
        scheduler = _spawn("scheduler", home, logs, _scheduler_args(home), env)
        stack.callback(scheduler.stop)
        cluster = CliCluster(scheduler)
        try:
            cluster.address = address = _wait_for_address(scheduler)
            for i in range(n_workers):
                name = f"worker-{i}"
                home = _folder(root, name)
                worker = _spawn(name, home, logs, _worker_args(address, name, home, nthreads), env)
                stack.callback(worker.stop)  # stopped before the scheduler (LIFO)
                cluster.workers.append(worker)
            cluster._client = stack.enter_context(
                distributed.Client(address, timeout=START_TIMEOUT)
            )
            cluster.addresses = _wait_for_workers(cluster)
            yield cluster
        except BaseException as error:
            error.add_note(f"dask cluster processes:\n{cluster.tails()}")
            raise


# ----------------------------------------------------------------------- processes


#: Every listening socket on the loopback: with ``--no-dashboard`` a process still serves
#: its HTTP endpoints (health, metrics), by default on ``0.0.0.0:8787`` for a scheduler.
_HTTP = ["--no-dashboard", "--dashboard-address", "127.0.0.1:0"]


def _scheduler_args(home: Path) -> list[str]:
    return [
        "scheduler", "--host", "127.0.0.1", "--port", "0", *_HTTP,
        "--scheduler-file", str(home / "scheduler.json"), "--idle-timeout", IDLE_TIMEOUT,
    ]  # fmt: skip


def _worker_args(address: str, name: str, home: Path, nthreads: int) -> list[str]:
    return [
        "worker", address, "--name", name, "--nthreads", str(nthreads), "--nworkers", "1",
        "--no-nanny", "--host", "127.0.0.1", *_HTTP, "--local-directory", str(home),
        "--death-timeout", "30s",
    ]  # fmt: skip


def environment(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a cluster process living in ``home``.

    The test process's environment without what a separate machine would not share
    (:data:`_NOT_INHERITED`), with ``HOME``/``TMPDIR`` in ``home``, ``PYTHONPATH`` the
    package source and ``extra`` on top. A user site folder of the test's Python stays
    reachable (``PYTHONUSERBASE``): it is installed software, as on a cluster's image.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    env.update(HOME=str(home), TMPDIR=str(home), PYTHONPATH=str(SRC), PYTHONUNBUFFERED="1")
    if site.ENABLE_USER_SITE and site.USER_BASE and Path(site.USER_BASE).is_dir():
        env["PYTHONUSERBASE"] = site.USER_BASE
    env.update(extra or {})
    return env


def _folder(root: Path, name: str) -> Path:
    """A new empty folder ``root/name`` (an error if it exists: no state is reused)."""
    home = root / name
    home.mkdir()
    return home


def _spawn(
    name: str, home: Path, logs: Path, args: list[str], env: Mapping[str, str] | None
) -> Process:
    """Start ``python -m dask ARGS`` in ``home``, in its own session, logging to ``logs``."""
    log = logs / f"{name}.log"
    with open(log, "wb") as out:  # the child keeps its own descriptor
        popen = subprocess.Popen(
            [sys.executable, "-m", "dask", *args],
            cwd=home,
            env=environment(home, env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(name, home, log, popen)


def _wait_for_address(scheduler: Process) -> str:
    """The scheduler's address once it has written its scheduler file."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        _check_running([scheduler])
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, KeyError):
            return json.loads((scheduler.home / "scheduler.json").read_text())["address"]
        time.sleep(0.1)
    raise TimeoutError(f"the scheduler gave no address within {START_TIMEOUT:.0f} s")


def _wait_for_workers(cluster: CliCluster) -> dict[str, str]:
    """Wait until every worker has registered; return their addresses by name."""
    client = cluster.client
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        _check_running([cluster.scheduler, *cluster.workers])
        try:
            client.wait_for_workers(len(cluster.workers), timeout=1)
            break
        except TimeoutError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(cluster.workers)} workers did not register within {START_TIMEOUT:.0f} s"
                ) from None
    workers = client.scheduler_info()["workers"]
    return {info["name"]: address for address, info in workers.items()}


def _check_running(processes: list[Process]) -> None:
    for process in processes:
        if not process.running:
            raise RuntimeError(f"{process.name} exited with {process.popen.returncode}")
