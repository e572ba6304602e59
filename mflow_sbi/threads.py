"""Temporarily set torch's intra-op thread count (used by training and inference).

Our networks are small and see small batches (inference: a few hundred rows per MCMC call), where
intra-op threading costs more than it gains; on a busy machine it can be 10-30x slower than one thread (measured:
a polynomial-surface M-flow likelihood call took 6 ms on one thread and 220 ms on two while other jobs
shared the cores).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (``None`` or 0: leave the setting alone), then restore it."""
    if not n:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
