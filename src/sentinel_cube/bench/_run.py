"""``run_bench``: every phase of a benchmark, in order, with progress.

1. *plan*: ``open_cube`` (metadata only) and the size of its graph;
2. *decode limit*: raw GDAL reads of exactly the JPEG 2000 windows the cube's chunks
   read (:mod:`._windows`, :mod:`._decode`), on the benchmark's workers;
3. *ingest*: ``open_cube`` + ``to_zarr`` into an emptied store on the same workers,
   and its ratio to the decode limit (2 and 3 alternate over the rounds);
4. *clip*, *stretch*, *aggregate* from the store;
5. *scaling*: the ingest again on the first 1, 2, 4... workers.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import xarray as xr
from tqdm.auto import tqdm

from .._read import drop_caches
from ..aoi import read_aoi
from ..exceptions import ProductError, SentinelCubeError
from ..safe import read_product
from ._archive import archive_dates, cached_archive
from ._cluster import (
    WorkerWatch,
    cluster_info,
    connect,
    first_workers,
    restricted,
    scaling_steps,
)
from ._decode import decode_env, run_decode
from ._measure import OPERATIONS, default_clip_area, ingest, operation, plan
from ._options import BenchOptions
from ._results import BenchReport, Phase, machine_info
from ._store import check_store
from ._windows import BandGrid, ChunkGrid, DecodeTask, decode_tasks

__all__ = ["run_bench"]

Echo = Callable[[str], None]


def run_bench(options: BenchOptions, echo: Echo = print, progress: bool = True) -> BenchReport:
    """Run a benchmark: plan, decode limit, ingest, operations, scaling.

    Parameters
    ----------
    options
        What to run on and how (see :class:`BenchOptions`).
    echo
        Where progress lines go (one per phase).
    progress
        Show progress bars (on stderr): one over the phases, one over the tasks or
        time steps of the current phase.

    Returns
    -------
    BenchReport
        Every measurement; write it with :func:`write_json`, :func:`write_html` and
        print it with :func:`table`.

    Raises
    ------
    SentinelCubeError
        Unreachable scheduler, unusable store, no products, bad options.
    """
    options.out.mkdir(parents=True, exist_ok=True)
    check_store(options.store_path, replace=options.overwrite or options.store is None)
    area = None if options.aoi is None else read_aoi(options.aoi)
    report = BenchReport(options=options.as_dict(), machine=machine_info())
    with connect(
        options.scheduler, options.workers, options.threads_per_worker, options.connect_timeout
    ) as client:
        open_args = {
            "products": _products(options, echo),
            "bands": list(options.bands),
            "resolution": options.cube_resolution,
            "aoi": area,
            "chunks": options.chunks,
        }
        workers = first_workers(client, options.workers)
        report.cluster = {**cluster_info(client), "used_workers": workers}
        echo(f"dask cluster: {len(workers)} workers used of {len(client.nthreads())}, "
             f"dashboard {client.dashboard_link}")  # fmt: skip
        if options.workers and len(workers) < options.workers:
            report.notes.append(
                f"--workers {options.workers} asked, the cluster has {len(workers)}"
            )
        with _Progress(_total(options, len(workers)), progress) as bar:
            phases = _Phases(client, workers, options, open_args, report, bar, echo)
            cube = phases.plan()
            phases.decode_and_ingest(cube, area)
            phases.operations(area if area is not None else default_clip_area(cube))
            phases.scaling(cube)
        _check_restrictions(report, workers)
    report.machine["load_average_after"] = machine_info()["load_average"]
    return report


class _Phases:
    """The phases of one run, on ``workers`` of ``client``, recorded into ``report``."""

    def __init__(
        self,
        client: Any,
        workers: list[str],
        options: BenchOptions,
        open_args: dict[str, Any],
        report: BenchReport,
        bar: _Progress,
        echo: Echo,
    ) -> None:
        self.client, self.workers, self.options = client, workers, options
        self.open_args, self.report, self.bar = open_args, report, bar
        self.store = options.store_path
        self.n = len(workers)
        self._echo = echo

    def echo(self, line: str) -> None:
        self.bar.echo(self._echo, line)

    def plan(self) -> xr.DataArray:
        """``open_cube`` over the rounds; the cube."""
        planned = Phase("plan", "plan", 0)
        for _ in range(self.options.rounds):
            with self.bar.phase("plan"):
                cube, seconds, planned.tasks = plan(self.open_args)
            planned.record(seconds)
        self.report.phases.append(planned)
        self.report.cube = _describe(cube)
        self.echo(f"cube: {_summary(cube)}; planned in {planned.median:.2f} s, "
                  f"{planned.tasks} tasks")  # fmt: skip
        return cube

    def decode_and_ingest(self, cube: xr.DataArray, area: Any) -> None:
        """The decode limit and the ingest on all the workers, alternating over the rounds."""
        n = self.n
        work = [] if "decode" in self.options.skip else _decode_work(cube, area, self.report)
        decoded: Phase | None = None
        if work:
            decoded = Phase("decode limit", "decode", n, pixels=cube.size, tasks=len(work))
            self.report.phases.append(decoded)
        elif "decode" not in self.options.skip:
            self.report.notes.append("decode limit: no chunk reads a band file")
        ingested = Phase("ingest", "ingest", n, pixels=cube.size)
        self.report.phases.append(ingested)
        env = decode_env([w.path for t in work for w in t.reads])
        for _ in range(self.options.rounds):
            if decoded is not None:
                with self.bar.phase(f"decode limit, {n} workers"):
                    watch = WorkerWatch(self.client).start()
                    run = run_decode(self.client, work, self.workers, env, self.bar.tasks("tasks"))
                    decoded.record(run.seconds, watch.stop())
                    decoded.source_pixels = run.source_pixels
                self.echo(_line(decoded))
            written = self._ingest(ingested, self.workers, f"ingest, {n} workers")
            self.echo(_line(ingested) + f" -> {written.report.store}")
        if decoded is not None:
            ingested.ratio = _ratio(ingested, decoded)
            if ingested.ratio is not None:
                self.echo(f"ingest / decode limit: {ingested.ratio:.2f}")

    def operations(self, clip_area: Any) -> None:
        """Clip, stretch and aggregate from the store, on all the workers."""
        for name in OPERATIONS:
            if name in self.options.skip:
                continue
            with self.bar.phase(name), restricted(self.client, self.workers):
                done = operation(self.client, name, self.store, clip_area)
            phase = Phase(name, name, self.n, pixels=done.pixels)
            phase.record(done.seconds, done.uses)
            phase.tasks = sum(u.tasks for u in done.uses.values())
            self.report.phases.append(phase)
            self.echo(_line(phase))

    def scaling(self, cube: xr.DataArray) -> None:
        """The ingest on the first 1, 2, 4... workers (all of them: the ingest phase)."""
        if "scaling" in self.options.skip:
            return
        for k in scaling_steps(self.n)[:-1]:
            phase = Phase("scaling", "scaling", k, pixels=cube.size)
            for _ in range(self.options.rounds):
                self._ingest(phase, self.workers[:k], f"scaling, {k} of {self.n} workers")
            self.report.phases.append(phase)
            self.echo(_line(phase))

    def _ingest(self, phase: Phase, workers: list[str], label: str) -> Any:
        # every ingest starts cold: tiles, plans and nodes kept by the workers from an
        # earlier phase would spare it decoding (a 1-worker scaling run after the ingest
        # then decoded only half of the tiles)
        self.client.run(drop_caches)
        with self.bar.phase(label):
            written = ingest(
                self.client, self.open_args, self.store, workers, self.bar.tasks("time steps")
            )
        phase.record(written.seconds, written.uses)
        phase.tasks = sum(u.tasks for u in written.uses.values())
        return written


def _products(options: BenchOptions, echo: Echo) -> Any:
    """The products to ingest: the options', or the generated archive (made if missing)."""
    if not options.generated:
        if len(options.products) == 0:
            raise SentinelCubeError(
                "no products to benchmark: the products given are empty (check the folder, "
                "the table or the AOI), or leave out --products to use a generated archive"
            )
        return options.products
    folder = options.archive_dir or options.out / "archive"
    dates = archive_dates(options.dates)
    echo(f"archive: tiles {', '.join(options.tiles)} x {len(dates)} dates at scale "
         f"1/{options.scale} in {folder} (generated once, then reused)")  # fmt: skip
    try:
        _, paths = cached_archive(
            folder, "bench", tiles=options.tiles, dates=dates, bands=options.bands,
            scale=options.scale,
        )  # fmt: skip
    except ValueError as error:
        raise SentinelCubeError(f"cannot generate the archive: {error}") from error
    return list(paths)


