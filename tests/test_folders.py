"""Results folders relcomm owns: the marker, the checks, the lock, staging, publication and leftovers."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

from simulator.errors import ScenarioError
from simulator.folders import MARKER, check_target, claim, is_marked, mark, remove_leftovers


def tree_digest(root) -> dict[str, str]:
    """sha256 of every file under ``root`` (and the folders, as 'dir'), keyed by relative path."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def user_folder(tmp_path):
    """A folder of a user's own files (a thesis), not made by relcomm."""
    folder = tmp_path / "thesis"
    (folder / "figures").mkdir(parents=True)
    (folder / "main.tex").write_text("\\documentclass{article}\n")
    (folder / "figures" / "plot.png").write_bytes(os.urandom(256))
    return folder


def test_marker_round_trip_and_forgeries(tmp_path):
    mark(tmp_path / "r", "run")
    assert is_marked(tmp_path / "r")
    body = json.loads((tmp_path / "r" / MARKER).read_text())
    assert body["tool"] == "relcomm" and body["kind"] == "run" and body["version"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / MARKER).write_text('{"tool": "not-relcomm"}')
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / MARKER).write_text("{")
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / MARKER).symlink_to(tmp_path / "r" / MARKER)
    assert not any(is_marked(tmp_path / n) for n in ("other", "garbled", "linked", "missing"))


def test_accepted_targets(tmp_path):
    (tmp_path / "empty").mkdir()
    mark(tmp_path / "ours", "run")
    for name in ("missing", "empty", "ours", "a/b/c"):
        assert check_target(tmp_path / name) == tmp_path / name


def test_plots_folder_inside_a_results_folder(tmp_path):
    mark(tmp_path / "run", "run")
    (tmp_path / "run" / "plots").mkdir()
    (tmp_path / "run" / "plots" / "timeseries.png").write_bytes(b"png")
    with pytest.raises(ScenarioError, match="not made by relcomm"):
        check_target(tmp_path / "run" / "plots")
    assert check_target(tmp_path / "run" / "plots", inside_results=True)


@pytest.mark.parametrize("make, expect", [
    (lambda p, u: u, "not made by relcomm"),
    (lambda p, u: u / "main.tex", "is a file"),
    (lambda p, u: u / "main.tex" / "out", "is a file, so no folder can be made"),
    (lambda p, u: p, "working folder or a folder above it"),
    (lambda p, u: p.parent, "working folder or a folder above it"),
])
def test_refused_targets_leave_everything_as_it_was(tmp_path, user_folder, monkeypatch, make, expect):
    monkeypatch.chdir(tmp_path)
    before = tree_digest(tmp_path)
    with pytest.raises(ScenarioError, match=expect) as info:
        check_target(make(tmp_path, user_folder), "--out")
    assert info.value.one_line().startswith("--out ") and "\n" not in info.value.one_line()
    assert tree_digest(tmp_path) == before


def test_a_symbolic_link_is_refused(tmp_path):
    mark(tmp_path / "real", "run")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(ScenarioError, match="symbolic link"):
        check_target(tmp_path / "link")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_parent_is_refused(tmp_path):
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    try:
        with pytest.raises(ScenarioError, match="cannot write into"):
            check_target(tmp_path / "ro" / "new" / "out")
    finally:
        (tmp_path / "ro").chmod(0o755)


def test_an_unwritable_parent_is_refused_even_for_root(tmp_path, monkeypatch):
    """Root bypasses permission bits, not a read-only mount: what access(2) denies is refused before work."""
    import simulator.folders as folders

    (tmp_path / "mounted").mkdir()
    real_access = os.access
    monkeypatch.setattr(folders.os, "access", lambda p, mode: False if str(p) == str(tmp_path / "mounted")
                        else real_access(p, mode))
    with pytest.raises(ScenarioError, match="cannot write into .*mounted .permission denied or read-only."):
        check_target(tmp_path / "mounted" / "new" / "out", "--out")
    mark(tmp_path / "mounted" / "res", "run")
    monkeypatch.setattr(folders.os, "access", lambda p, mode: False if str(p).endswith("res") else real_access(p, mode))
    with pytest.raises(ScenarioError, match="is not writable"):
        check_target(tmp_path / "mounted" / "res")
    assert sorted(p.name for p in (tmp_path / "mounted").iterdir()) == ["res"]


