import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mflow_sbi.data import EventStream, load_any, stream_moments
from mflow_sbi.data.root_write import write_delphes
from mflow_sbi.errors import InputError


@pytest.fixture
def two_files(tmp_path, lhc_like):
    photons, jets, theta = lhc_like
    half = len(photons) // 2
    paths = [write_delphes(tmp_path / f"part{i}.root", photons[s], jets[s], theta[s], ["a", "b"], rng=i,
                           dtype=np.float64, batch_events=200)
             for i, s in enumerate((slice(0, half), slice(half, None)))]
    return paths, str(tmp_path / "part*.root")


def _collect(stream):
    batches = list(stream)
    return batches, np.concatenate([b[0].numpy() for b in batches]), np.concatenate([b[1].numpy() for b in batches])


def test_streaming_equals_a_one_shot_read(two_files):
    paths, pattern = two_files
    one_shot = load_any(paths, "delphes", require_theta=True)
    stream = EventStream(pattern, "delphes", batch_size=64, step_size=100, dtype=torch.float64)
    batches, x, theta = _collect(stream)
    np.testing.assert_array_equal(x, one_shot.x)
    np.testing.assert_array_equal(theta, one_shot.theta)
    # batches are full except the very last, although chunks (100 entries) are not multiples of 64
    assert all(len(b[0]) == 64 for b in batches[:-1]) and len(batches[-1][0]) == len(x) - 64 * (len(batches) - 1)
    assert stream.stats.selected == stream.stats.read == len(x)
    # a size string also works as step size
    np.testing.assert_array_equal(_collect(EventStream(paths, "delphes", step_size="1 MB",
                                                       dtype=torch.float64))[1], one_shot.x)


def test_shuffling_is_a_reproducible_permutation_within_chunks(two_files):
    paths, _ = two_files
    _, plain, _ = _collect(EventStream(paths, batch_size=50, step_size=300, dtype=torch.float64))
    first = EventStream(paths, batch_size=50, step_size=300, shuffle_seed=3, dtype=torch.float64)
    _, shuffled, _ = _collect(first)
    _, again, _ = _collect(EventStream(paths, batch_size=50, step_size=300, shuffle_seed=3, dtype=torch.float64))
    _, second_pass, _ = _collect(first)
    np.testing.assert_array_equal(shuffled, again)
    assert not np.array_equal(shuffled, plain) and not np.array_equal(second_pass, shuffled)
    order = np.lexsort(plain.T)
    np.testing.assert_array_equal(np.sort(shuffled[:300], axis=0), np.sort(plain[:300], axis=0))
    np.testing.assert_array_equal(shuffled[np.lexsort(shuffled.T)], plain[order])


def test_moments_and_standardization(two_files):
    paths, _ = two_files
    data = load_any(paths, require_theta=True)
    moments = stream_moments(paths, step_size=77)
    assert moments.count == len(data.x)
    np.testing.assert_allclose(moments.mean_x, data.x.mean(axis=0), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(moments.std_x, data.x.std(axis=0), rtol=1e-10)
    np.testing.assert_allclose(moments.std_theta, data.theta.std(axis=0), rtol=1e-10)
    sample = stream_moments(paths, step_size=100, max_events=250)
    assert sample.count == 300  # whole chunks
    np.testing.assert_allclose(sample.mean_x, data.x[:300].mean(axis=0), rtol=1e-10, atol=1e-9)
    stream = EventStream(paths, step_size=100, dtype=torch.float64, x_moments=(moments.mean_x, moments.std_x),
                         theta_moments=(moments.mean_theta, moments.std_theta))
    _, x, theta = _collect(stream)
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(x.std(axis=0), 1.0, rtol=1e-9)
    np.testing.assert_allclose(theta.std(axis=0), 1.0, rtol=1e-9)


def test_dataloader_workers_share_the_files(two_files):
    paths, _ = two_files
    loader = DataLoader(EventStream(paths, batch_size=100, step_size=250), batch_size=None, num_workers=2)
    x = torch.cat([batch[0] for batch in loader]).numpy()
    expected = load_any(paths).x.astype(np.float32)
    assert x.shape == expected.shape
    np.testing.assert_array_equal(x[np.lexsort(x.T)], expected[np.lexsort(expected.T)])


def test_stream_validation(two_files):
    paths, _ = two_files
    with pytest.raises(InputError, match="batch_size must be positive"):
        EventStream(paths, batch_size=0)
    observed = EventStream(paths, require_theta=False, fmt={"tree": "Delphes", "columns": ["Weight"], "parameters": []})
    assert all(len(batch) == 1 for batch in observed)


def test_skip_leaves_out_the_first_selected_events(two_files):
    paths, _ = two_files
    one_shot = load_any(paths, "delphes", require_theta=True)
    skipped = EventStream(paths, "delphes", batch_size=64, step_size=100, dtype=torch.float64, skip=250)
    np.testing.assert_array_equal(_collect(skipped)[1], one_shot.x[250:])
    with pytest.raises(InputError, match="skip must be >= 0"):
        EventStream(paths, skip=-1)
