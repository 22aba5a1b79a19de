"""Nothing a user owns is ever touched: every command refuses a bad output path with exit 2, one line, before work.

Real file-system cases in a temporary folder. Each refusal asserts the exit code, the one-line
message naming the field, that the user's files are byte-identical afterwards (sha256), that
nothing was written, and that no encoder was trained (the zoo is never built).
"""

from __future__ import annotations

import os

import pytest
import yaml

from simulator.cli import main
from simulator.folders import MARKER, mark
from simulator.latent.zoo import Zoo
from tests.network.conftest import NETWORK, merge
from tests.network.test_lyapunov_world import DYNAMIC
from tests.test_folders import tree_digest
from tests.test_yamlio import alias_bomb

COMMANDS = ("run", "stitch", "sweep", "tradeoff")


@pytest.fixture
def no_work(monkeypatch):
    """Any attempt to build (train or load) the encoder zoo fails the test."""
    monkeypatch.setattr(Zoo, "build", classmethod(lambda *a, **k: pytest.fail("work started before the refusal")))


@pytest.fixture
def scenario_file(tmp_path, tiny_dict):
    """A scenario every command accepts: a network, a lyapunov controller with V values, a sweep grid."""
    data = merge(merge(tiny_dict, NETWORK), DYNAMIC)
    data["controller"] = {"kind": "lyapunov", "anchors": [8, 32], "bits": [4, 8], "v_sweep": [100.0]}
    data["sweep"] = {"grid": {"controller.v": [10.0, 100.0]}}
    path = tmp_path / "scenarios" / "s.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def home(tmp_path, monkeypatch):
    """The working folder, with a user's thesis, a user's file and a scenario folder in it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "thesis" / "figures").mkdir(parents=True)
    (tmp_path / "thesis" / "main.tex").write_text("\\chapter{Results}\n")
    (tmp_path / "thesis" / "figures" / "f.png").write_bytes(os.urandom(512))
    (tmp_path / "notes.txt").write_text("my notes\n")
    return tmp_path


def _refused(argv, capsys, expect):
    assert main(argv) == 2, argv
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert expect in err, (expect, err)
    return err


OUT_CASES = {
    "user-folder": ("thesis", "--out thesis: exists and was not made by relcomm"),
    "user-file": ("notes.txt", "--out notes.txt: is a file"),
    "under-a-file": ("notes.txt/out", "notes.txt is a file, so no folder can be made under it"),
    "working-folder": (".", "--out .: is the working folder"),
    "parent-folder": ("..", "--out ..: is the working folder or a folder above it"),
    "home-like": ("thesis/..", "is the working folder or a folder above it"),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", sorted(OUT_CASES))
def test_a_bad_out_is_refused_before_work_and_touches_nothing(home, scenario_file, no_work, capsys, command, case):
    out, expect = OUT_CASES[case]
    before = tree_digest(home)
    _refused([command, str(scenario_file), "--out", out, "--quiet"], capsys, expect)
    assert tree_digest(home) == before


@pytest.mark.parametrize("command", COMMANDS)
def test_a_folder_holding_a_user_file_among_relcomm_results_is_still_refused(home, scenario_file, no_work, capsys,
                                                                              command):
    """Results files without the marker (e.g. copied by hand) are not relcomm's to delete."""
    (home / "copied").mkdir()
    (home / "copied" / "summary.json").write_text("{}")
    before = tree_digest(home)
    _refused([command, str(scenario_file), "--out", "copied"], capsys, "not made by relcomm")
    assert tree_digest(home) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@pytest.mark.parametrize("command", COMMANDS)
def test_a_read_only_parent_is_refused_before_work(home, scenario_file, no_work, capsys, command):
    (home / "ro").mkdir()
    (home / "ro").chmod(0o555)
    try:
        _refused([command, str(scenario_file), "--out", "ro/out"], capsys, "cannot write into")
    finally:
        (home / "ro").chmod(0o755)
    assert list((home / "ro").iterdir()) == []


@pytest.mark.parametrize("field, value, expect", [
    ("name", "../../x", "error: name (line"),
    ("name", "/tmp/x", "must be a plain identifier"),
    ("name", "thesis/..", "must be a plain identifier"),
    ("name", ".hidden", "must be a plain identifier"),
    ("outputs", {"dir": "."}, "must name a folder inside the results root"),
    ("outputs", {"dir": "../thesis"}, "must stay inside the results root"),
])
def test_a_scenario_cannot_point_its_results_outside_results(home, scenario_file, no_work, capsys, field, value,
                                                             expect):
    data = yaml.safe_load(scenario_file.read_text())
    data[field] = value
    scenario_file.write_text(yaml.safe_dump(data))
    (home / "results").mkdir()
    (home / "results" / "keep.txt").write_text("previous work")
    before = tree_digest(home)
    for command in (*COMMANDS, "validate"):
        _refused([command, str(scenario_file)], capsys, expect)
    assert tree_digest(home) == before


