"""Shared fixtures: paths to the shared models and media, temp data dirs, settings files."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
MODELS_DIR = SHARED / "models" / "face"
MEDIA_DIR = SHARED / "media"
CLIP = MEDIA_DIR / "short_hamilton_clip.mp4"
FACEPRO = [sys.executable, "-m", "edge"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FACEPRO_* variable from the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("FACEPRO_"):
            monkeypatch.delenv(key, raising=False)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def write_settings(tmp_path: Path, data_dir: Path) -> Callable[..., Path]:
    """Write a device settings file; data_dir and models_dir point at temp/shared dirs."""

    def write(overrides: dict[str, Any] | None = None, name: str = "settings.json") -> Path:
        data: dict[str, Any] = {
            "device": {"id": "test-device", "name": "Test device"},
            "paths": {"data_dir": str(data_dir), "models_dir": str(MODELS_DIR)},
            "web": {"host": "127.0.0.1", "port": 0},
        }
        for key, value in (overrides or {}).items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key].update(value)
            else:
                data[key] = value
        path = tmp_path / name
        path.write_text(json.dumps(data, indent=2))
        return path

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
