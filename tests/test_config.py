"""Settings: defaults, device file, environment overrides, and one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.config import ConfigError, load_settings
from tests.support.cli import run_cli


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_defaults_load_with_every_key_later_issues_rely_on() -> None:
    s = load_settings(env={})
    for key in ("device.id", "device.name", "paths.data_dir", "paths.models_dir", "database.path",
                "cameras", "recognition.det_threshold", "recognition.match_threshold",
                "recognition.cooldown_s", "mqtt.enabled", "mqtt.host", "mqtt.port", "mqtt.username",
                "mqtt.password", "mqtt.tls", "mqtt.base_topic", "mqtt.discovery_prefix",
                "telemetry.interval_s", "alerts", "backup.schedule", "backup.keep", "backup.encrypt",
                "backup.targets", "web.host", "web.port"):
        s[key]  # raises KeyError if missing
    assert s["database.path"] == str(Path(s["paths.data_dir"]) / "facepro.db")
    assert s["recognition.match_threshold"] == 0.4
    assert s["mqtt.base_topic"] == "facepro" and s["mqtt.discovery_prefix"] == "homeassistant"
    assert s["telemetry.interval_s"] == 15


def test_device_file_overrides_and_resolves_relative_paths(tmp_path: Path) -> None:
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    path = write(conf_dir / "settings.json", {
        "device": {"name": "Front door"},
        "paths": {"data_dir": "data"},
        "cameras": [{"name": "door", "source": "clips/door.mp4"},
                    {"name": "usb", "source": 0},
                    {"name": "rtsp", "source": "rtsp://cam.local/stream"}],
        "mqtt": {"port": 8883},
    })
    s = load_settings(path, env={})
    assert s["device.name"] == "Front door"
    assert s["paths.data_dir"] == str(conf_dir / "data")
    assert s["database.path"] == str(conf_dir / "data" / "facepro.db")
    assert s["cameras"][0]["source"] == str(conf_dir / "clips" / "door.mp4")
    assert s["cameras"][1]["source"] == 0
    assert s["cameras"][2]["source"] == "rtsp://cam.local/stream"
    assert s["cameras"][0]["enabled"] is True  # item defaults filled in
    assert s["mqtt.port"] == 8883 and s["mqtt.host"] == "localhost"
    assert s.source == path


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path / "s.json", {"device": {"name": "from env"}})
    assert load_settings(env={"FACEPRO_CONFIG": str(path)})["device.name"] == "from env"


def test_environment_overrides_win(tmp_path: Path) -> None:
    path = write(tmp_path / "s.json", {"paths": {"data_dir": "/from/file"}, "mqtt": {"host": "file-host"}})
    s = load_settings(path, env={"FACEPRO_DATA_DIR": str(tmp_path / "d"), "FACEPRO_MODELS_DIR": "/models",
                                 "FACEPRO_MQTT_HOST": "broker.lan", "FACEPRO_MQTT_PORT": "1884"})
    assert s["paths.data_dir"] == str(tmp_path / "d")
    assert s["paths.models_dir"] == "/models"
    assert s["database.path"] == str(tmp_path / "d" / "facepro.db")
    assert s["mqtt.host"] == "broker.lan" and s["mqtt.port"] == 1884


@pytest.mark.parametrize("data, message", [
    ({"mqtt": {"hots": "x"}}, "unknown key mqtt.hots"),
    ({"colour": "red"}, "unknown key colour"),
    ({"mqtt": {"port": "1883"}}, "key mqtt.port: expected an integer, got a string"),
    ({"mqtt": {"enabled": "yes"}}, "key mqtt.enabled: expected true or false, got a string"),
    ({"recognition": {"match_threshold": None}}, "key recognition.match_threshold: must not be null"),
    ({"mqtt": {"protocol": "4"}}, "key mqtt.protocol: '4' is not one of '3.1.1', '5'"),
    ({"web": {"port": -1}}, "key web.port: -1 is below the minimum 0"),
    ({"recognition": {"reuse_embedding_frames": -1}}, "key recognition.reuse_embedding_frames: -1 is below the minimum 0"),
    ({"cameras": {"name": "x"}}, "key cameras: expected a list, got an object"),
    ({"cameras": [{"name": "x"}]}, "missing key cameras[0].source"),
    ({"cameras": [{"name": "x", "source": 0, "zoom": 2}]}, "unknown key cameras[0].zoom"),
    ({"cameras": [{"name": "x", "source": 0, "det_max_side": 16}]},
     "key cameras[0].det_max_side: 16 is below the minimum 32"),
    ({"cameras": [{"name": "x", "source": 0}, {"name": "x", "source": 1}]},
     "key cameras[1].name: duplicate name 'x'"),
    ({"backup": {"targets": [{"name": "nas", "type": "smb"}]}},
     "missing key backup.targets[0].server (needed by type 'smb')"),
    ({"backup": {"targets": [{"name": "t", "type": "floppy", "path": "/x"}]}},
     "key backup.targets[0].type: 'floppy' is not one of"),
    ({"backup": {"encrypt": {"enabled": True}}}, "key backup.encrypt: enabled needs a passphrase or a key_file"),
    ([1, 2], "the top level must be a JSON object"),
])
def test_bad_settings_name_the_file_and_key(tmp_path: Path, data: object, message: str) -> None:
    path = write(tmp_path / "bad.json", data)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    text = str(info.value)
    assert text.startswith(f"{path}: ")
    assert message in text
    assert "\n" not in text


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.json", '{\n  "mqtt": {"host": "x",}\n}')
    with pytest.raises(ConfigError, match=r"bad.json: invalid JSON at line 2"):
        load_settings(path, env={})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.json: settings file not found"):
        load_settings(tmp_path / "nope.json", env={})


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="environment FACEPRO_MQTT_PORT: expected an integer, got 'abc'"):
        load_settings(env={"FACEPRO_MQTT_PORT": "abc"})


def test_secrets_are_masked_in_redacted_settings(tmp_path: Path) -> None:
    path = write(tmp_path / "s.json", {
        "mqtt": {"password": "hunter2-mqtt"},
        "backup": {"encrypt": {"enabled": True, "passphrase": "hunter2-backup"},
                   "targets": [{"name": "nas", "type": "smb", "server": "nas", "share": "b",
                                "password": "hunter2-smb"}]},
    })
    s = load_settings(path, env={})
    text = json.dumps(s.redacted())
    for secret in ("hunter2-mqtt", "hunter2-backup", "hunter2-smb"):
        assert secret not in text
    assert s["mqtt.password"] == "hunter2-mqtt"  # the real value is still there for use


@pytest.mark.parametrize("args, message", [
    (["--config", "{missing}", "config", "check"], "settings file not found"),
    (["--config", "{bad}", "migrate", "status"], "unknown key mqtt.hots"),
    (["--config", "{bad}", "run"], "unknown key mqtt.hots"),
])
def test_cli_exits_2_with_one_line_naming_the_file(tmp_path: Path, args: list[str], message: str) -> None:
    bad = write(tmp_path / "bad.json", {"mqtt": {"hots": "x"}})
    paths = {"missing": str(tmp_path / "missing.json"), "bad": str(bad)}
    argv = [a.format(**paths) for a in args]
    proc = run_cli(None, *argv)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]
    assert ("missing.json" in lines[0]) or ("bad.json" in lines[0])


def test_cli_bad_argument_exits_2() -> None:
    proc = run_cli(None, "migrate", "down")
    assert proc.returncode == 2
    assert "--to" in proc.stderr


def test_config_show_masks_secrets(write_settings) -> None:
    path = write_settings({"mqtt": {"password": "s3cret-value-1"}})
    proc = run_cli(path, "config", "show", log_level="debug")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["mqtt"]["password"] == "***"
    assert "s3cret-value-1" not in proc.stdout + proc.stderr
