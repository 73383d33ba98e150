"""Device identity: per device, created on first boot, never shared by two flashed devices."""
from __future__ import annotations

from pathlib import Path

import pytest

from edge.device_id import derive_from_machine_id, resolve_device_id


def test_configured_id_wins(tmp_path: Path) -> None:
    assert resolve_device_id("door-1", tmp_path) == "door-1"
    assert not (tmp_path / "device_id").exists()


def test_invalid_configured_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="device.id"):
        resolve_device_id("bad/id", tmp_path)


def test_derived_from_machine_id_stored_and_stable(tmp_path: Path) -> None:
    mid = tmp_path / "machine-id"
    mid.write_text("0123456789abcdef0123456789abcdef\n")
    first = resolve_device_id(None, tmp_path / "data", mid)
    assert first.startswith("facepro-") and "0123456789abcdef" not in first
    mid.write_text("fedcba9876543210fedcba9876543210\n")
    assert resolve_device_id(None, tmp_path / "data", mid) == first  # stored on first boot


def test_two_machines_get_different_ids(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("0123456789abcdef0123456789abcdef")
    b.write_text("0123456789abcdef0123456789abcdee")
    assert derive_from_machine_id(a) != derive_from_machine_id(b)


def test_uninitialised_machine_id_falls_back_to_random(tmp_path: Path) -> None:
    mid = tmp_path / "machine-id"
    mid.write_text("uninitialized\n")
    one = resolve_device_id(None, tmp_path / "d1", mid)
    two = resolve_device_id(None, tmp_path / "d2", mid)
    assert one != two and one.startswith("facepro-")
