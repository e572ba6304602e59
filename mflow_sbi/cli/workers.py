"""``mflow-sbi train --workers K``: start K local training processes, as ``torchrun --standalone
--nproc-per-node K -m mflow_sbi train ...`` would, for users who do not know torchrun.

Each process gets the environment torchrun gives (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` on a free local port) and runs the same command line
without ``--workers``; :mod:`mflow_sbi.training.distributed` takes it from there. Processes are started with
``spawn`` (fresh interpreters, safe with CUDA; this process does not import torch). When one fails the others
are stopped; the exit status is the failed process's (its one-line error is printed by rank 0, or here when
another rank failed alone).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence

WORKER_FLAG = "--workers"


def without_workers(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``--workers K`` / ``--workers=K`` taken out."""
    kept: list[str] = []
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token == WORKER_FLAG:
            skip = True
        elif not token.startswith(f"{WORKER_FLAG}="):
            kept.append(token)
    return kept


def free_port() -> int:
    """A TCP port free on the loopback interface right now (for the rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _worker(rank: int, argv: list[str], world_size: int, port: int) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size),
                       "LOCAL_WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    from mflow_sbi.cli import main

    code = main(argv)
    if code:
        sys.exit(code)


def _first_failure(processes: list) -> tuple[int, int] | None:
    """Wait until every process has ended or one has failed; (rank, exit status) of a failed one, else None."""
    from multiprocessing.connection import wait

    running = dict(enumerate(processes))
    while running:
        wait([process.sentinel for process in running.values()])
        for rank, process in list(running.items()):
            if process.exitcode is None:
                continue
            del running[rank]
            if process.exitcode != 0:
                return rank, process.exitcode
    return None


def launch(world_size: int, argv: Sequence[str]) -> int:
    """Run ``mflow-sbi ARGV`` (without ``--workers``) in ``world_size`` processes; returns the exit status.
    When one process fails the others are stopped."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # fresh interpreters: safe with CUDA and threads
    port = free_port()
    processes = [context.Process(target=_worker, args=(rank, without_workers(argv), world_size, port))
                 for rank in range(world_size)]
    for process in processes:
        process.start()
    try:
        failure = _first_failure(processes)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
    if failure is None:
        return 0
    rank, status = failure
    if status != 2:  # 2: an input error, the same on every rank, which rank 0 has printed
        print(f"mflow-sbi train: error: worker {rank} of {world_size} exited with status {status}", file=sys.stderr)
    return status if status > 0 else 1
