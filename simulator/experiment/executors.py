"""Where a sweep's runs execute: a local process pool, or a dask.distributed cluster.

Both executors take the same jobs — ``(name, function, args)`` — and yield ``(name, outcome)``
in completion order, where the outcome is what the function returned or the exception that
kept it from returning (a worker process that died, a task the cluster gave up on). The job
function is expected to catch its own errors; an exception here is a failure of the machinery.

Worker processes are started with ``spawn`` (never ``fork``: the parent has already used torch's
thread pools, which do not survive a fork), use one torch thread each (one process per core is
the parallelism), and — for processes this module starts — die with the parent, even on
``kill -9`` (Linux ``PR_SET_PDEATHSIG``), so that no orphan keeps writing into a sweep that is
restarted.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import multiprocessing
import os
import signal
import sys
import uuid
from typing import Any, Callable, Iterable, Iterator, Literal, Protocol

from simulator.errors import ScenarioError

Job = tuple[str, Callable[..., Any], tuple]
EXECUTORS = ("local", "dask")


def _plural(n: int, noun: str, suffix: str = "s") -> str:
    return f"{n} {noun}{suffix * (n != 1)}"


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; a no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before the call: nobody will send the signal
        os._exit(1)


def worker_setup() -> None:
    """Setup of a worker process this module starts: one thread for torch and BLAS, die with the parent.

    One thread each, because the workers are the parallelism: OpenBLAS (numpy, scipy) would
    otherwise start a thread per core in every worker, and N workers would run N × cores
    threads on the cores.
    """
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(limits=1)
    die_with_parent()


class Executor(Protocol):
    """A context manager that runs jobs and yields their outcomes as they complete."""

    workers: int
    description: str

    def __enter__(self) -> "Executor": ...

    def __exit__(self, *exc: object) -> None: ...

    def run(self, jobs: Iterable[Job]) -> Iterator[tuple[str, Any]]: ...


class LocalExecutor:
    """A :class:`concurrent.futures.ProcessPoolExecutor` of ``workers`` spawned processes.

    Parameters
    ----------
    workers : int
        Worker processes (default: the usable cores).
    """

    def __init__(self, workers: int | None = None):
        self.workers = workers or default_workers()
        self._pool: cf.ProcessPoolExecutor | None = None
        self.description = f"local process pool, {_plural(self.workers, 'worker')}"

    def __enter__(self) -> "LocalExecutor":
        self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=worker_setup)
        return self

    def __exit__(self, *exc: object) -> None:
        # Runs in progress finish and publish (seconds); queued ones are dropped.
        self._pool.shutdown(wait=True, cancel_futures=True)

    def run(self, jobs: Iterable[Job]) -> Iterator[tuple[str, Any]]:
        futures = {self._pool.submit(fn, *args): name for name, fn, args in jobs}
        for future in cf.as_completed(futures):
            try:
                outcome = future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. BrokenProcessPool: reported per job
                outcome = exc
            yield futures[future], outcome


class DaskExecutor:
    """A :class:`distributed.Client` on an existing scheduler, or on a fresh ``LocalCluster``.

    Parameters
    ----------
    workers : int, optional
        Worker processes of the LocalCluster (one thread each; default: the usable cores).
        Ignored with ``scheduler``.
    scheduler : str, optional
        Address of a running scheduler (``tcp://HOST:PORT``). Its workers must see the same
        ``RELCOMM_HOME`` and the sweep's output folder (a shared file system) and should run one
        thread per process (``dask worker ADDR --nthreads 1``).
    """

    def __init__(self, workers: int | None = None, scheduler: str | None = None):
        self.scheduler = scheduler
        self.workers = workers or default_workers()
        self._cluster = None
        self.client = None
        """The :class:`distributed.Client` while entered."""
        self.description = (f"dask scheduler {scheduler}" if scheduler else
                            f"dask LocalCluster, {_plural(self.workers, 'worker process', 'es')}")

    def __enter__(self) -> "DaskExecutor":
        from distributed import Client, LocalCluster, WorkerPlugin

        class _Setup(WorkerPlugin):
            name = "relcomm-worker-setup"

            def setup(self, worker: Any) -> None:
                worker_setup()

        if self.scheduler is None:
            # The scheduler always serves HTTP; port 0 takes a free one (8787 may belong to another cluster).
            self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                         host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=40)
            self.client = Client(self._cluster)
            self.client.register_plugin(_Setup())
        else:
            try:
                self.client = Client(self.scheduler, timeout="20s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise ScenarioError(f"cannot reach the dask scheduler: {exc}", path="--scheduler") from None
            self.workers = len(self.client.scheduler_info().get("workers", {})) or self.workers
            self.description = f"dask scheduler {self.scheduler}, {_plural(self.workers, 'worker')}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def run(self, jobs: Iterable[Job]) -> Iterator[tuple[str, Any]]:
        from distributed import as_completed

        # The key names the run (readable in the dashboard); the nonce keeps a restarted sweep
        # from attaching to a task a dead client left behind on a shared scheduler.
        nonce = uuid.uuid4().hex[:8]
        futures = {self.client.submit(fn, *args, key=f"relcomm-{name}-{nonce}", pure=False): name
                   for name, fn, args in jobs}
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: reported per job
                outcome = exc
            future.release()
            yield futures[future], outcome


def open_executor(kind: Literal["local", "dask"] = "local", workers: int | None = None,
                  scheduler: str | None = None) -> Executor:
    """The executor named ``kind`` (not yet entered)."""
    if workers is not None and workers < 1:
        raise ScenarioError(f"must be at least 1, got {workers}", path="--workers")
    if kind == "local":
        if scheduler is not None:
            raise ScenarioError("--scheduler needs --executor dask", path="--scheduler")
        return LocalExecutor(workers)
    if kind == "dask":
        return DaskExecutor(workers, scheduler)
    raise ScenarioError(f"unknown executor {kind!r} (known: {', '.join(EXECUTORS)})", path="--executor")


__all__ = ["Executor", "LocalExecutor", "DaskExecutor", "open_executor", "default_workers", "die_with_parent",
           "worker_setup", "EXECUTORS"]
