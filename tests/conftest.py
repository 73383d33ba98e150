"""Shared fixtures: paths to the shared models and media, temp data dirs, settings files, the model
pack, a broker and MQTT publishers."""
from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from edge.context import ServiceContext
    from edge.mqtt.publisher import MqttPublisher
    from edge.pipeline.pack import ModelPack

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
MODELS_DIR = SHARED / "models" / "face"
MEDIA_DIR = SHARED / "media"
CLIP = MEDIA_DIR / "short_hamilton_clip.mp4"
FACEPRO = [sys.executable, "-m", "edge"]
DEVICE = "test-device"  # the device id in every settings file written here


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FACEPRO_* variable from the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("FACEPRO_"):
            monkeypatch.delenv(key, raising=False)


@pytest.fixture(autouse=True)
def _no_log_handler_outlives_its_test() -> Iterator[None]:
    """A handler that setup_logging (or an in-process CLI run) installed writes to this test's
    captured stderr, which pytest closes afterwards; a camera thread still logging then prints
    "I/O operation on closed file" into a later test's output."""
    yield
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "_facepro", False)]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


def write_settings_file(path: Path, data_dir: Path, overrides: dict[str, Any] | None = None) -> Path:
    """Write a device settings file: data_dir and models_dir point at ``data_dir`` and the shared models.

    Each section in ``overrides`` updates the default section of that name; any other value replaces it.
    """
    data: dict[str, Any] = {
        "device": {"id": DEVICE, "name": "Test device"},
        "paths": {"data_dir": str(data_dir), "models_dir": str(MODELS_DIR)},
        "web": {"host": "127.0.0.1", "port": 0},
    }
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    path.write_text(json.dumps(data, indent=2))
    return path


@pytest.fixture
def write_settings(tmp_path: Path, data_dir: Path) -> Callable[..., Path]:
    """Write a device settings file in tmp_path; data_dir and models_dir point at temp/shared dirs."""

    def write(overrides: dict[str, Any] | None = None, name: str = "settings.json") -> Path:
        return write_settings_file(tmp_path / name, data_dir, overrides)

    return write


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEPRO_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@pytest.fixture
def mosquitto(tmp_path: Path):
    """A real broker for one test; ``mosquitto.stop()`` / ``.start()`` simulate an outage."""
    from tests.support.mosquitto import Mosquitto

    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    broker = Mosquitto(workdir).start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def pack(request: pytest.FixtureRequest) -> ModelPack:
    """The shared model pack, loaded once per test module with that module's ``PACK_OPTIONS``."""
    from edge.pipeline.pack import load_model_pack

    return load_model_pack(MODELS_DIR, **getattr(request.module, "PACK_OPTIONS", {}))


@pytest.fixture
def publisher_factory() -> Iterator[Callable[[ServiceContext], MqttPublisher]]:
    """Start an MQTT publisher on a context; every one started is stopped after the test."""
    from edge.mqtt.publisher import MqttPublisher

    started: list[MqttPublisher] = []

    def make(ctx: ServiceContext) -> MqttPublisher:
        publisher = MqttPublisher(ctx)
        publisher.start()
        started.append(publisher)
        return publisher

    yield make
    for publisher in started:
        publisher.stop()
