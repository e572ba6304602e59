"""EventStream's ``shard`` (one rank's chunks in a data-parallel run): the ranks' chunks partition the stream,
chunk c going to rank c mod K, after the held-out ``skip`` events."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mflow_sbi.data import EventStream
from mflow_sbi.data.root_write import write_delphes
from mflow_sbi.errors import InputError


@pytest.fixture
def two_files(tmp_path, lhc_like):
    photons, jets, theta = lhc_like
    half = len(photons) // 2
    return [write_delphes(tmp_path / f"part{i}.root", photons[s], jets[s], theta[s], ["a", "b"], rng=i,
                          dtype=np.float64, batch_events=200)
            for i, s in enumerate((slice(0, half), slice(half, None)))]


def rows(stream) -> np.ndarray:
    return np.concatenate([torch.cat(batch, dim=1).numpy() for batch in stream])


@pytest.mark.parametrize("skip", [0, 130])
def test_shards_partition_the_chunks(two_files, skip):
    options = {"batch_size": 1000, "step_size": 100, "dtype": torch.float64, "skip": skip}
    whole = rows(EventStream(two_files, "delphes", **options))
    ranks = [rows(EventStream(two_files, "delphes", shard=(rank, 2), **options)) for rank in range(2)]
    assert len(ranks[0]) + len(ranks[1]) == len(whole)
    chunks = [len(r) for r in ranks]
    assert min(chunks) > 0.3 * len(whole)  # both ranks get a share
    merged = np.concatenate(ranks)
    np.testing.assert_array_equal(np.sort(merged, axis=0), np.sort(whole, axis=0))
    assert not set(map(bytes, ranks[0])) & set(map(bytes, ranks[1]))


def test_bad_shards_are_refused(two_files):
    for shard in ((2, 2), (-1, 2), (0, 0)):
        with pytest.raises(InputError, match="shard must be"):
            EventStream(two_files, "delphes", shard=shard)
