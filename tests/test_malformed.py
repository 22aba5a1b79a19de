"""A corpus of malformed scenarios: each exits 2 with one line naming the field, and writes nothing."""

from __future__ import annotations

import copy

import pytest
import yaml

from simulator.cli import main
from tests.test_yamlio import alias_bomb

BASE = {
    "name": "corpus",
    "seed": 0,
    "data": {"dataset": "digits"},
    "encoders": [{"id": "a-1", "arch": "mlp", "latent_dim": 8, "hidden": [16]},
                 {"id": "b-1", "arch": "cnn", "latent_dim": 8, "hidden": [4]}],
    "anchors": {"count": 32},
    "stitching": {"anchors": [8, 16]},
    "simulation": {"slots": 10, "slot_s": 0.01},
    "receivers": [{"id": "srv", "encoder": "a-1"}],
    "transmitters": [{"id": "dev", "receiver": "srv", "encoders": ["b-1"]}],
    "controller": {"kind": "static", "anchors": 8, "bits": 8},
}


def _set(path: str, value):
    """A mutation of BASE that sets the dotted path (list indices as numbers) to ``value``."""
    def mutate(d):
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        node = d
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
        return d
    return mutate


def _drop(path: str):
    def mutate(d):
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        node = d
        for k in keys[:-1]:
            node = node[k]
        del node[keys[-1]]
        return d
    return mutate


NAN, INF = float("nan"), float("inf")

CASES = {
    # wrong types
    "seed-string": (_set("seed", "zero"), "seed"),
    "seed-negative": (_set("seed", -1), "seed"),
    "encoders-not-list": (_set("encoders", "mlp"), "encoders"),
    "latent-dim-float": (_set("encoders.0.latent_dim", 8.5), "encoders[0].latent_dim"),
    "hidden-string": (_set("encoders.0.hidden", "big"), "encoders[0].hidden"),
    "epochs-zero": (_set("encoders.0.train", {"epochs": 0}), "encoders[0].train.epochs"),
    "lr-negative": (_set("encoders.0.train", {"lr": -0.1}), "encoders[0].train.lr"),
    "arch-unknown": (_set("encoders.0.arch", "transformer"), "encoders[0].arch"),
    "dataset-unknown": (_set("data.dataset", "imagenet"), "data.dataset"),
    "validation-fraction-one": (_set("data.validation_fraction", 1.0), "data.validation_fraction"),
    "anchor-strategy-unknown": (_set("anchors.strategy", "psychic"), "anchors.strategy"),
    "similarity-unknown": (_set("relative", {"similarity": "dot"}), "relative.similarity"),
    "similarity-duplicate": (_set("relative", {"similarity": ["cosine", "cosine"]}), "relative.similarity"),
    "method-unknown": (_set("stitching.methods", ["telepathy"]), "stitching.methods"),
    "bits-17": (_set("stitching.bits", [17]), "stitching.bits"),
    "noisy-bits-zero": (_set("stitching.noisy_bits", [0]), "stitching.noisy_bits"),
    "device-tpu": (_set("device", "tpu"), "device"),
    # unknown keys
    "unknown-top": (_set("colour", "blue"), "colour"),
    "unknown-encoder-key": (_set("encoders.0.dropout", 0.5), "encoders[0].dropout"),
    "unknown-channel-key": (_set("channel", {"bandwith_hz": 1e6}), "channel.bandwith_hz"),
    "unknown-link-key": (_set("channel", {"link": {"distance": 5}}), "channel.link.distance"),
    "unknown-transmitter-key": (_set("transmitters.0.power", 1), "transmitters[0].power"),
    # zero or negative physical quantities
    "bandwidth-zero": (_set("channel", {"bandwidth_hz": 0}), "channel.bandwidth_hz"),
    "bandwidth-negative": (_set("channel", {"bandwidth_hz": -1e6}), "channel.bandwidth_hz"),
    "distance-zero": (_set("channel", {"link": {"distance_m": 0}}), "channel.link.distance_m"),
    "k-factor-negative": (_set("channel", {"link": {"k_factor": -1}}), "channel.link.k_factor"),
    "nakagami-m-small": (_set("channel", {"link": {"nakagami_m": 0.2}}), "channel.link.nakagami_m"),
    "doppler-negative": (_set("channel", {"link": {"doppler_hz": -5}}), "channel.link.doppler_hz"),
    "bandwidth-share-big": (_set("channel", {"link": {"bandwidth_share": 1.5}}), "channel.link.bandwidth_share"),
    "path-loss-exponent-zero": (_set("channel", {"path_loss": {"exponent": 0}}), "channel.path_loss.exponent"),
    "slot-zero": (_set("simulation.slot_s", 0), "simulation.slot_s"),
    "slots-negative": (_set("simulation.slots", -5), "simulation.slots"),
    "max-power-zero": (_set("transmitters.0.radio", {"max_power_w": 0}), "transmitters[0].radio.max_power_w"),
    "cpu-range-inverted": (_set("transmitters.0.cpu", {"f_min_hz": 2e9, "f_max_hz": 1e9}),
                           "transmitters[0].cpu.f_min_hz"),
    "server-cpu-zero": (_set("receivers.0.cpu_hz", 0), "receivers[0].cpu_hz"),
    "traffic-rate-zero": (_set("transmitters.0.traffic", {"rate_per_slot": 0}), "transmitters[0].traffic.rate_per_slot"),
    # NaN and infinity
    "snr-gap-nan": (_set("channel", {"snr_gap_db": NAN}), "channel.snr_gap_db"),
    "noise-psd-inf": (_set("channel", {"noise_psd_dbm_hz": INF}), "channel.noise_psd_dbm_hz"),
    "slot-inf": (_set("simulation.slot_s", INF), "simulation.slot_s"),
    "accuracy-target-nan": (_set("simulation.accuracy_target", NAN), "simulation.accuracy_target"),
    "accuracy-target-above-one": (_set("simulation.accuracy_target", 1.2), "simulation.accuracy_target"),
    # dangling references and cross-field rules
    "unknown-receiver": (_set("transmitters.0.receiver", "nowhere"), "transmitters[0].receiver"),
    "unknown-rx-encoder": (_set("receivers.0.encoder", "zzz"), "receivers[0].encoder"),
    "unknown-pool-encoder": (_set("transmitters.0.encoders", ["zzz"]), "transmitters[0].encoders"),
    "duplicate-agent": (_set("transmitters.0.id", "srv"), "transmitters[0].id"),
    "duplicate-encoder": (lambda d: {**d, "encoders": d["encoders"] + [{"id": "a-1", "arch": "mlp"}]},
                          "encoders[2].id"),
    "k-over-anchor-list": (_set("stitching.anchors", [8, 64]), "stitching.anchors[1]"),
    "controller-k-over-list": (_set("controller.anchors", 64), "controller"),
    "fault-unknown-target": (_set("faults", {"link_outages": [{"transmitter": "ghost", "start_s": 0, "end_s": 1}]}),
                             "faults.link_outages[0]"),
    "fault-inverted-interval": (_set("faults", {"device_off": [{"transmitter": "dev", "start_s": 2, "end_s": 1}]}),
                                "faults.device_off[0].end_s"),
    # output paths that would leave the results root
    "outputs-dir-parent": (_set("outputs", {"dir": "../elsewhere"}), "outputs.dir"),
    "outputs-dir-nested-parent": (_set("outputs", {"dir": "a/../../b"}), "outputs.dir"),
    "outputs-dir-absolute": (_set("outputs", {"dir": "/tmp/x"}), "outputs.dir"),
    "outputs-dir-home": (_set("outputs", {"dir": "~/x"}), "outputs.dir"),
    "outputs-plots-string": (_set("outputs", {"plots": "maybe"}), "outputs.plots"),
    "outputs-dir-dot": (_set("outputs", {"dir": "."}), "outputs.dir"),
    # a name is an identifier, never a path
    "name-parent": (_set("name", "../../x"), "name"),
    "name-absolute": (_set("name", "/home/user"), "name"),
    "name-separator": (_set("name", "a/b"), "name"),
    "name-dot-dot": (_set("name", ".."), "name"),
    "name-hidden": (_set("name", ".results"), "name"),
    "name-newline": (_set("name", "a\nb"), "name"),
    "missing-encoders": (_drop("encoders"), "encoders"),
    "missing-transmitter-receiver": (_drop("transmitters.0.receiver"), "transmitters[0].receiver"),
}

