"""README.md as a contract: its command examples run, its scenario reference matches the schema.

**Commands.** Every line of a ```-fenced block that starts with ``relcomm``, ``.venv/bin/relcomm``
or ``python -m simulator`` is run, in order, and must exit 0 (other lines, such as ``make demo``,
are not commands of the program and are skipped). How:

- ``validate``, ``schema`` and ``--help``/``--version`` run as written, on the real scenarios;
- ``run``, ``stitch`` and ``plot`` run in a temporary folder whose ``scenarios/`` holds *tiny
  equivalents* of the real files (:func:`tiny_equivalent`): the same agents, links and
  controller, on sklearn digits with the cached tiny encoders and a few hundred slots;
- ``relcomm …`` lines call :func:`simulator.cli.main` in-process; ``python -m simulator …``
  lines start the module for real; ``> FILE`` is honoured (the file lands in the temporary
  folder).

**Reference.** Every top-level section of the JSON Schema, and every field of each section, is
named in the row of the README's scenario reference table that documents it. The columns of
``slots.csv`` and ``tasks.csv`` and the DESIGN §4 keys of ``summary.json`` are all documented.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from simulator.cli import main
from simulator.config import Scenario
from simulator.network.metrics import SLOT_COLUMNS, TASK_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
TINY_SECTIONS = yaml.safe_load((ROOT / "notebooks" / "tiny.yaml").read_text())
SMALL_STITCHING = {"anchors": [32], "methods": ["absolute", "relative"], "bits": [4, 32], "snr_db": [0.0, 20.0],
                   "noisy_bits": [4], "calibrate": False}
REAL_COMMANDS = {"validate", "schema", "--help", "-h", "--version"}


def commands() -> list[str]:
    """The command lines of the README's fenced blocks, in order."""
    out = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", README, flags=re.S | re.M):
        for line in block.splitlines():
            line = line.strip()
            if line.startswith(("relcomm ", ".venv/bin/relcomm ", "python -m simulator")):
                out.append(line)
    return out


def tiny_equivalent(data: dict) -> dict:
    """A shipped scenario on sklearn digits with tiny encoders (same ids and architectures), briefly."""
    tiny = copy.deepcopy(TINY_SECTIONS)
    encoders = []
    for enc in data["encoders"]:
        # The tiny encoder of the same architecture and seed when there is one (trained once per
        # session); a family with no tiny image counterpart (text, pretrained) becomes a tiny MLP.
        same_arch = [t for t in tiny["encoders"] if t["arch"] == enc["arch"]] or \
            [t for t in tiny["encoders"] if t["arch"] == "mlp"]
        pick = next((t for t in same_arch if t["seed"] == enc.get("seed", 0)), same_arch[0])
        encoders.append({**pick, "id": enc["id"]})
    out = {**data, "data": tiny["data"], "encoders": encoders, "anchors": tiny["anchors"], "heads": tiny["heads"],
           "stitching": SMALL_STITCHING}
    if "simulation" in out:
        out["simulation"] = {**out["simulation"], "slots": min(out["simulation"].get("slots", 1000), 200)}
    controller = out.get("controller") or {}
    if controller.get("kind", "static") == "static" and "anchors" in controller:
        out["controller"] = {**controller, "anchors": SMALL_STITCHING["anchors"][-1]}  # the head the stitch trains
    elif "kind" in controller:  # a per-slot controller: options the tiny calibration table has
        out["controller"] = {**controller, "anchors": SMALL_STITCHING["anchors"], "bits": SMALL_STITCHING["bits"][:1],
                             "settle_slots": min(controller.get("settle_slots", 0), 50)}
        if out.get("simulation", {}).get("accuracy_target") is not None:
            out["simulation"]["accuracy_target"] = 0.5  # what tiny encoders surely reach
    if "sweep" in out:
        out["sweep"] = {**out["sweep"], "seeds": 1}
    return out


def test_the_readme_shows_the_main_commands():
    verbs = {shlex.split(c)[1] if c.split()[0].endswith("relcomm") else shlex.split(c)[3] for c in commands()}
    assert {"run", "stitch", "validate", "schema", "plot", "--help"} <= verbs
    assert any("--set" in c for c in commands())


