"""Speed of the per-slot drift-plus-penalty decision (device-slot decisions per second).

A closed loop of 1,000 devices on 4 edge servers with 48 options each (6 anchor counts ×
4 bit widths × 2 encoders): each slot draws Rayleigh fading, asks
:class:`~simulator.control.lyapunov.LyapunovController` for a decision and feeds the predicted
delay and accuracy back into the virtual queues. Three regimes:

* ``uncoupled``: server capacity never binds (every device gets its unconstrained frequency);
* ``coupled``: capacity binds on every server, server energy in the objective (price search);
* ``coupled, no server energy``: server energy left out, so the split is the square-root rule
  and the capacity always binds;
* ``coupled, 10x batch``: the coupled regime with 10,000 devices on 40 servers per call (the
  per-call NumPy overhead is shared by more devices).

Run ``python benchmarks/bench_control.py`` for a markdown table; ``run()`` returns the rows.
"""

from __future__ import annotations

import time

import numpy as np
from common import markdown_table

from simulator.control.lyapunov import LyapunovController, VirtualQueues
from simulator.rng import SeedTree

N_DEVICES = 1000
N_SERVERS = 4
N_SLOTS = 40
REPEATS = 5


def _scenario(rng: np.random.Generator, n_devices: int, n_servers: int) -> dict:
    """Static parameters of the benchmark population (SI units)."""
    anchors = np.array([8, 16, 32, 64, 128, 256], dtype=float)
    bits = np.array([1, 2, 4, 8], dtype=float)
    enc = np.array([0, 1])
    k, b, e = (a.ravel() for a in np.meshgrid(anchors, bits, enc, indexing="ij"))
    latent = np.where(e == 0, 64.0, 256.0)
    encoder_flops = np.where(e == 0, 2.0e6, 2.0e7)
    flops_per_cycle = 4.0
    tx_cycles = (encoder_flops + 2.0 * k * latent) / flops_per_cycle
    rx_cycles = (2.0 * k * 128.0 + 2.0 * 128.0 * 10.0) / flops_per_cycle * (1.0 + e)
    acc = 0.92 + 0.04 * e - 0.5 * np.exp(-k / 24.0) - 0.3 * np.exp(-b)
    distance_m = rng.uniform(30.0, 400.0, n_devices)
    path_loss_db = 128.1 + 37.6 * np.log10(distance_m / 1000.0)
    return dict(
        static=dict(
            noise_psd_w_hz=10 ** ((-174.0 - 30.0) / 10.0),
            bandwidth_hz=2.0e5,
            max_power_w=0.2,
            payload_bits=k * b + 64.0,
            tx_cycles=tx_cycles,
            rx_cycles=rx_cycles,
            accuracy=np.clip(acc, 0.0, 1.0),
            kappa_device=1e-28,
            f_min_hz=1e8,
            f_max_hz=2e9,
            kappa_server=1e-28,
            server_index=np.arange(n_devices) % n_servers,
        ),
        mean_gain=10 ** (-path_loss_db / 10.0),
    )


def _one_run(
    seed: int,
    server_freq_hz: float,
    include_server_energy: bool,
    n_devices: int = N_DEVICES,
    n_servers: int = N_SERVERS,
) -> tuple[float, float]:
    """Time ``N_SLOTS`` closed-loop slots; returns (seconds, fraction of binding server-slots)."""
    tree = SeedTree(seed).child("bench", "control")
    sc = _scenario(tree.child("scenario").numpy(), n_devices, n_servers)
    fading = tree.child("fading").numpy()
    ctl = LyapunovController(
        n_devices,
        v=100.0,
        mu=1.0,
        nu=1.0,
        delay_max_s=0.02,
        accuracy_min=0.85,
        static=dict(
            sc["static"],
            server_freq_hz=np.full(n_servers, server_freq_hz),
            include_server_energy=include_server_energy,
            # a floor keeps the predicted delay finite for devices whose queue is empty
            server_freq_min_hz=1e6,
        ),
        queues=VirtualQueues(np.full(n_devices, 1.0), np.full(n_devices, 1.0)),
    )
    gains = sc["mean_gain"] * fading.exponential(1.0, size=(N_SLOTS, n_devices))
    binding = 0
    t0 = time.perf_counter()
    for t in range(N_SLOTS):
        d = ctl.decide(gain=gains[t])
        ctl.update(np.where(d.feasible, d.delay_s, 0.0), d.accuracy, observed=d.feasible)
        binding += int(np.count_nonzero(d.server_price > 0))
    return time.perf_counter() - t0, binding / (N_SLOTS * n_servers)


def run() -> list[dict]:
    """Median decisions per second over ``REPEATS`` runs for each regime.

    Returns
    -------
    list of dict
        Keys ``name``, ``value``, ``unit``, ``note``.
    """
    rows = []
    regimes = (
        ("uncoupled", 1e15, True, N_DEVICES, N_SERVERS),
        ("coupled", 2.0e10, True, N_DEVICES, N_SERVERS),
        ("coupled, no server energy", 2.0e10, False, N_DEVICES, N_SERVERS),
        ("coupled, 10x batch", 2.0e10, True, 10 * N_DEVICES, 10 * N_SERVERS),
    )
    for name, cap, energy, n_dev, n_srv in regimes:
        times, bind = [], []
        for r in range(REPEATS):
            dt, b = _one_run(r, cap, energy, n_dev, n_srv)
            times.append(dt)
            bind.append(b)
        rate = n_dev * N_SLOTS / float(np.median(times))
        rows.append(
            dict(
                name=f"control.decisions_per_s[{name}]",
                value=rate,
                unit="decisions/s",
                note=(
                    f"{n_dev} devices x {N_SLOTS} slots, 48 options, {n_srv} servers of "
                    f"{cap:.0e} Hz; capacity bound in {100 * np.mean(bind):.0f}% of server-slots; "
                    f"median of {REPEATS}"
                ),
            )
        )
    return rows


def main() -> None:
    print(markdown_table(run()))


if __name__ == "__main__":
    main()
