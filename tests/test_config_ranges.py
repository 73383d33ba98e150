"""Settings that used to pass ``config check`` and then break ``run`` (issue 13, item 7): every
number has a range, every enumerated value a closed set, every identifier a pattern, NaN and
Infinity are refused; the schema is published as JSON Schema and matches the shipped files."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from edge.config import ConfigError, default_settings_text, load_settings
from edge.config.json_schema import settings_json_schema
from edge.config.schema import ORT_PROVIDERS
from tests.conftest import REPO
from tests.support.cli import run_cli

# (device file text, the key the error must name, a phrase of the reason)
ISSUE_EXAMPLES = [
    ('{"web": {"max_upload_mb": 1e308}}', "web.max_upload_mb", "above the maximum 4096"),
    ('{"telemetry": {"sample_interval_s": 1e300}}', "telemetry.sample_interval_s", "above the maximum 3600"),
    ('{"device": {"id": "../../etc"}}', "device.id", "letters, digits"),
    ('{"web": {"port": 99999}}', "web.port", "above the maximum 65535"),
    ('{"recognition": {"det_threshold": NaN}}', "recognition.det_threshold", "not a finite number"),
    ('{"events": {"retention_days": Infinity}}', "events.retention_days", "not a finite number"),
    ('{"alerts": {"low_fps": {"threshold": -Infinity}}}', "alerts.low_fps.threshold", "not a finite number"),
    ('{"recognition": {"match_threshold": 7.5}}', "recognition.match_threshold", "above the maximum 1"),
    ('{"mqtt": {"port": 70000}}', "mqtt.port", "above the maximum 65535"),
    ('{"events": {"snapshot_quality": 500}}', "events.snapshot_quality", "above the maximum 100"),
    ('{"pipeline": {"providers": ["CUDAExecutionProvidor"]}}', "pipeline.providers[0]", "is not one of"),
    ('{"mqtt": {"base_topic": "a/+/b"}}', "mqtt.base_topic", "without '+', '#'"),
    ('{"mqtt": {"base_topic": "a/#"}}', "mqtt.base_topic", "without '+', '#'"),
    ('{"mqtt": {"discovery_prefix": "$SYS"}}', "mqtt.discovery_prefix", "leading '$'"),
    ('{"mqtt": {"host": "broker\\nevil"}}', "mqtt.host", "a host name"),
    ('{"backup": {"targets": [{"name": "n", "type": "smb", "server": "s", "share": "x", "port": 99999}]}}',
     "backup.targets[0].port", "above the maximum 65535"),
    ('{"backup": {"targets": [{"name": "a/b", "type": "local", "path": "/tmp/x"}]}}',
     "backup.targets[0].name", "letters, digits"),
    ('{"cameras": [{"name": "c", "source": 0, "ring_size": 100000}]}', "cameras[0].ring_size", "above the maximum"),
    ('{"backup": {"keep": 1e9}}', "backup.keep", "expected an integer"),
    ('{"device": {"name": "two\\nlines"}}', "device.name", "on one line"),
    ('{"mqtt": {"keepalive_s": 1000000}}', "mqtt.keepalive_s", "above the maximum 65535"),
    ('{"web": {"host": "0.0.0.0", "max_upload_mb": 0.5}}', "web.max_upload_mb", "below the minimum 1"),
    ('{"paths": {"data_dir": "/var/lib/a\\u0000b"}}', "paths.data_dir", "NUL"),
    ('{"web": {"port": ' + "9" * 5000 + '}}', "invalid JSON", "digits"),
]


@pytest.mark.parametrize("text,key,reason", ISSUE_EXAMPLES, ids=[e[1] + ":" + e[0][-24:] for e in ISSUE_EXAMPLES])
def test_value_run_would_choke_on_is_refused_by_load_naming_the_key(tmp_path: Path, text: str, key: str,
                                                                     reason: str) -> None:
    path = tmp_path / "device.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    message = str(info.value)
    assert message.startswith(str(path)) and key in message and reason in message, message
    assert "\n" not in message


@pytest.mark.parametrize("index", [0, 2, 4, 10, 11])
def test_config_check_exits_2_with_one_line(tmp_path: Path, index: int) -> None:
    text, key, _reason = ISSUE_EXAMPLES[index]
    path = tmp_path / "device.json"
    path.write_text(text)
    proc = run_cli(path, "config", "check")
    assert proc.returncode == 2 and key in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_environment_override_is_range_checked_too() -> None:
    with pytest.raises(ConfigError, match=r"key mqtt\.port: 70000 is above the maximum 65535"):
        load_settings(env={"FACEPRO_MQTT_PORT": "70000"})
    with pytest.raises(ConfigError, match=r"key device\.id: .* letters, digits"):
        load_settings(env={"FACEPRO_DEVICE_ID": "../../etc"})


def test_values_at_the_edges_of_each_range_still_load(tmp_path: Path) -> None:
    path = tmp_path / "device.json"
    path.write_text(json.dumps({
        "device": {"id": "a" * 64, "name": "Front door (north) – ünit 2"},
        "web": {"port": 65535, "max_upload_mb": 4096},
        "mqtt": {"port": 1, "base_topic": "site/a-1/facepro", "host": "fe80::1", "keepalive_s": 65535},
        "recognition": {"match_threshold": 1, "det_threshold": 0},
        "events": {"snapshot_quality": 100},
        "pipeline": {"providers": ["CoreMLExecutionProvider", "CPUExecutionProvider"]},
        "cameras": [{"name": "yard/2", "source": 0}],
    }))
    s = load_settings(path, env={})
    assert s["web.port"] == 65535 and s["mqtt.base_topic"] == "site/a-1/facepro"


def test_provider_names_are_every_one_onnxruntime_defines() -> None:
    ort = pytest.importorskip("onnxruntime")
    assert set(ort.get_all_providers()) <= set(ORT_PROVIDERS)


SCHEMA_DOC = REPO / "docs" / "settings.schema.json"


def test_published_json_schema_matches_the_command_and_validates_the_shipped_files() -> None:
    proc = run_cli(None, "config", "schema")
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed == settings_json_schema()
    assert json.loads(SCHEMA_DOC.read_text()) == printed, "regenerate: facepro config schema > docs/settings.schema.json"
    jsonschema.Draft202012Validator.check_schema(printed)
    validator = jsonschema.Draft202012Validator(printed)
    for name, text in (("shipped defaults", default_settings_text()),
                       ("deploy/settings.device.json", (REPO / "deploy" / "settings.device.json").read_text()),
                       ("config/demo.json", (REPO / "config" / "demo.json").read_text())):
        errors = [e.message for e in validator.iter_errors(json.loads(text))]
        assert errors == [], f"{name}: {errors}"


@pytest.mark.parametrize("text,key,reason", [e for e in ISSUE_EXAMPLES if "NaN" not in e[0] and "Infinity" not in e[0]
                                              and "invalid JSON" not in e[1]],
                         ids=lambda v: v if isinstance(v, str) and "." in v and "{" not in v else None)
def test_json_schema_refuses_what_the_loader_refuses(text: str, key: str, reason: str) -> None:
    validator = jsonschema.Draft202012Validator(settings_json_schema())
    assert list(validator.iter_errors(json.loads(text))), f"the JSON Schema accepts {text}"


def test_every_number_in_the_schema_has_a_range() -> None:
    """A row added without bounds is the 1e308 hole again: every number needs both ends."""
    from edge.config.schema import SCHEMA, Field, Item, ListOf

    unbounded: list[str] = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, Field):
            numeric = (int in node.types or float in node.types) and bool not in node.types
            if numeric and (node.minimum is None or node.maximum is None):
                unbounded.append(path)
        elif isinstance(node, ListOf):
            walk(node.item, path + "[]")
        elif isinstance(node, Item):
            for key, child in node.fields.items():
                walk(child, f"{path}.{key}")
        elif isinstance(node, dict):
            for key, child in node.items():
                walk(child, f"{path}.{key}" if path else key)

    walk(SCHEMA, "")
    assert unbounded == []
