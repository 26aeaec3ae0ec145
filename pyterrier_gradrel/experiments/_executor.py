"""Where an experiment's conditions run: one after the other here (``local``) or as Ray tasks (``ray``).

A task is one condition: a function that writes the condition's run folder atomically (as the runner
does in one process), so a task that is lost or repeated leaves either a complete folder or none. The
executor only decides where and when tasks run and reports each one's outcome; the runner decides what
is reused, counted and reported.

Ray (``pip install 'pyterrier-gradrel[ray]'``): ``ray.init(address)`` attaches to a running cluster
(``address`` or ``$RAY_ADDRESS``) or starts a local one. Each task asks for ``num_gpus=1`` where the
cluster has GPUs (with ``max_calls=1``, so a worker's CUDA memory is returned after each condition),
else ``num_cpus`` = the configured training threads. A worker that dies (SIGKILL, OOM killer, a lost
node) is retried up to ``max_retries`` times and the condition resumes from its training checkpoint; an
exception raised by the condition itself is not retried (it would fail the same way again) and is
reported once. Tasks of a later stage start when every task of the earlier stages has finished: the
baselines build the BM25 indexes and the zero-shot pool vectors that fine-tuned conditions read.
"""
from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

EXECUTORS = ("local", "ray")
RAY_INSTALL_HINT = "pip install 'pyterrier-gradrel[ray]'  (or: pip install 'ray>=2.9')"


@dataclass(frozen=True)
class Task:
    """One unit of work: ``fn(*args)``.

    Attributes:
        key: names the task in outcomes and errors (the run key).
        fn: the work; its return value is ignored.
        args: ``fn``'s arguments (sent to the worker by value under Ray).
        stage: tasks of stage ``n`` start after every task of stages ``< n`` has finished.
        gpu: whether the task gets a GPU where the cluster has them.
    """

    key: str
    fn: Callable[..., Any]
    args: tuple = ()
    stage: int = 0
    gpu: bool = True


@dataclass
class Outcome:
    """How a task ended: ``error`` is ``None`` on success, else the failure's traceback text."""

    task: Task
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the task finished without an error."""
        return self.error is None


@dataclass
class LocalExecutor:
    """Run tasks one after the other in this process, in the given order (stages are already ordered)."""

    def run(self, tasks: Sequence[Task], *, started: Callable[[Task], None] | None = None) -> Iterator[Outcome]:
        """Run ``tasks``; yields each one's :class:`Outcome` as it ends (an error does not stop the rest)."""
        for task in sorted(tasks, key=lambda t: t.stage):  # stable: the given order within a stage
            if started is not None:
                started(task)
            t0 = time.time()
            try:
                task.fn(*task.args)
            except Exception:  # noqa: BLE001  (recorded in the outcome; the other tasks still run)
                yield Outcome(task, time.time() - t0, traceback.format_exc())
            else:
                yield Outcome(task, time.time() - t0)


def _call(fn: Callable[..., Any], *args: Any) -> float:
    """The Ray task body: run ``fn`` and return its seconds."""
    t0 = time.time()
    fn(*args)
    return time.time() - t0


@dataclass
class RayExecutor:
    """Run tasks as Ray tasks, in parallel within a stage.

    Args:
        address: the cluster to attach to (``ray://host:10001``, ``host:6379``, ``auto``); default
            ``$RAY_ADDRESS``, else a local cluster is started on this machine (and shut down afterwards).
        threads: CPUs per task on a cluster without GPUs (torch threads of one condition).
        max_retries: how often a task whose worker died is started again.
        init_kwargs: more ``ray.init`` arguments (e.g. ``num_cpus``, ``runtime_env``) when this executor
            connects; ignored when Ray is already initialised in this process.
    """

    address: str | None = None
    threads: int = 1
    max_retries: int = 3
    init_kwargs: dict[str, object] = field(default_factory=dict)

    def run(self, tasks: Sequence[Task], *, started: Callable[[Task], None] | None = None) -> Iterator[Outcome]:
        """Submit ``tasks`` stage by stage; yields each one's :class:`Outcome` as it ends, in completion order."""
        ray = import_ray()
        owned = not ray.is_initialized()
        if owned:
            ray.init(address=self.address or os.environ.get("RAY_ADDRESS") or None, **self.init_kwargs)
        try:
            gpus = ray.cluster_resources().get("GPU", 0) > 0
            body = ray.remote(_call)
            shared: dict[int, Any] = {}  # one object-store copy of an argument that many tasks share

            def ref(arg: Any) -> Any:
                if id(arg) not in shared:
                    shared[id(arg)] = ray.put(arg)
                return shared[id(arg)]

            for stage in sorted({t.stage for t in tasks}):
                pending: dict[Any, tuple[Task, float]] = {}
                for task in (t for t in tasks if t.stage == stage):
                    options: dict[str, Any] = {"max_retries": self.max_retries, "retry_exceptions": False,
                                               "num_cpus": self.threads}
                    if gpus and task.gpu:
                        options.update(num_gpus=1, max_calls=1)
                    future = body.options(**options).remote(task.fn, *(ref(a) for a in task.args))
                    pending[future] = (task, time.time())
                    if started is not None:
                        started(task)
                while pending:
                    done, _ = ray.wait(list(pending), num_returns=1)
                    task, t0 = pending.pop(done[0])
                    try:
                        seconds = float(ray.get(done[0]))
                    except Exception as e:  # noqa: BLE001  (a task error or a worker lost max_retries + 1 times)
                        yield Outcome(task, time.time() - t0, f"{type(e).__name__}: {e}")
                    else:
                        yield Outcome(task, seconds)
        finally:
            if owned:
                ray.shutdown()


def import_ray() -> Any:
    """``import ray``, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(f"the 'ray' executor needs Ray, which is not installed: {RAY_INSTALL_HINT}") from e
    return ray


def make_executor(name: str = "local", *, address: str | None = None, threads: int = 1) -> LocalExecutor | RayExecutor:
    """The executor called ``name`` (one of :data:`EXECUTORS`); for ``ray``, checks that Ray is installed."""
    if name == "local":
        if address:
            raise ValueError(f"--address {address!r} is for the 'ray' executor; the local executor runs here")
        return LocalExecutor()
    if name == "ray":
        import_ray()
        return RayExecutor(address=address, threads=threads)
    raise ValueError(f"executor must be one of {list(EXECUTORS)}, got {name!r}")
