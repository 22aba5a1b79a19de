"""The SimPy world end to end: semantic accuracy, queueing theory, faults, conservation, determinism."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from simulator.channel import db_to_linear, fbl_error_probability, transmit_payload
from simulator.control import Decision
from simulator.experiment.runner import comparable_summary
from simulator.latent.stitching import predict
from simulator.network.energy import cycles, head_flops, projection_flops
from simulator.network.world import World

Z = 4.0  # every statistical check allows 4 standard errors (two-sided false alarm ≈ 6e-5)


def read_tasks(folder: Path) -> list[dict]:
    with open(folder / "tasks.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def read_slots(folder: Path) -> list[dict]:
    with open(folder / "slots.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def service_times(zoo, scenario) -> tuple[float, float, float]:
    """(encode, airtime, decode) seconds of one task of the first device, from real FLOP counts."""
    tx, rx, ctl = scenario.transmitters[0], scenario.receivers[0], scenario.controller
    enc = zoo.encoders[tx.encoders[0]]
    rel = scenario.relative
    w_tx = cycles(enc.flops + projection_flops(enc.cfg.latent_dim, ctl.anchors, rel.similarity, rel.center),
                  tx.cpu.flops_per_cycle)
    n_bits = ctl.anchors * len(rel.similarity) * ctl.bits + scenario.channel.header_bits
    w_rx = cycles(head_flops(ctl.anchors, len(rel.similarity), scenario.heads.hidden, zoo.dataset.n_classes),
                  rx.flops_per_cycle)
    return w_tx / tx.cpu.f_max_hz, n_bits / ctl.rate_bps, w_rx / rx.cpu_hz


# --------------------------------------------------------------------------- semantics


@pytest.mark.parametrize("mode, bits, distance_m", [("ideal", 32, 50.0), ("digital", 8, 1.0)])
def test_delivered_accuracy_matches_the_stitching_table(scenario_of, run_net, tiny_zoo, mode, bits, distance_m):
    # Noise-free: an ideal float32 link, and a digital 8-bit link sent at full power (rate =
    # R_max, SNR ~107 dB at 1 m) where the uncoded BER underflows to 0. Each task's outcome must
    # then be the stitching pipeline's prediction for its sample, and the accuracy over tasks
    # (test samples drawn with replacement) a binomial estimate of the stitching accuracy on the
    # test split.
    sc = scenario_of({"channel": {"mode": mode, "link": {"distance_m": distance_m}},
                      "simulation": {"slots": 1500},
                      "controller": {"bits": bits, "rate_bps": 2.0e6 if mode == "ideal" else None}})
    summary, out = run_net(sc)
    quantizer = None if bits == 32 else (lambda r: transmit_payload(r, "ideal", bits, -1.0, 1.0))
    pred = predict(tiny_zoo, "mlp-1", "mlp-2", "relative", 32, "test", channel=quantizer)
    labels = tiny_zoo.labels("test")
    p = float((pred == labels).float().mean())
    rows = [r for r in read_tasks(out) if r["status"] == "delivered"]
    n = len(rows)
    assert n == summary["tasks_delivered"] > 2000
    samples = torch.tensor([int(r["sample"]) for r in rows])
    assert [int(r["prediction"]) for r in rows] == pred[samples].tolist()
    assert [int(r["correct"]) for r in rows] == (pred[samples] == labels[samples]).int().tolist()
    assert abs(summary["accuracy"] - p) <= Z * math.sqrt(p * (1 - p) / n)


def test_uncoded_bit_errors_cost_accuracy(scenario_of, run_net):
    # The power for rate R makes the SNR Γ(2^{R/B} − 1) whatever the distance, so the rate sets
    # the uncoded BER: 3 bit/s/Hz on 16-QAM (SNR 8.5 dB, BER ≈ 0.09) garbles float32 words,
    # 12 bit/s/Hz (SNR 36 dB) does not.
    def at(rate):
        return scenario_of({"channel": {"mode": "digital", "modulation": "16qam"}, "controller": {"rate_bps": rate}})
    (noisy, out), (clean, _) = run_net(at(3.0e6), "noisy"), run_net(at(1.2e7), "clean")
    assert noisy["accuracy"] < clean["accuracy"] - 0.1
    snr_db = {round(float(r["snr_db"]), 6) for r in read_tasks(out) if r["status"] == "delivered"}
    assert snr_db == {round(10 * math.log10(7.0), 6)}


def test_analog_mode_runs_and_sends_symbols(scenario_of, run_net):
    summary, out = run_net(scenario_of({"channel": {"mode": "analog"}, "controller": {"rate_bps": None}}))
    rows = read_tasks(out)
    assert summary["tasks_delivered"] > 0 and summary["accuracy"] > 0.5
    assert {r["payload_bits"] for r in rows} == {"0"}


# --------------------------------------------------------------------------- queueing


def test_mean_delay_matches_md1(scenario_of, run_net, tiny_zoo):
    # Poisson arrivals, deterministic service at the device (encode W/f + airtime N/R, no fading),
    # then a decode too short to queue (service D2 < D = the spacing of the device's departures).
    # Pollaczek–Khinchine for M/D/1: W = ρ / (2μ(1 − ρ)) + 1/μ, ρ = λ/μ; delay = W + D2.
    base = scenario_of()
    d_enc, d_air, d_dec = service_times(tiny_zoo, base)
    d = d_enc + d_air
    rho, slot_s = 0.5, 0.01
    lam = rho / d
    n_target = 40_000
    sc = scenario_of({"simulation": {"slots": int(n_target / (lam * slot_s)), "slot_s": slot_s},
                      "transmitters": [{**base.transmitters[0].model_dump(mode="json"),
                                        "traffic": {"kind": "poisson", "rate_per_slot": lam * slot_s},
                                        "queue": {"capacity": 1_000_000}}]})
    summary, out = run_net(sc)
    rows = sorted((r for r in read_tasks(out) if r["status"] == "delivered"), key=lambda r: float(r["arrival_s"]))
    delays = np.array([float(r["delay_s"]) for r in rows])
    assert summary["tasks_dropped"] == 0 and len(delays) > 0.9 * n_target
    # A task that finds the system empty takes exactly D + D2 (timing from the real FLOP count).
    assert delays.min() == pytest.approx(d + d_dec, rel=1e-9)
    theory = rho / (2 * (1 / d) * (1 - rho)) + d + d_dec
    # Waits of successive tasks are correlated: batch means, not the i.i.d. standard error.
    batches = np.array_split(delays, 40)
    means = np.array([b.mean() for b in batches])
    se = means.std(ddof=1) / math.sqrt(len(means))
    assert abs(delays.mean() - theory) <= Z * se, (delays.mean(), theory, se)


def test_work_conserving_policies_are_busy_alike(scenario_of, run_net):
    # An overloaded server (a head decision takes ~7 ms at 100 kHz): FIFO, processor sharing and
    # a single full partition are all work conserving, so the server is busy for the same time.
    out = {}
    for policy in ("fifo", "processor-sharing", "partitioned"):
        sc = scenario_of({"receivers": [{"id": "srv", "encoder": "mlp-2", "cpu_hz": 1.0e5, "flops_per_cycle": 8,
                                         "scheduling": policy}]})
        out[policy], _ = run_net(sc, policy)
    assert out["fifo"]["tasks_arrived"] == out["processor-sharing"]["tasks_arrived"]
    for s in out.values():
        assert s["tasks_pending"] + s["tasks_delivered"] == s["tasks_arrived"]
    assert out["partitioned"]["per_agent"]["srv"]["busy_fraction"] == pytest.approx(
        out["fifo"]["per_agent"]["srv"]["busy_fraction"], rel=1e-6)


@pytest.mark.parametrize("policy", ["drop-newest", "drop-oldest"])
def test_full_queue_drops_by_policy(scenario_of, run_net, policy):
    # Arrivals every 0.1 ms, service ≈ 0.6 ms: the queue of 3 is always full.
    sc = scenario_of({"simulation": {"slots": 50},
                      "transmitters": [{"id": "dev", "receiver": "srv", "encoders": ["mlp-1"],
                                        "traffic": {"kind": "deterministic", "rate_per_slot": 100.0},
                                        "queue": {"capacity": 3, "drop_policy": policy},
                                        "cpu": {"f_min_hz": 1e8, "f_max_hz": 1e8, "flops_per_cycle": 4}}]})
    summary, out = run_net(sc)
    rows = read_tasks(out)
    assert summary["dropped_by_reason"]["queue-full"] > 0.7 * summary["tasks_arrived"]
    delivered = [float(r["delay_s"]) for r in rows if r["status"] == "delivered"]
    # drop-newest serves tasks that waited behind three others; drop-oldest the freshest ones.
    bound = 4 * 0.6e-3 if policy == "drop-newest" else 3 * 0.1e-3 + 2 * 0.6e-3
    assert np.median(delivered) < bound
    if policy == "drop-newest":
        assert np.median(delivered) > 3 * 0.5e-3


# --------------------------------------------------------------------------- link layer


def test_outage_exhausts_arq_at_full_power(scenario_of, run_net):
    sc = scenario_of({"channel": {"link": {"distance_m": 1.0e5}}, "simulation": {"slots": 100},
                      "transmitters": [{"id": "dev", "receiver": "srv", "encoders": ["mlp-1"],
                                        "traffic": {"rate_per_slot": 0.2}, "radio": {"max_attempts": 3}}]})
    summary, out = run_net(sc)
    rows = [r for r in read_tasks(out) if r["status"] == "dropped"]
    assert summary["tasks_delivered"] == 0 and rows
    assert summary["dropped_by_reason"] == {"outage": len(rows)}
    n_bits = 32 * 32 + 64
    for r in rows:
        assert int(r["attempts"]) == 3
        assert float(r["energy_tx_per_task_j"]) == pytest.approx(3 * 0.2 * n_bits / 2.0e6, rel=1e-12)
    slots = read_slots(out)
    assert all(s["outage"] == "True" and float(s["power_w"]) == 0.2 for s in slots)


def test_finite_blocklength_packet_errors_match_the_normal_approximation(scenario_of, run_net, tiny_zoo):
    # The power for rate R is set so that Γ-gap capacity equals R: the SNR is Γ(2^{R/B} − 1), and
    # each attempt fails with the normal-approximation probability at that SNR.
    gap_db, rate, bw = 0.1, 2.0e6, 1.0e6
    sc = scenario_of({"channel": {"mode": "digital", "snr_gap_db": gap_db, "bandwidth_hz": bw},
                      "simulation": {"slots": 1500},
                      "transmitters": [{"id": "dev", "receiver": "srv", "encoders": ["mlp-1"],
                                        "traffic": {"rate_per_slot": 2.0},
                                        "radio": {"max_attempts": 8, "packet_errors": "fbl"}}],
                      "controller": {"rate_bps": rate}})
    summary, out = run_net(sc)
    n_bits = 32 * 32 + 64
    gamma = float(db_to_linear(gap_db)) * (2 ** (rate / bw) - 1)
    eps = float(fbl_error_probability(gamma, bw * n_bits / rate, n_bits))
    assert 0.05 < eps < 0.5
    rows = [r for r in read_tasks(out) if r["status"] != "pending"]  # outcomes of finished tasks only
    attempts = sum(int(r["attempts"]) for r in rows)
    failures = attempts - summary["tasks_delivered"]
    assert attempts > 3000
    assert abs(failures / attempts - eps) <= Z * math.sqrt(eps * (1 - eps) / attempts)
    delivered = [r for r in rows if r["status"] == "delivered"]
    assert all(float(r["snr_db"]) == pytest.approx(10 * math.log10(gamma)) for r in delivered)
    # Coded packets that get through are error-free: the predictions are those of the ideal link.
    pred = predict(tiny_zoo, "mlp-1", "mlp-2", "relative", 32, "test")
    assert [int(r["prediction"]) for r in delivered] == pred[[int(r["sample"]) for r in delivered]].tolist()


def test_bandwidth_is_split_equally_among_a_receivers_devices(scenario_of, run_net):
    dev = {"receiver": "srv", "encoders": ["mlp-1"], "traffic": {"rate_per_slot": 0.5}}
    sc = scenario_of({"simulation": {"slots": 50},
                      "transmitters": [{**dev, "id": "a"}, {**dev, "id": "b"},
                                       {**dev, "id": "c", "link": {"bandwidth_share": 0.5}}]})
    summary, _ = run_net(sc)
    bw = {k: v["bandwidth_hz"] for k, v in summary["per_agent"].items() if v["kind"] == "transmitter"}
    assert bw == {"a": 2.5e5, "b": 2.5e5, "c": 5e5}


# --------------------------------------------------------------------------- faults and conservation

def _intervals(agent: str, key: str, **extra) -> list[dict]:
    # One long fault (longer than the 0.2 s deadline), then short ones while the device works
    # off the backlog it left, so that some task is certainly caught in the middle of its work.
    spans = [(1.0, 1.4)] + [(1.45 + 0.01 * i, 1.452 + 0.01 * i) for i in range(5)]
    return [{key: agent, "start_s": a, "end_s": b, **extra} for a, b in spans]


FAULTS = {
    "link_outages": {"link_outages": _intervals("dev", "transmitter")},
    "device_off": {"device_off": _intervals("dev", "transmitter")},
    "server_slowdowns": {"server_slowdowns": _intervals("srv", "receiver", factor=0.0)},
}
FAULTS["all"] = {k: v for f in FAULTS.values() for k, v in f.items()}


@pytest.mark.parametrize("kind", list(FAULTS))
def test_conservation_and_fault_outcomes(scenario_of, run_net, kind):
    sc = scenario_of({"simulation": {"slots": 300, "task_timeout_s": 0.2},
                      "transmitters": [{"id": "dev", "receiver": "srv", "encoders": ["mlp-1"],
                                        "traffic": {"kind": "poisson", "rate_per_slot": 6.0},
                                        "queue": {"capacity": 100, "drop_policy": "drop-oldest"},
                                        "cpu": {"f_min_hz": 1e7, "f_max_hz": 1e7, "flops_per_cycle": 4}}],
                      "faults": FAULTS[kind]})
    summary, out = run_net(sc)
    rows = read_tasks(out)
    status = {s: sum(r["status"] == s for r in rows) for s in ("delivered", "dropped", "pending")}
    assert len(rows) == summary["tasks_arrived"] == sum(status.values())
    assert (status["delivered"], status["dropped"], status["pending"]) == (
        summary["tasks_delivered"], summary["tasks_dropped"], summary["tasks_pending"])
    assert all(r["drop_reason"] for r in rows if r["status"] == "dropped")
    if kind == "server_slowdowns":  # the device side is unaffected: tasks wait at the server, then go late
        assert max(float(r["delay_s"]) for r in rows if r["status"] == "delivered") > 0.2
    else:  # a 0.4 s fault outlasts the 0.2 s deadline
        assert summary["dropped_by_reason"].get("timeout", 0) > 0
    # Tasks in the system when a fault began (and not already at the server, which decodes in
    # about a microsecond) were retried, dropped on timeout or delivered late — never lost; and
    # nothing completes while a fault lasts. The short faults fall in the backlog the long one
    # left, so tasks are certainly caught.
    caught = 0
    for a, b in [(f["start_s"], f["end_s"]) for f in next(iter(FAULTS[kind].values()))]:
        for r in rows:
            if float(r["arrival_s"]) < a and r["end_s"] and float(r["end_s"]) > a + 1e-4:
                caught += 1
                late = r["status"] == "delivered" and float(r["end_s"]) >= b - 1e-12
                assert late or (r["status"] == "dropped" and r["drop_reason"] == "timeout"), (a, b, r)
        assert not [r for r in rows if r["status"] == "delivered" and a + 1e-4 < float(r["end_s"]) < b]
    assert caught > (0 if kind == "server_slowdowns" else 20)  # a server stall leaves no device backlog
    if kind != "server_slowdowns":
        assert any(int(r["retries"]) > 0 for r in rows)


def test_energy_totals_match_tasks_and_slots(scenario_of, run_net):
    sc = scenario_of({"channel": {"mode": "digital", "link": {"fading": "rayleigh", "distance_m": 300.0}},
                      "simulation": {"slots": 300, "task_timeout_s": 0.05},
                      "transmitters": [{"id": "dev", "receiver": "srv", "encoders": ["mlp-1"], "idle_power_w": 0.01,
                                        "traffic": {"rate_per_slot": 4.0}}],
                      "faults": FAULTS["all"]})
    summary, out = run_net(sc)
    rows, slots = read_tasks(out), read_slots(out)
    for part in ("tx", "cpu", "server"):
        assert sum(float(r[f"energy_{part}_per_task_j"]) for r in rows) == pytest.approx(summary[f"energy_{part}_j"],
                                                                                    rel=1e-9)
    for part in ("tx", "cpu"):
        assert sum(float(s[f"energy_{part}_per_slot_j"]) for s in slots) == pytest.approx(summary[f"energy_{part}_j"],
                                                                                     rel=1e-9)
    on_s = summary["duration_s"] - summary["per_agent"]["dev"]["off_s"]
    assert summary["energy_idle_j"] == pytest.approx(0.01 * on_s)
    assert summary["avg_power_w"] == pytest.approx(summary["energy_j"] / summary["duration_s"])
    assert len(slots) == 300


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_results_other_seed_other_results(scenario_of, run_net):
    update = {"channel": {"mode": "digital", "link": {"fading": "rayleigh", "distance_m": 200.0}},
              "simulation": {"slots": 300, "task_timeout_s": 0.1}, "faults": FAULTS["all"]}
    (a, out_a), (b, out_b) = run_net(scenario_of(update), "a"), run_net(scenario_of(update), "b")
    (c, _) = run_net(scenario_of(update, seed=1), "c")
    assert comparable_summary(a) == comparable_summary(b)
    for name in ("tasks.csv", "slots.csv"):
        assert (out_a / name).read_bytes() == (out_b / name).read_bytes()
    disk_a, disk_b = (json.loads((out / "summary.json").read_text()) for out in (out_a, out_b))
    assert comparable_summary(disk_a) == comparable_summary(disk_b)
    # Only the wall time is left out of the comparison: every other field must repeat.
    assert set(disk_a) - set(comparable_summary(disk_a)) == {"wall_s"}
    assert comparable_summary(a) != comparable_summary(c)


# --------------------------------------------------------------------------- the controller interface


class HoldEvenSlots:
    """A controller that lets devices transmit only in odd slots (tests the plug-in interface)."""

    def __init__(self, spec, rate_bps):
        self.n = spec.n_tx
        self.rate = rate_bps
        self.updates = []

    def decide(self, obs):
        n = self.n
        rate = np.full(n, 0.0 if obs.slot % 2 == 0 else self.rate)
        return Decision(np.zeros(n, dtype=np.int64), np.full(n, 32), np.full(n, 32), rate, np.full(n, 1e8),
                        np.full(n, 1.0))

    def update(self, feedback):
        self.updates.append(int(feedback.delivered.sum()))


def test_a_custom_controller_drives_the_world(scenario_of, tiny_zoo, tmp_path):
    sc = scenario_of({"simulation": {"slots": 200}})
    world = World(sc, tiny_zoo)
    world.controller = ctl = HoldEvenSlots(world.spec, 2.0e6)
    folder = tmp_path / "custom"
    folder.mkdir()
    summary = world.run(folder)
    assert len(ctl.updates) == 200 and sum(ctl.updates) == summary["tasks_delivered"] > 0
    _, d_air, d_dec = service_times(tiny_zoo, sc)
    for r in read_tasks(folder):
        if r["status"] == "delivered":
            end = float(r["end_s"])
            slot = math.floor(end / 0.01)
            # completes in an odd slot, or spills over from one by at most one attempt + decode
            assert slot % 2 == 1 or end - slot * 0.01 <= d_air + d_dec + 1e-12
    slots = read_slots(folder)
    assert {s["rate_bps"] for s in slots[::2]} == {"0.0"}


def test_one_step_encoding_and_sending_gives_what_two_steps_give(scenario_of, tiny_zoo, tmp_path, monkeypatch):
    """Encoding + first attempt as one event (agents.Transmitter._encode_and_send) changes no byte of the results.

    The same network is run twice: as is, and with the one-step path switched off (every task
    through the separate encoding and attempt steps). Devices cover coded packets with errors,
    outages (a far link), a fault, deterministic and Poisson traffic, deadlines, and a FIFO and a
    partitioned server.
    """
    from simulator.network.agents import Transmitter

    dev = {"receiver": "srv", "encoders": ["mlp-1"], "traffic": {"rate_per_slot": 3.0}}
    sc = scenario_of({
        "channel": {"mode": "digital", "link": {"fading": "rayleigh", "distance_m": 150.0}},
        "simulation": {"slots": 300, "task_timeout_s": 0.03},
        "receivers": [{"id": "srv", "encoder": "mlp-2", "cpu_hz": 1.0e9, "flops_per_cycle": 8},
                      {"id": "part", "encoder": "mlp-2", "cpu_hz": 1.0e9, "flops_per_cycle": 8,
                       "scheduling": "partitioned"}],
        "transmitters": [{**dev, "id": "plain"},
                         {**dev, "id": "coded", "radio": {"packet_errors": "fbl", "max_attempts": 3},
                          "link": {"distance_m": 400.0}},
                         {**dev, "id": "far", "receiver": "part", "link": {"distance_m": 900.0}},
                         {**dev, "id": "periodic", "receiver": "part", "traffic": {"kind": "deterministic",
                                                                                 "rate_per_slot": 2.0}},
                         {**dev, "id": "faulty", "receiver": "part"}],
        "faults": {"link_outages": [{"transmitter": "faulty", "start_s": 1.0, "end_s": 1.3}]},
        "controller": {"kind": "static", "anchors": 32, "bits": 8, "rate_bps": 1.0e6}})
    one_step = Transmitter._encode_and_send
    taken = []

    def counted(self, task):
        out = one_step(self, task)
        taken.append(out is not None)
        return out

    outs = {}
    for name, method in (("one", counted), ("two", lambda self, task: None)):
        monkeypatch.setattr(Transmitter, "_encode_and_send", method)
        outs[name] = tmp_path / name
        outs[name].mkdir()
        summary = World(sc, tiny_zoo).run(outs[name])
        outs[name + "-summary"] = comparable_summary(summary)
    for file in ("tasks.csv", "slots.csv"):
        assert (outs["one"] / file).read_bytes() == (outs["two"] / file).read_bytes(), file
    assert outs["one-summary"] == outs["two-summary"]
    s = outs["one-summary"]
    assert s["dropped_by_reason"].get("packet-error", 0) + s["dropped_by_reason"].get("outage", 0) > 0
    assert 0.3 * len(taken) < sum(taken) < len(taken)  # both paths were exercised
