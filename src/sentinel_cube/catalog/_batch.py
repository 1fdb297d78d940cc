"""Run product downloads in parallel with progress bars; wait for offline products.

Shared by the catalogues that download with our own
:class:`~sentinel_cube.catalog._download.FileDownloader` (CDSE, STAC):

* :class:`Batch` runs one job per product in a thread pool of ``max_workers``,
  shows a bar of bytes per product and a bar of products for the whole batch,
  and sorts each outcome into a :class:`DownloadResult`.
* :meth:`Batch.wait_offline` polls offline products (whose retrieval has been
  ordered) until they come online, then submits them, or gives up at the timeout
  and reports them as pending.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from tqdm.auto import tqdm

from ..exceptions import SentinelCubeError
from ._download import describe
from ._errors import ProductOfflineError
from ._result import DownloadResult
from ._safe_parts import ProgressSink

__all__ = ["Batch", "ProductBar"]

#: A job downloads one product and returns (path, whether anything was fetched).
Job = Callable[["ProductBar"], tuple[Path, bool]]


class ProductBar(ProgressSink):
    """A byte progress bar for one product, created when its size is known."""

    def __init__(self, label: str, enabled: bool, position: int) -> None:
        self._label = label
        self._enabled = enabled
        self._position = position
        self._bar: tqdm | None = None
        self._lock = threading.Lock()

    def set_total(self, total: int | None) -> None:
        with self._lock:
            if self._bar is None:
                self._bar = tqdm(
                    total=total, desc=self._label[:40], unit="B", unit_scale=True,
                    unit_divisor=1024, leave=False, disable=not self._enabled,
                    position=self._position,
                )  # fmt: skip
            else:
                self._bar.total = total
                self._bar.refresh()

    def update(self, count: int) -> None:
        if self._bar is None:
            self.set_total(None)
        with self._lock:
            assert self._bar is not None
            self._bar.update(count)

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()


class Batch:
    """Download products concurrently and collect a :class:`DownloadResult`.

    Parameters
    ----------
    total : int
        Number of products, for the batch bar.
    max_workers : int
        Products downloaded at once.
    progress : bool
        Show progress bars (tqdm).
    desc : str
        Label of the batch bar.
    result : DownloadResult, optional
        Where outcomes go (products already in it count as done); default a new one.

    Examples
    --------
    >>> with Batch(total=1, max_workers=1, progress=False) as batch:     # doctest: +SKIP
    ...     batch.submit("S2B_X", lambda bar: (Path("S2B_X.zip"), True))
    >>> batch.result.downloaded                                         # doctest: +SKIP
    {'S2B_X': PosixPath('S2B_X.zip')}
    """

    def __init__(
        self,
        total: int,
        max_workers: int,
        progress: bool,
        desc: str = "products",
        *,
        result: DownloadResult | None = None,
    ) -> None:
        self.result = result if result is not None else DownloadResult()
        settled = self.result
        done = (len(settled.downloaded) + len(settled.skipped) + len(settled.pending)
                + len(settled.failed))  # fmt: skip
        self._progress = progress
        self._workers = max(1, max_workers)
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="dl")
        self._futures: list[Future] = []
        # products already settled (complete on disk, bad names) count as done
        self._bar = tqdm(total=total + done, initial=done, desc=desc, unit="product",
                         disable=not progress)  # fmt: skip
        self._lock = threading.Lock()
        self._slots = 0

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            for future in self._futures:
                future.result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=exc[0] is not None)
            self._bar.close()

    def skip(self, product_id: str, path: Path) -> None:
        """Record a product found complete on disk."""
        self._settle(self.result.skipped, product_id, path)

    def fail(self, product_id: str, reason: str) -> None:
        """Record a product that cannot be downloaded."""
        self._settle(self.result.failed, product_id, reason)

    def pend(self, product_id: str, reason: str) -> None:
        """Record an offline product that is not downloaded (yet)."""
        self._settle(self.result.pending, product_id, reason)

    def _settle(self, outcomes: dict, product_id: str, value: object) -> None:
        with self._lock:
            outcomes[product_id] = value
            self._bar.update(1)

    def submit(self, product_id: str, job: Job) -> None:
        """Run ``job`` in the pool and file its outcome under ``product_id``."""
        with self._lock:
            position = 1 + self._slots % self._workers
            self._slots += 1
        self._futures.append(self._pool.submit(self._run, product_id, job, position))

    def _run(self, product_id: str, job: Job, position: int) -> None:
        bar = ProductBar(product_id, self._progress, position)
        try:
            path, fetched = job(bar)
        except ProductOfflineError as error:
            self.pend(product_id, str(error))
        except SentinelCubeError as error:
            self.fail(product_id, str(error))
        except Exception as error:  # noqa: BLE001 - one product must not stop the batch
            self.fail(product_id, describe(error))
        else:
            self._settle(
                self.result.downloaded if fetched else self.result.skipped, product_id, path
            )
        finally:
            bar.close()

    def wait_offline(
        self,
        offline: dict[str, Callable[[], bool]],
        start: Callable[[str], None],
        *,
        timeout: float,
        poll_interval: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, str]:
        """Poll offline products until online (then ``start`` them) or the timeout.

        Parameters
        ----------
        offline : dict
            Product id -> callable telling whether it is online now.
        start : callable
            Called with a product id once it is online (usually submits its job).
        timeout, poll_interval : float
            Seconds.

        Returns
        -------
        dict
            Product id -> reason, for products still offline at the timeout.
        """
        waiting = dict(offline)
        deadline = time.monotonic() + timeout
        errors: dict[str, str] = {}
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sleep(min(poll_interval, remaining))
            for product_id, is_online in list(waiting.items()):
                try:
                    online = is_online()
                except SentinelCubeError as error:
                    errors[product_id] = str(error)
                    continue
                if online:
                    del waiting[product_id]
                    start(product_id)
        return {
            pid: f"still offline after waiting {timeout:g} s"
            + (f" (last poll failed: {errors[pid]})" if pid in errors else "")
            + "; its retrieval is ordered - run the same download again later"
            for pid in waiting
        }