@pytest.mark.slow
def test_every_readme_command_runs(tmp_path, tiny_zoo, monkeypatch, capsys):
    work = tmp_path / "work"
    (work / "scenarios").mkdir(parents=True)
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        (work / "scenarios" / path.name).write_text(yaml.safe_dump(tiny_equivalent(yaml.safe_load(path.read_text()))))
    ran = []
    for line in commands():
        tokens = shlex.split(line, comments=True)
        target = None
        if ">" in tokens:
            i = tokens.index(">")
            tokens, target = tokens[:i], work / tokens[i + 1]
        module = tokens[0] == "python"
        args = tokens[3:] if module else tokens[1:]
        cwd = ROOT if set(args[:1]) & REAL_COMMANDS or "--help" in args else work
        if module:
            proc = subprocess.run([sys.executable, "-m", "simulator", *args], cwd=cwd, capture_output=True, text=True,
                                  timeout=600)
            rc, out, err = proc.returncode, proc.stdout, proc.stderr
        else:
            monkeypatch.chdir(cwd)
            capsys.readouterr()
            try:
                rc = main(args)
            except SystemExit as exc:  # --help
                rc = exc.code or 0
            out, err = capsys.readouterr()
        assert rc == 0, f"{line!r} exited {rc}: {err.strip()}"
        if target is not None:
            target.write_text(out)
        ran.append(args[0])
    monkeypatch.chdir(ROOT)
    assert {"validate", "run", "stitch", "plot", "schema"} <= set(ran)
    # What the commands promise is there.
    for line in commands():
        tokens = shlex.split(line, comments=True)
        if "--out" in tokens:
            out_dir = work / tokens[tokens.index("--out") + 1]
            assert (out_dir / "plots").is_dir() and any((out_dir / "plots").glob("*.pdf")), line
        if tokens[1:2] == ["plot"]:
            assert any((work / tokens[2] / "plots").glob("*.png")), line
    schema_files = list(work.glob("*.json"))
    assert schema_files and all("properties" in json.loads(p.read_text()) for p in schema_files)
    resolved = yaml.safe_load((work / "results" / "quickstart-b4" / "scenario.yaml").read_text())
    assert resolved["controller"]["bits"] == 4 and resolved["simulation"]["slots"] == 1000


# --------------------------------------------------------------------------- reference


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end >= 0 else None]


def _rows(section: str) -> dict[str, str]:
    """Table rows of a section: each backticked name of the first cell → the whole row."""
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            for name in re.findall(r"`([^`]+)`", first):
                rows[name] = line
    return rows


def _fields(node: dict, defs: dict) -> list[str]:
    """Field names of a schema node (through $ref, arrays, optional values and unions)."""
    if "$ref" in node:
        return _fields(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        return _fields(node["items"], defs)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            return list(dict.fromkeys(f for n in node[key] for f in _fields(n, defs)))
    return list(node.get("properties", {}))


def test_scenario_reference_names_every_section_and_field():
    schema = Scenario.model_json_schema()
    rows = _rows(_section("Scenario reference"))
    missing = []
    for section, node in schema["properties"].items():
        if section not in rows:
            missing.append(section)
            continue
        missing += [f"{section}.{f}" for f in _fields(node, schema.get("$defs", {}))
                    if not re.search(rf"`[^`]*\b{re.escape(f)}\b[^`]*`", rows[section])]
    assert not missing, f"document these in README.md's scenario reference: {', '.join(missing)}"


def test_results_format_is_documented():
    text = _section("Results")
    design_summary = ("slots", "tasks_arrived", "tasks_delivered", "tasks_dropped", "tasks_pending", "accuracy",
                      "mean_delay_s", "p95_delay_s", "avg_power_w", "energy_j", "delay_target_s", "accuracy_target",
                      "delay_met", "accuracy_met", "seed", "wall_s", "per_agent")
    missing = [c for c in (*SLOT_COLUMNS, *TASK_COLUMNS, *design_summary) if f"`{c}`" not in text]
    assert not missing, f"document these in README.md's results section: {', '.join(missing)}"