def _decode_work(cube: xr.DataArray, area: Any, report: BenchReport) -> list[DecodeTask]:
    """The decode limit's tasks: the windows of every chunk, step and band."""
    bands = [str(b) for b in cube.band.values]
    read: dict[str, dict[str, BandGrid]] = {}
    steps = []
    for text in cube.product_path.values:
        products = []
        for path in str(text).split("\n"):
            if path not in read:
                try:
                    product = read_product(path, require_bands=None)
                except ProductError as error:
                    raise SentinelCubeError(
                        f"the decode limit needs the products' band files: {error}; pass "
                        "--skip decode to benchmark without it"
                    ) from error
                read[path] = {b: BandGrid.of(product, b) for b in bands}
            products.append(read[path])
        steps.append(products)
    tasks = decode_tasks(ChunkGrid.of(cube), steps, bands, area)
    report.cube["decode_tasks"] = len(tasks)
    report.cube["decode_windows"] = sum(len(t.reads) for t in tasks)
    report.cube["decode_source_mpix"] = sum(t.source_pixels for t in tasks) / 1e6
    return tasks


def _ratio(phase: Phase, limit: Phase) -> float | None:
    if phase.mpix_per_s is None or not limit.mpix_per_s:
        return None
    return phase.mpix_per_s / limit.mpix_per_s


