"""ROOT I/O benchmark: read + feature throughput, and peak memory while streaming.

Writes an LHC-like Delphes file (two photons and two jets per event plus the extra softer objects,
float32 branches) of ``--events`` events, then measures

- write rate of :func:`mflow_sbi.data.write_delphes`;
- events per second read and turned into the 40 features with the ``delphes`` preset, in one shot
  (``load_any``) and streamed in chunks of ``--chunk`` entries (``EventStream``, batches consumed),
  best of three runs;
- peak traced memory (``tracemalloc``: numpy/awkward buffers and Python objects) of reading a single
  chunk, of streaming the whole file (``--events`` / ``--chunk`` chunks), and of the one-shot read.

Streaming should stay near one chunk while the one-shot read grows with the file. Results go to
``benchmarks/results/root.json``. Usage: ``python -m benchmarks.bench_root [--events N] [--chunk N]``.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch

from mflow_sbi.data import EventStream, kinematics, load_any, write_delphes
from mflow_sbi.data.root_read import iterate_root, open_sources
from mflow_sbi.io import save_json

RESULTS = Path(__file__).resolve().parent / "results" / "root.json"


def lhc_like(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Photons and jets (n, 2, 4) inside the delphes preset's acceptance, ordered by pT; theta (n, 2)."""
    rng = np.random.default_rng(seed)

    def objects(max_abs_eta: float, massive: bool) -> np.ndarray:
        pt = -np.sort(-(20.0 + rng.exponential(40.0, (n, 2))), axis=1) + 1.0
        mass = rng.uniform(2.0, 30.0, (n, 2)) if massive else np.zeros((n, 2))
        return kinematics.from_pt_eta_phi_m(pt, rng.uniform(-max_abs_eta, max_abs_eta, (n, 2)),
                                            rng.uniform(-np.pi, np.pi, (n, 2)), mass)

    return objects(2.4, False), objects(4.8, True), rng.normal(size=(n, 2))


def _timed(function, repeat: int = 1):
    """The result of ``function`` and its best wall time over ``repeat`` calls (the machine is shared)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return result, best


def _peak_mib(function) -> float:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _stream_all(path: Path, chunk: int) -> int:
    return sum(len(batch[0]) for batch in EventStream(path, "delphes", batch_size=1024, step_size=chunk))


def _first_chunk(path: Path, chunk: int) -> int:
    return len(next(iterate_root(open_sources([path], "delphes"), chunk)).x)


def run(events: int, chunk: int, seed: int) -> dict:
    photons, jets, theta = lhc_like(events, seed)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.root"
        start = time.perf_counter()
        write_delphes(path, photons, jets, theta, ["theta_0", "theta_1"], rng=seed)
        write_s = time.perf_counter() - start
        del photons, jets, theta  # not counted in the memory peaks below
        size_mib = path.stat().st_size / 2**20
        data, oneshot_s = _timed(lambda: load_any(path, "delphes"), repeat=3)
        n_selected = len(data.x)
        del data
        streamed, stream_s = _timed(lambda: _stream_all(path, chunk), repeat=3)
        assert streamed == n_selected
        peaks = {
            "one_chunk": _peak_mib(lambda: _first_chunk(path, chunk)),
            "streaming": _peak_mib(lambda: _stream_all(path, chunk)),
            "one_shot": _peak_mib(lambda: load_any(path, "delphes")),
        }
    return {
        "events": events,
        "selected": n_selected,
        "chunk_entries": chunk,
        "chunks": -(-events // chunk),
        "file_mib": round(size_mib, 2),
        "write_events_per_s": round(events / write_s),
        "read_events_per_s": {"one_shot": round(events / oneshot_s), "streaming": round(events / stream_s)},
        "peak_traced_mib": {k: round(v, 1) for k, v in peaks.items()},
        "streaming_peak_over_one_chunk": round(peaks["streaming"] / peaks["one_chunk"], 2),
        "one_shot_peak_over_one_chunk": round(peaks["one_shot"] / peaks["one_chunk"], 2),
        "machine": {"python": platform.python_version(), "torch_threads": torch.get_num_threads(),
                    "processor": platform.machine()},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--chunk", type=int, default=20_000, help="entries per streamed chunk")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args.events, args.chunk, args.seed)
    save_json(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
