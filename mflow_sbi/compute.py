"""Where fan-out work runs: independent tasks (simulation chunks, calibration data sets) as Dask tasks.

The ``[compute]`` table (:class:`ComputeConfig`) and ``--scheduler`` choose the Dask scheduler:

    "local"          a :class:`distributed.LocalCluster` sized to the machine (one single-threaded worker
                     process per available core), started for the job and closed after it (the default)
    "threads"        Dask's thread pool in this process
    "synchronous"    one task after the other in this process (for debugging; the serial path)
    "tcp://HOST:PORT"  an existing Dask cluster's scheduler, e.g. dask-jobqueue's SLURMCluster or
                     HTCondorCluster (docs/scaling.md)

Tasks are plain functions of their arguments with their own seeds, so a result never depends on the scheduler,
the number of workers or the order in which tasks finish. dask and distributed are imported on use.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from mflow_sbi.errors import ConfigError
from mflow_sbi.schema import Rule, Table, setting

SCHEDULERS = ("local", "threads", "synchronous")
DEFAULT_SCHEDULER = "local"
_ADDRESS = re.compile(r"^tcp://[^\s:/]+:\d+$")


def is_scheduler(value: object) -> bool:
    """True for "local", "threads", "synchronous" and scheduler addresses ``tcp://HOST:PORT``."""
    return isinstance(value, str) and (value in SCHEDULERS or bool(_ADDRESS.match(value)))


SCHEDULER = Rule(f"one of {SCHEDULERS} or a scheduler address 'tcp://HOST:PORT'", is_scheduler)


def check_scheduler(scheduler: object) -> None:
    """A ConfigError naming ``scheduler`` unless :func:`is_scheduler` accepts it (checked before any output)."""
    if not is_scheduler(scheduler):
        raise ConfigError(f"compute.scheduler must be {SCHEDULER.allowed}, got {scheduler!r}")


@dataclass
class ComputeConfig(Table):
    """The ``[compute]`` table: ``scheduler`` (see the module docstring)."""

    TABLE = "compute"

    scheduler: str = setting(DEFAULT_SCHEDULER, SCHEDULER)


def machine_cores() -> int:
    """Cores this process may run on (the CPU affinity where the OS reports it)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Warnings only from ``logger_name`` for the block (Dask's cluster start and stop chatter at INFO)."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


Runner = Callable[[Callable[..., Any], Sequence[tuple]], list]


@contextlib.contextmanager
def dask_runner(scheduler: str = DEFAULT_SCHEDULER) -> Iterator[Runner]:
    """A function ``run(fn, argument_tuples) -> [fn(*a) for a in argument_tuples]`` that computes the calls
    as Dask tasks on ``scheduler`` (results in the order of the arguments); a local cluster lives as long as
    the block. A ConfigError names a bad scheduler value or an address that cannot be reached."""
    check_scheduler(scheduler)
    import dask

    def compute_with(**options) -> Runner:
        def run(fn: Callable[..., Any], arguments: Sequence[tuple]) -> list:
            tasks = [dask.delayed(fn, pure=False)(*args) for args in arguments]
            return list(dask.compute(*tasks, **options))

        return run

    if scheduler in ("threads", "synchronous"):
        yield compute_with(scheduler=scheduler)
        return
    from distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        stack.enter_context(_quiet("distributed"))
        stack.enter_context(dask.config.set({"logging.distributed": "warning"}))  # passed on to local workers
        if scheduler == "local":
            cluster = stack.enter_context(LocalCluster(n_workers=machine_cores(), threads_per_worker=1,
                                                       processes=True, dashboard_address=None))
            client = stack.enter_context(Client(cluster))
        else:
            try:
                client = stack.enter_context(Client(scheduler, timeout="20s"))
            except (OSError, TimeoutError) as err:
                raise ConfigError(f"compute.scheduler {scheduler!r}: cannot reach the Dask scheduler ({err})") from None
        yield compute_with(scheduler=client)
