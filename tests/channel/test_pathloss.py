"""Tests of dB conversions, noise PSD, path gain and shadowing."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.channel.pathloss import (
    db_to_linear,
    dbm_to_w,
    fixed_loss_gain,
    linear_to_db,
    log_distance_gain,
    noise_psd_w_hz,
    shadowing_gain,
    w_to_dbm,
)
from simulator.rng import SeedTree


def test_reference_values():
    assert dbm_to_w(30.0) == pytest.approx(1.0, rel=1e-15)
    assert dbm_to_w(0.0) == pytest.approx(1e-3, rel=1e-15)
    assert db_to_linear(20.0) == pytest.approx(100.0, rel=1e-15)
    assert fixed_loss_gain(100.0) == pytest.approx(1e-10, rel=1e-15)
    # Thermal noise kT at 290 K is 4.00e-21 W/Hz, about -174 dBm/Hz.
    assert noise_psd_w_hz(-174.0) == pytest.approx(1.380649e-23 * 290.0, rel=0.01)
    assert linear_to_db(0.0) == -np.inf


@given(st.floats(-200.0, 200.0))
def test_db_round_trip(value_db):
    assert float(linear_to_db(db_to_linear(value_db))) == pytest.approx(value_db, abs=1e-9)
    assert float(w_to_dbm(dbm_to_w(value_db))) == pytest.approx(value_db, abs=1e-9)


def test_linear_to_db_rejects_negative():
    with pytest.raises(ValueError):
        linear_to_db([1.0, -1.0])


def test_log_distance_gain():
    pl0, n = 40.0, 3.5
    d = np.array([1.0, 10.0, 100.0, 1000.0])
    loss_db = -linear_to_db(log_distance_gain(d, reference_loss_db=pl0, exponent=n))
    np.testing.assert_allclose(loss_db, pl0 + 10.0 * n * np.arange(4), rtol=1e-12)
    # Closer than the reference distance: clamped to the reference loss.
    assert -linear_to_db(log_distance_gain(0.1, pl0, n)) == pytest.approx(pl0)
    g = log_distance_gain(20.0, pl0, 2.0, reference_distance_m=10.0)
    assert -linear_to_db(g) == pytest.approx(pl0 + 20.0 * math.log10(2.0))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(distance_m=0.0, reference_loss_db=40.0, exponent=3.0),
        dict(distance_m=-5.0, reference_loss_db=40.0, exponent=3.0),
        dict(distance_m=10.0, reference_loss_db=40.0, exponent=0.0),
        dict(distance_m=10.0, reference_loss_db=40.0, exponent=3.0, reference_distance_m=0.0),
    ],
)
def test_log_distance_gain_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        log_distance_gain(**kwargs)


def test_shadowing_is_normal_in_db():
    sigma_db, n = 8.0, 200_000
    s_db = linear_to_db(shadowing_gain(sigma_db, n, SeedTree(3).child("shadow").numpy()))
    assert abs(s_db.mean()) <= 5.0 * sigma_db / math.sqrt(n)
    # Sample variance of n Gaussians has standard deviation sigma^2 sqrt(2/(n-1)).
    assert abs(s_db.var(ddof=1) - sigma_db**2) <= 5.0 * sigma_db**2 * math.sqrt(2.0 / (n - 1))


def test_shadowing_zero_sigma_and_validation():
    gen = SeedTree(3).child("shadow").numpy()
    np.testing.assert_array_equal(shadowing_gain(0.0, (4, 2), gen), np.ones((4, 2)))
    with pytest.raises(ValueError):
        shadowing_gain(-1.0, 4, gen)
