"""The command line: ``--set`` overrides, progress output, and the ``plot`` command's bad input."""

from __future__ import annotations

import csv
import io

import pytest
import yaml

from simulator.cli import Progress, main
from simulator.errors import ScenarioError
from simulator.overrides import apply_overrides, parse_override, parse_path
from tests.network.conftest import NETWORK, merge


@pytest.fixture
def net_file(tmp_path, tiny_dict):
    """The tiny scenario with one device and one server (no zoo needed until it runs)."""
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(merge(tiny_dict, {**NETWORK, "simulation": {"slots": 60, "slot_s": 0.01}})))
    return path


def test_both_path_spellings_and_yaml_values():
    assert parse_path("transmitters[0].cpu.f_max_hz") == parse_path("transmitters.0.cpu.f_max_hz") \
        == ("transmitters", 0, "cpu", "f_max_hz")
    assert parse_path("faults.link_outages[1][0]") == ("faults", "link_outages", 1, 0)
    values = {"a=8": 8, "a=1e4": 1e4, "a=-2.5E-3": -2.5e-3, "a=[8, 16]": [8, 16], "a={kind: static}": {"kind": "static"},
              "a=": None, "a=null": None, "a=true": True, "a=qpsk": "qpsk", "a = 3": 3}
    for text, value in values.items():
        assert parse_override(text).value == value, text
    data = {"channel": {"mode": "digital"}, "transmitters": [{"id": "d", "cpu": {"f_max_hz": 1.0}}]}
    out = apply_overrides(data, [parse_override("transmitters.0.cpu.f_max_hz=2e9"), parse_override("channel.link.distance_m=5"),
                                 parse_override("simulation.slots=10")])
    assert out["transmitters"][0]["cpu"]["f_max_hz"] == 2e9
    assert out["channel"] == {"mode": "digital", "link": {"distance_m": 5}}
    assert out["simulation"] == {"slots": 10}
    assert data["transmitters"][0]["cpu"]["f_max_hz"] == 1.0  # the input is not modified


@pytest.mark.parametrize("text", ["noequals", "=3", "a..b=1", "0.a=1", "a[x]=1", "a b=1"])
def test_malformed_overrides_raise_scenario_errors(text):
    with pytest.raises(ScenarioError):
        parse_override(text)


def test_overrides_reach_the_saved_scenario_and_the_results(tmp_path, net_file, tiny_zoo, capsys):
    out = tmp_path / "res"
    argv = ["run", str(net_file), "--out", str(out), "--quiet", "--set", "simulation.slots=40",
            "--set", "transmitters[0].cpu.f_max_hz=2e8", "--set", "controller.bits=4",
            "--set", "channel.link.distance_m=80"]
    assert main(argv) == 0, capsys.readouterr().err
    resolved = yaml.safe_load((out / "scenario.yaml").read_text())
    assert resolved["simulation"]["slots"] == 40
    assert resolved["transmitters"][0]["cpu"]["f_max_hz"] == 2e8
    assert resolved["controller"]["bits"] == 4
    assert resolved["transmitters"][0]["link"]["distance_m"] == 80  # inherited from channel.link after the override
    with open(out / "slots.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 40 and {r["bits"] for r in rows} == {"4"}
    assert (out / "plots" / "timeseries.png").stat().st_size > 10_000


BAD = {
    "unknown-key": ("controller.bogus=1", "controller.bogus: unknown key (from --set controller.bogus=1)"),
    "unknown-section": ("chanel.bandwidth_hz=1e6", "chanel: unknown key"),
    "index-out-of-range": ("transmitters[3].cpu.f_max_hz=1e9", "transmitters[3].cpu.f_max_hz: index 3 is out of range"),
    "key-under-a-value": ("seed.x=1", "seed.x: seed holds 0, not a mapping"),
    "index-into-a-mapping": ("channel[0]=1", "channel[0]: channel is not a list"),
    "invalid-value": ("simulation.slots=-3", "simulation.slots: Input should be greater than 0"),
    "wrong-type": ("simulation.slots=many", "simulation.slots: Input should be a valid integer"),
    "cross-field": ("controller.anchors=4096", "controller.anchors: K = 4096 exceeds"),
    "bad-yaml": ("controller.bits=[1,", "--set controller.bits: invalid YAML value"),
    "no-equals": ("controller.bits", "--set: expected KEY.PATH=VALUE"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_override_exits_2_with_one_line_and_writes_nothing(tmp_path, net_file, capsys, name):
    text, expect = BAD[name]
    out = tmp_path / "res"
    for command in ("run", "stitch"):
        assert main([command, str(net_file), "--out", str(out), "--set", text]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
        assert expect in err, (expect, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.yaml"]


def test_validate_takes_overrides(net_file, capsys):
    assert main(["validate", str(net_file), "--set", "name=renamed"]) == 0
    assert "'renamed'" in capsys.readouterr().out
    assert main(["validate", str(net_file), "--set", "controller.bits=17"]) == 2
    assert "controller.bits" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_stage_lines_elsewhere():
    messages = ["training encoder a", "slot 10/100: 3 tasks so far", "slot 50/100: 9 tasks so far", "done"]
    tty = _Terminal()
    log = Progress(stream=tty)
    for m in messages:
        log(m)
    log.close()
    text = tty.getvalue()
    assert text.startswith("training encoder a\n")
    assert "\r\x1b[K[############............]  50%  slot 50/100" in text
    assert text.endswith("done\n")  # the bar is erased before the next stage line
    plain = io.StringIO()
    log = Progress(stream=plain)
    for m in messages:
        log(m)
    assert plain.getvalue() == "training encoder a\ndone\n"  # no counters in a log file
    quiet = _Terminal()
    log = Progress(quiet=True, stream=quiet)
    for m in messages:
        log(m)
    assert quiet.getvalue() == ""


def test_run_without_a_terminal_prints_stages_not_counters(tmp_path, net_file, tiny_zoo, capsys):
    assert main(["run", str(net_file), "--out", str(tmp_path / "res")]) == 0
    err = capsys.readouterr().err
    assert "simulating 60 slots" in err and "slot 6/60" not in err


@pytest.mark.parametrize("make, expect", [
    (lambda p: p / "missing", "no such folder"),
    (lambda p: p, "not a results folder"),
])
def test_plot_of_a_wrong_folder_exits_2(tmp_path, capsys, make, expect):
    assert main(["plot", str(make(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and expect in err
    assert list(tmp_path.iterdir()) == []


def test_outputs_dir_sets_the_default_folder_inside_results(tiny_dict, tiny_zoo, tmp_path, monkeypatch, capsys):
    """``outputs.dir`` names the folder under results/; ``outputs.plots: false`` leaves the plots out."""
    data = merge(tiny_dict, NETWORK)
    data["simulation"] = {**data["simulation"], "slots": 30}
    data["outputs"] = {"dir": "study/a", "plots": False}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)
    assert main(["run", "s.yaml", "--quiet"]) == 0
    run_dir = tmp_path / "results" / "study" / "a"
    assert (run_dir / "summary.json").exists() and not (run_dir / "plots").exists()
    assert "results/study/a" in capsys.readouterr().out
