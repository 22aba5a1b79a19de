import pytest
import yaml

from simulator.config import load_scenario, parse_scenario
from simulator.errors import ScenarioError


def _write(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


def test_tiny_scenario_validates(tiny_dict):
    sc = parse_scenario(tiny_dict)
    assert [e.id for e in sc.encoders] == ["mlp-1", "mlp-2", "cnn-1"]
    assert sc.relative.similarity == ("cosine",)


@pytest.mark.parametrize("text, path, line, words", [
    ("encoders:\n  - id: a\n    arch: mlp\n    latnt: 3\n", "encoders[0].latnt", 4, "unknown key"),
    ("encoders:\n  - id: a\n    arch: mlp\n    latent_dim: .nan\n", "encoders[0].latent_dim", 4, "finite"),
    ("encoders:\n  - id: a\n    arch: rnn\n", "encoders[0].arch", 3, "mlp"),
    ("encoders:\n  - {id: a, arch: mlp}\n  - {id: a, arch: cnn}\n", "encoders[1].id", 3, "duplicate"),
    ("encoders:\n  - {id: a, arch: mlp}\nanchors: {count: 10}\nstitching: {anchors: [8, 16]}\n",
     "stitching.anchors[1]", 4, "exceeds"),
    ("encoders:\n  - {id: a, arch: mlp, latent_dim: -3}\n", "encoders[0].latent_dim", 2, "greater"),
    ("seed: 1\n", "encoders", 1, "required"),
    ("encoders:\n  - {id: a, arch: mlp}\nchannel: {bandwidth_hz: 0}\n", "channel.bandwidth_hz", 3, "greater"),
    ("encoders:\n  - {id: a, arch: mlp}\nstitching: {bits: [0]}\n", "stitching.bits", 3, "1..16"),
])
def test_bad_fields_name_path_and_line(tmp_path, text, path, line, words):
    with pytest.raises(ScenarioError) as err:
        load_scenario(_write(tmp_path, text))
    assert err.value.path == path
    assert err.value.line == line
    assert words in err.value.message
    assert "\n" not in str(err.value)


def test_yaml_syntax_error_has_line(tmp_path):
    with pytest.raises(ScenarioError) as err:
        load_scenario(_write(tmp_path, "seed: 1\nencoders: [\n"))
    assert "invalid YAML" in str(err.value) and err.value.line is not None


def test_python_tags_are_refused(tmp_path):
    with pytest.raises(ScenarioError) as err:
        load_scenario(_write(tmp_path, "seed: !!python/object/apply:os.system ['echo hi']\n"))
    assert "invalid YAML" in str(err.value)


def test_missing_and_huge_files(tmp_path):
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "nope.yaml")
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (2 << 20))
    with pytest.raises(ScenarioError, match="larger"):
        load_scenario(big)


def test_top_level_must_be_mapping(tmp_path):
    with pytest.raises(ScenarioError, match="mapping"):
        load_scenario(_write(tmp_path, "- 1\n- 2\n"))


def test_every_shipped_scenario_validates():
    from pathlib import Path

    files = sorted((Path(__file__).parents[1] / "scenarios").glob("*.yaml"))
    assert files, "no scenarios shipped"
    for f in files:
        assert yaml.safe_load(f.read_text())  # readable
        load_scenario(f)


def test_a_version_key_is_the_writer_s_and_must_be_a_string(tmp_path, tiny_dict):
    assert parse_scenario({**tiny_dict, "version": "0.0.1"}) == parse_scenario(tiny_dict)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**tiny_dict, "version": 3}))
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    assert e.value.path == "version" and "must be a string" in e.value.message and e.value.line is not None
