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
    assert any(
        line.startswith("door.yaml: runtime.backend: must be one of auto,") for line in lines
    )
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
    assert (
        c.liveness_model_path().name == "liveness-nuaa.int8.tflite"
        and c.liveness_model_path().is_file()
    )


def test_liveness_frames_beyond_the_policy_window_are_a_config_error():
    with pytest.raises(ConfigError) as e:
        parse_config(
            "policy: {frames: 4}\nliveness: {min_frames: 5, min_live_probability: 1.5}\n",
            "door.yaml",
        )
    msg = str(e.value)
    assert "door.yaml: liveness.min_frames: must be at most policy.frames (4), got 5" in msg
    assert "door.yaml: liveness.min_live_probability: must be between 0 and 1, got 1.5" in msg
    # Off, the window does not matter.
    parse_config("policy: {frames: 4}\nliveness: {enabled: false, min_frames: 5}\n")


def test_liveness_typo_gets_a_suggestion():
    with pytest.raises(
        ConfigError,
        match=r"liveness.min_live_prob: unknown key; did you mean liveness.min_live_probability\?",
    ):
        parse_config("liveness: {min_live_prob: 0.5}\n", "x.yaml")


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "match:\n  min_margin: 0.1\nmatch:\n  min_cosine_similarity: -1\n",
            "not valid YAML (line 3, column 1): key 'match' given twice (first on line 1)",
        ),
        (
            "match:\n  min_cosine_similarity: 0.6\n  min_cosine_similarity: -1\n",
            "not valid YAML (line 3, column 3): key 'min_cosine_similarity' given twice (first on line 2)",
        ),
        (
            "policy: &p {frames: 5}\nlock: *p\n",
            "not valid YAML (line 2, column 7): aliases (*name) are not allowed",
        ),
        (
            "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
            "not valid YAML (line 2, column 8): aliases (*name) are not allowed",
        ),
    ],
)
def test_duplicate_keys_and_aliases_are_refused_with_their_line(text, expected):
    """A second `match:` must not silently replace the first, nor an alias multiply a file (billion laughs)."""
    with pytest.raises(ConfigError) as e:
        parse_config(text, "my.yaml")
    assert str(e.value).startswith(f"my.yaml: {expected}") and "\n" not in str(e.value)


def test_a_config_that_is_not_utf8_is_one_line(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("# caf\xe9\nmatch: {min_margin: 0.1}\n".encode("latin-1"))
    with pytest.raises(ConfigError) as e:
        load_config(bad)
    assert str(e.value) == f"{bad}: not UTF-8 text (byte 5)"


def test_more_matching_frames_than_frames_is_a_config_error():
    with pytest.raises(ConfigError) as e:
        parse_config(
            "policy: {frames: 3, min_matching_frames: 4}\nliveness: {min_frames: 3}\n", "my.yaml"
        )
    assert str(e.value) == (
        "my.yaml: policy.min_matching_frames: must be at most policy.frames (3), got 4: "
        "nobody could ever be accepted"
    )


def test_relay_off_reads_only_the_relay_pin_and_its_polarity(tmp_path):
    from edge.config import load_lock_config

    typo = tmp_path / "typo.yaml"
    typo.write_text(
        "lock:\n  relay_pin: 22\n  active_high: false\n  unlock_s: banana\nmatch:\n  min_cosine_similarty: 0.5\n"
    )
    with pytest.raises(ConfigError):
        load_config(typo)  # the daemon refuses it ...
    lock = load_lock_config(typo)  # ... but the backstop still knows which pin to relock
    assert (lock.relay_pin, lock.active_high) == (22, False)
    assert load_lock_config(None).relay_pin == load_config().lock.relay_pin
    bad = tmp_path / "bad.yaml"
    bad.write_text("lock:\n  relay_pin: 99\n")
    with pytest.raises(
        ConfigError, match=r"bad.yaml: lock.relay_pin: must be between 0 and 53, got 99"
    ):
        load_lock_config(bad)


def test_a_nul_byte_in_a_path_is_a_config_error():
    with pytest.raises(ConfigError) as e:
        parse_config('gallery: {path: "/var/lib/facegate/g\\0.json"}\n', "my.yaml")
    assert str(e.value) == "my.yaml: gallery.path: must be at most 4096 characters with no NUL byte"


def test_snapshots_kept_for_zero_days_is_a_config_error():
    with pytest.raises(ConfigError) as e:
        parse_config("log: {snapshots_dir: /tmp/s, snapshot_days: 0}\n", "my.yaml")
    assert str(e.value).startswith(
        "my.yaml: log.snapshot_days: 0 keeps no snapshot, yet log.snapshots_dir is set"
    )
    assert parse_config("log: {snapshots_dir: null, snapshot_days: 0}\n").log.snapshot_days == 0


def test_a_config_anyone_can_write_is_refused(tmp_path):
    cfg = tmp_path / "door.yaml"
    cfg.write_text("match: {min_margin: 0.1}\n")
    cfg.chmod(0o666)
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    assert str(e.value) == f"{cfg}: any user can write this config (mode 0666); run chmod o-w {cfg}"
    cfg.chmod(0o644)
    tmp_path.chmod(0o777)
    try:
        with pytest.raises(ConfigError, match=r"its folder .* is world-writable"):
            load_config(cfg)
    finally:
        tmp_path.chmod(0o700)
    assert load_config(cfg).match.min_margin == 0.1


def test_remote_unlock_needs_tls_or_the_code_is_public():
    text = "mqtt: {remote_unlock: true, code_file: /etc/facegate/remote-code}\n"
    with pytest.raises(ConfigError) as e:
        parse_config(text, "door.yaml")
    lines = [line for line in str(e.value).splitlines() if "mqtt.remote_unlock" in line]
    assert len(lines) == 1 and "mqtt.tls: true" in lines[0] and "public" in lines[0]
    cfg = parse_config(
        "mqtt: {remote_unlock: true, tls: true, code_file: /etc/facegate/remote-code}\n", "d.yaml"
    )
    assert cfg.mqtt.remote_unlock and cfg.mqtt.tls