def test_the_default_folder_under_results_is_checked_too(home, scenario_file, no_work, capsys):
    (home / "results" / "tiny").mkdir(parents=True)
    (home / "results" / "tiny" / "draft.md").write_text("not relcomm's")
    before = tree_digest(home)
    _refused(["run", str(scenario_file)], capsys, "name results/tiny: exists and was not made by relcomm")
    assert tree_digest(home) == before


def test_a_marked_or_empty_folder_is_written_and_the_user_files_beside_it_survive(home, scenario_file, tiny_zoo,
                                                                                   capsys):
    data = yaml.safe_load(scenario_file.read_text())
    data.update(controller={"kind": "static", "anchors": 8, "bits": 8}, simulation={"slots": 20, "slot_s": 0.01})
    data.pop("sweep")
    scenario_file.write_text(yaml.safe_dump(data))
    (home / "empty").mkdir()
    mark(home / "old-run", "run")
    (home / "old-run" / "summary.json").write_text("stale")
    beside = tree_digest(home / "thesis")
    for out in ("empty", "old-run", "new/nested"):
        assert main(["run", str(scenario_file), "--out", out, "--quiet"]) == 0
        assert (home / out / MARKER).is_file() and (home / out / "summary.json").read_text() != "stale"
    assert tree_digest(home / "thesis") == beside and (home / "notes.txt").read_text() == "my notes\n"
    assert not list(home.glob(".*"))  # no lock, staging or swapped-out folder left behind


def test_a_second_writer_is_refused_with_one_line(home, scenario_file, no_work, capsys):
    from simulator.folders import claim

    with claim(home / "busy", "run"):
        _refused(["run", str(scenario_file), "--out", "busy"], capsys, "another relcomm command is writing")
    assert not (home / "busy").exists()


def test_plot_out_follows_the_same_rules(home, capsys):
    run = home / "run"
    mark(run, "run")
    (run / "summary.json").write_text("{}")
    (run / "slots.csv").write_text("slot\n")
    before = tree_digest(home)
    _refused(["plot", "run", "--out", "thesis"], capsys, "--out thesis: exists and was not made by relcomm")
    _refused(["plot", "run", "--out", "notes.txt"], capsys, "is a file")
    assert tree_digest(home) == before


def test_plot_refuses_an_unmarked_plots_folder_of_a_copied_run(home, capsys):
    run = home / "copied-run"
    (run / "plots").mkdir(parents=True)
    (run / "summary.json").write_text("{}")
    (run / "slots.csv").write_text("slot\n")
    (run / "plots" / "my-figure.png").write_bytes(b"user")
    before = tree_digest(home)
    _refused(["plot", "copied-run"], capsys, "not made by relcomm")
    assert tree_digest(home) == before


def test_the_alias_bomb_is_refused_by_every_command(home, no_work, capsys):
    bomb = home / "bomb.yaml"
    bomb.write_text("name: bomb\nencoders: [{id: a, arch: mlp}]\n" + alias_bomb(9)
                    + "sweep: {grid: {controller.v: *l9}}\n")
    before = tree_digest(home)
    for command in (*COMMANDS, "validate"):
        err = _refused([command, str(bomb)], capsys, "aliases (*name) expand it to more than 100,000 values")
        assert len(err) < 300
    assert tree_digest(home) == before


def test_ten_thousand_deep_nesting_is_refused(home, no_work, capsys):
    deep = home / "deep.yaml"
    deep.write_text("name: deep\nencoders: " + "[" * 10_000 + "]" * 10_000 + "\n")
    _refused(["validate", str(deep)], capsys, "nested deeper than 64 levels")
    _refused(["run", str(deep), "--set", "seed=" + "[" * 10_000 + "]" * 10_000], capsys,
             "--set seed: invalid YAML value")


def test_a_huge_value_is_quoted_short(home, scenario_file, capsys):
    err = _refused(["validate", str(scenario_file), "--set", "receivers[0].encoder=" + "z" * 100_000],
                   capsys, "unknown encoder")
    assert len(err) < 500


@pytest.mark.parametrize("argv", [
    ["validate", "missing.yaml", "--debug"],
    ["--debug", "validate", "missing.yaml"],
])
def test_debug_before_or_after_the_subcommand(home, argv, capsys):
    """--debug adds the traceback; the exit code still says what kind of failure it was."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("error: missing.yaml: file not found")


def test_quiet_before_or_after_the_subcommand(home, scenario_file, capsys):
    for argv in (["--quiet", "validate", str(scenario_file)], ["validate", str(scenario_file), "--quiet"]):
        assert main(argv) == 0
        assert capsys.readouterr().err == ""
