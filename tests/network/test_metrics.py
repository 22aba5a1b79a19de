"""Bounded-memory metrics: the log histogram's quantile error and the streamed CSV files."""

import csv
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.network.metrics import CsvStream, LogHistogram
from simulator.rng import SeedTree

REL_ERR = 10 ** (1 / 2000) - 1  # half a bin, relative


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=1e-8, max_value=1e5), min_size=1, max_size=300),
       st.sampled_from([0.5, 0.9, 0.95, 0.99]))
def test_quantile_within_half_a_bin_of_the_nearest_rank(values, q):
    h = LogHistogram()
    for v in values:
        h.add(v)
    exact = sorted(values)[max(1, math.ceil(q * len(values))) - 1]
    assert abs(h.quantile(q) / exact - 1) <= REL_ERR * (1 + 1e-9)


def test_zero_empty_and_memory_independent_of_count():
    h = LogHistogram()
    assert h.quantile(0.95) is None
    size = h.counts.nbytes
    for v in SeedTree(0).child("delays").numpy().exponential(1e-3, 100_000):
        h.add(float(v))
    assert h.counts.nbytes == size and h.n == 100_000
    z = LogHistogram()
    for v in (0.0, 0.0, 1.0):
        z.add(v)
    assert z.quantile(0.5) == 0.0 and abs(z.quantile(1.0) - 1.0) <= REL_ERR * (1 + 1e-9)


def test_csv_stream_appears_only_when_closed(tmp_path):
    s = CsvStream(tmp_path / "x.csv", ["a", "b"])
    s.writerow([1, 2.5])
    s.writerows([(3, None), (4, "z")])
    assert not (tmp_path / "x.csv").exists() and s.tmp.exists()
    s.close()
    with open(tmp_path / "x.csv") as fh:
        assert list(csv.reader(fh)) == [["a", "b"], ["1", "2.5"], ["3", ""], ["4", "z"]]
    assert not s.tmp.exists()
    t = CsvStream(tmp_path / "y.csv", ["a"])
    t.abort()
    assert not list(tmp_path.glob("*y.csv*"))
