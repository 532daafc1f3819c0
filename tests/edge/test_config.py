import pytest

from edge.config import DEFAULT_CONFIG, Config, load_config, parse_config
from edge.errors import ConfigError


def test_shipped_default_config_is_the_dataclass_defaults():
    cfg = load_config()
    assert cfg.source == str(DEFAULT_CONFIG)
    assert cfg == Config()  # the commented file documents the real defaults


def test_every_key_of_the_dataclasses_is_documented_in_default_yaml():
    import dataclasses

    import yaml

    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    for section in dataclasses.fields(Config):
        if section.metadata.get("internal"):
            continue
        sub = dataclasses.fields(section.default_factory())
        assert set(data[section.name]) == {f.name for f in sub}, section.name


def test_all_errors_are_reported_at_once_with_file_and_key():
    text = """
runtime:
  threads: 0
  backend: tensorflow
match:
  min_cosine_similarity: 1.7
detect:
  min_scor: 0.5
  min_face_px: "big"
"""
    with pytest.raises(ConfigError) as e:
        parse_config(text, "door.yaml")
    lines = str(e.value).splitlines()
    assert "door.yaml: runtime.threads: must be between 1 and 64, got 0" in lines
    assert any(l.startswith("door.yaml: runtime.backend: must be one of auto,") for l in lines)
    assert "door.yaml: match.min_cosine_similarity: must be between -1 and 1, got 1.7" in lines
    assert "door.yaml: detect.min_scor: unknown key; did you mean detect.min_score?" in lines
    assert "door.yaml: detect.min_face_px: must be a whole number, got 'big'" in lines
    assert len(lines) == 5


def test_unknown_section_gets_a_suggestion():
    with pytest.raises(ConfigError, match=r"x.yaml: mach: unknown key; did you mean match\?"):
        parse_config("mach: {}\n", "x.yaml")


def test_bad_yaml_names_file_and_line():
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML \(line 3, column 1\)"):
        parse_config("runtime:\n  threads: [1\n", "bad.yaml")


def test_wrong_shapes_are_errors_not_crashes():
    with pytest.raises(ConfigError, match="<top level>: must be a mapping"):
        parse_config("- 1\n- 2\n", "x.yaml")
    with pytest.raises(ConfigError, match="runtime: must be a mapping"):
        parse_config("runtime: 3\n", "x.yaml")
    with pytest.raises(ConfigError, match="threads: must be a whole number, got True"):
        parse_config("runtime: {threads: true}\n", "x.yaml")


def test_empty_file_means_defaults():
    assert parse_config("", "empty.yaml") == Config()


def test_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.yaml: cannot read config"):
        load_config(tmp_path / "nope.yaml")


def test_null_models_dir_means_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("FACEGATE_MODEL_DIR", str(tmp_path))
    cfg = parse_config("models: {dir: null}\n")
    assert cfg.model_dir() == tmp_path
    assert cfg.embedder_path() == tmp_path / cfg.models.embedder
    cfg = parse_config("models: {embedder: /opt/m/x.tflite}\n")
    assert str(cfg.embedder_path()) == "/opt/m/x.tflite"


def test_shipped_configs_are_valid_and_share_the_default_embedder_and_threshold():
    root = DEFAULT_CONFIG.parents[1]
    default = load_config()
    for rel in ("systemd/facegate.yaml", "tools/demo.yaml"):
        cfg = load_config(root / rel)
        assert cfg.models.embedder == default.models.embedder == Config().models.embedder, rel
        assert cfg.models.landmarker == default.models.landmarker, rel
        assert cfg.match == default.match == Config().match, rel  # one threshold everywhere


def test_liveness_is_on_by_default_with_the_shipped_model():
    c = load_config()
    assert c.liveness.enabled and c.liveness.model is None
    assert c.liveness_model_path().name == "liveness-nuaa.int8.tflite" and c.liveness_model_path().is_file()


def test_liveness_frames_beyond_the_policy_window_are_a_config_error():
    with pytest.raises(ConfigError) as e:
        parse_config("policy: {frames: 4}\nliveness: {min_frames: 5, min_live_probability: 1.5}\n", "door.yaml")
    msg = str(e.value)
    assert "door.yaml: liveness.min_frames: must be at most policy.frames (4), got 5" in msg
    assert "door.yaml: liveness.min_live_probability: must be between 0 and 1, got 1.5" in msg
    # Off, the window does not matter.
    parse_config("policy: {frames: 4}\nliveness: {enabled: false, min_frames: 5}\n")


def test_liveness_typo_gets_a_suggestion():
    with pytest.raises(ConfigError, match=r"liveness.min_live_prob: unknown key; did you mean liveness.min_live_probability\?"):
        parse_config("liveness: {min_live_prob: 0.5}\n", "x.yaml")