RAW = {
    "yaml-syntax": ("seed: [1, 2\nencoders: x\n", "line"),
    "yaml-tab-indent": ("seed: 1\n\tencoders: []\n", "line"),
    "python-tag": ("seed: !!python/object/apply:os.system ['true']\n", "invalid YAML"),
    "top-level-list": ("- 1\n- 2\n", "mapping"),
    "empty-file": ("", "mapping"),
    "huge-file": ("# " + "x" * (2 << 20) + "\n", "larger"),
    # hostile YAML: refused before anything is built from it
    "alias-bomb": ("name: bomb\n" + alias_bomb(9) + "sweep: {grid: {controller.v: *l9}}\n", "aliases"),
    "recursive-alias": ("name: loop\nencoders: &e [*e]\n", "recursive"),
    "deep-flow": ("encoders: " + "[" * 10_000 + "]" * 10_000 + "\n", "nested deeper"),
    "deep-mapping": ("encoders: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n", "nested deeper"),
    "deep-block": ("encoders:\n" + "".join("  " * i + "- \n" for i in range(1, 120)), "nested deeper"),
}


def _check(tmp_path, capsys, text: str, expect: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    out = tmp_path / "results"
    for argv in (["validate", str(path)], ["stitch", str(path), "--out", str(out)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert "Traceback" not in err
        assert expect in err, (expect, err)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.yaml"]


def test_base_scenario_is_valid(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(BASE))
    assert main(["validate", str(path)]) == 0


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_field(tmp_path, capsys, name):
    mutate, expect = CASES[name]
    data = mutate(copy.deepcopy(BASE))
    _check(tmp_path, capsys, yaml.safe_dump(data, allow_unicode=True), expect)


@pytest.mark.parametrize("name", sorted(RAW))
def test_malformed_file(tmp_path, capsys, name):
    text, expect = RAW[name]
    _check(tmp_path, capsys, text, expect)


def test_corpus_is_large_enough():
    assert len(CASES) + len(RAW) >= 40
