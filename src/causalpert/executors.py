"""Executors for benchmark sweeps: run independent jobs, return their results in job order.

An executor is a function ``(fn, jobs, *, workers, address, on_done) -> list`` that returns
``[fn(job) for job in jobs]`` — in the order of ``jobs`` whatever order they finish in — and
calls ``on_done(job, result)`` in the calling process as each one finishes (progress, and the
runner's job files, which so land on the caller's disk even when Ray runs the jobs on other
machines). Pool processes and Ray tasks run torch on one thread; a job's numbers depend only
on its seed (and the thread count: run the serial local executor with one thread, e.g.
``OMP_NUM_THREADS=1``, to compare bit for bit).

- ``"local"``: in this process (``workers=1``) or a pool of ``workers`` processes.
- ``"ray"``: one Ray task per job (1 CPU each) on a local Ray instance or the cluster at
  ``address``. An already initialised Ray (``ray.init`` by the caller) is used as is; otherwise
  this starts one and shuts it down afterwards. On a cluster, the workers need causalpert
  installed (or a ``runtime_env``, set up by the caller's ``ray.init``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Executor = Callable[..., list]


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _noop(job, result) -> None:
    return None


def run_local(fn: Callable, jobs: Sequence, *, workers: int = 1, address: str | None = None,
              on_done: Callable = _noop) -> list:
    """Serial (``workers=1``) or a process pool of ``workers`` one-thread processes."""
    if address is not None:
        raise ValueError("--address is for the ray executor; the local executor takes --workers")
    if workers < 1:
        raise ValueError(f"workers must be ≥ 1, got {workers}")
    out: list = [None] * len(jobs)
    if workers == 1:
        for i, job in enumerate(jobs):
            out[i] = fn(job)
            on_done(job, out[i])
        return out
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(workers, initializer=_one_thread) as pool:
        futures = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
        try:
            for future in as_completed(futures):  # on_done as each finishes, not in job order
                i = futures[future]
                out[i] = future.result()  # placed by job index: the order of ``jobs``
                on_done(jobs[i], out[i])
        except BaseException:
            pool.shutdown(cancel_futures=True)  # fail now, not after the queued jobs
            raise
    return out


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ImportError('the ray executor needs Ray: pip install "causalpert[ray]"') from exc
    return ray


def _ray_call(fn: Callable, job):
    _one_thread()
    return fn(job)


def run_ray(fn: Callable, jobs: Sequence, *, workers: int = 1, address: str | None = None,
            on_done: Callable = _noop) -> list:
    """One Ray task (1 CPU) per job; ``workers`` is ignored (Ray schedules by free CPUs)."""
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1)(_ray_call)
        pending = {task.remote(fn, job): i for i, job in enumerate(jobs)}
        out: list = [None] * len(jobs)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(done[0])
            out[i] = ray.get(done[0])  # placed by job index: order independent of completion
            on_done(jobs[i], out[i])
        return out
    finally:
        if started:
            ray.shutdown()


EXECUTORS: dict[str, Executor] = {"local": run_local, "ray": run_ray}


def get_executor(name: str) -> Executor:
    """The executor registered as ``name``."""
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; choose from {sorted(EXECUTORS)}")
    return EXECUTORS[name]