def test_staging_replaces_a_marked_folder_and_publishes_only_on_success(tmp_path):
    target = tmp_path / "res"
    with claim(target, "run") as c, c.staging() as staging:
        (staging / "summary.json").write_text("1")
    assert (target / "summary.json").read_text() == "1" and is_marked(target)
    with pytest.raises(RuntimeError), claim(target, "run") as c, c.staging() as staging:
        (staging / "summary.json").write_text("2")
        raise RuntimeError("the simulation failed")
    assert (target / "summary.json").read_text() == "1"  # the old results survive a failed run
    with claim(target, "run") as c, c.staging() as staging:
        (staging / "summary.json").write_text("3")
    assert (target / "summary.json").read_text() == "3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]  # no lock, staging or old folder left


def test_a_folder_filled_meanwhile_is_not_touched(tmp_path):
    target = tmp_path / "res"
    with pytest.raises(ScenarioError, match="filled by someone else"):
        with claim(target, "run") as c, c.staging():
            target.mkdir()
            (target / "mine.txt").write_text("user data")
    assert (target / "mine.txt").read_text() == "user data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]


def test_leftovers_of_dead_runs_go_only_when_marked_or_empty(tmp_path):
    mark(tmp_path / ".res.tmp-dead1", "run")
    (tmp_path / ".res.tmp-dead1" / "tasks.csv").write_bytes(b"x" * 1000)
    mark(tmp_path / ".res.old-123", "run")
    (tmp_path / ".res.tmp-empty").mkdir()
    (tmp_path / ".res.tmp-users").mkdir()  # same pattern, not ours: stays
    (tmp_path / ".res.tmp-users" / "notes.txt").write_text("keep")
    mark(tmp_path / ".other.tmp-x", "run")  # another folder's staging: not this claim's business
    with claim(tmp_path / "res", "run"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp-x", ".res.tmp-users"]
    assert (tmp_path / ".res.tmp-users" / "notes.txt").read_text() == "keep"
    assert [p.name for p in remove_leftovers(tmp_path)] == [".other.tmp-x"]


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    target = tmp_path / "res"
    with claim(target, "run"):
        with pytest.raises(ScenarioError, match="another relcomm command is writing"):
            with claim(target, "run"):
                pass
    with claim(target, "run"):  # released: the next writer gets it
        pass


@pytest.mark.parametrize("make", [
    lambda p: p.write_text("my notes on the lock-in amplifier\n"),
    lambda p: p.mkdir(),
    lambda p: ((p.parent / "elsewhere").write_text("x"), p.symlink_to(p.parent / "elsewhere")),
])
def test_a_users_file_named_like_the_lock_is_left_alone(tmp_path, make):
    lock = tmp_path / ".res.lock"
    make(lock)
    before = tree_digest(tmp_path)
    with pytest.raises(ScenarioError, match=r"\.res\.lock beside it"):
        with claim(tmp_path / "res", "run"):
            pass
    assert tree_digest(tmp_path) == before and os.path.lexists(lock)


def test_a_killed_holder_does_not_block_the_next_writer(tmp_path):
    """The lock is an flock: the OS drops it when the process dies, even by kill -9."""
    target = tmp_path / "res"
    script = textwrap.dedent(f"""
        import os, sys
        from simulator.folders import claim
        with claim({str(target)!r}, "run") as c, c.staging() as s:
            (s / "half.csv").write_text("half")
            print("ready", flush=True)
            sys.stdin.read()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(ScenarioError, match="another relcomm command"):
            with claim(target, "run"):
                pass
        proc.kill()
        proc.wait()
    finally:
        proc.kill()
    assert len(list(tmp_path.glob(".res.tmp-*"))) == 1  # what the killed run left
    with claim(target, "run") as c, c.staging() as staging:
        (staging / "summary.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]