def _check_restrictions(report: BenchReport, workers: list[str]) -> None:
    """Note any phase whose tasks ran on workers it was not given."""
    for phase in report.phases:
        allowed = set(workers[: phase.workers])
        strays = {a for a, n in phase.tasks_per_worker.items() if n and a not in allowed}
        if strays and phase.kind != "plan":
            report.notes.append(
                f"{phase.name} ({phase.workers} workers): tasks also ran on {len(strays)} "
                "other workers; its figures are not those of its worker count"
            )


def _describe(cube: xr.DataArray) -> dict[str, Any]:
    chunks = cube.chunks or tuple((n,) for n in cube.shape)
    return {
        "shape": dict(cube.sizes),
        "dtype": str(cube.dtype),
        "crs": cube.rio.crs.to_string(),
        "resolution": abs(float(cube.rio.transform().a)),
        "chunk": [max(c) for c in chunks],
        "chunks": int(cube.data.npartitions) if cube.chunks else 1,
        "mpix": cube.size / 1e6,
        "products": int(sum(len(str(p).split("\n")) for p in cube.product_path.values)),
    }


def _summary(cube: xr.DataArray) -> str:
    return (
        f"{cube.sizes['time']} time steps x {cube.sizes['band']} bands x {cube.sizes['y']} x "
        f"{cube.sizes['x']} px ({cube.size / 1e6:.1f} MPix), {cube.rio.crs}"
    )


def _line(phase: Phase) -> str:
    rate = phase.mpix_per_s
    workers = f", {phase.workers} worker{'s' if phase.workers != 1 else ''}"
    return f"{phase.name}{workers if phase.workers else ''}: {phase.median:.2f} s" + (
        f", {rate:.1f} MPix/s" if rate is not None else ""
    )


def _total(options: BenchOptions, n: int) -> int:
    """Phases a run goes through (for the progress bar)."""
    rounds = options.rounds
    total = rounds * (2 if "decode" in options.skip else 3)  # plan, decode limit, ingest
    total += sum(1 for name in OPERATIONS if name not in options.skip)
    if "scaling" not in options.skip:
        total += rounds * (len(scaling_steps(n)) - 1)
    return total


class _Progress:
    """A bar over the phases and, below it, one over the current phase's tasks."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = tqdm(total=total, desc="bench", unit="phase", disable=not enabled,
                        file=sys.stderr, position=0)  # fmt: skip
        self._inner: Any = None

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close_inner()
        self.bar.close()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Mark ``name`` as the running phase; counted as done when the block ends."""
        self.bar.set_description(name)
        try:
            yield
        finally:
            self._close_inner()
            self.bar.update()

    def echo(self, echo: Echo, line: str) -> None:
        """``echo(line)`` with the bars out of its way."""
        with tqdm.external_write_mode(file=sys.stderr):
            echo(line)

    def tasks(self, unit: str) -> Callable[[int, int], None]:
        """A ``callback(done, total)`` moving a bar over the current phase's ``unit``."""

        def update(done: int, total: int) -> None:
            if self._inner is None:
                self._inner = tqdm(total=total, unit=unit, leave=False, disable=not self.enabled,
                                   file=sys.stderr, position=1)  # fmt: skip
            self._inner.update(done - self._inner.n)

        return update

    def _close_inner(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None
