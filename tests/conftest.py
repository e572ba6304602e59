"""Suite-wide settings: torch runs single-threaded, the fastest setting for the tiny models of the tests
(intra-op threads spin-wait on busy shared CI cores, measured up to 10-30x slower)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
