"""Hostile and damaged archives are rejected with a clear error, and nothing outside the
staging area is written; the encryption container; schedule validation."""
from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from edge.backup import crypto
from edge.backup.errors import BackupError
from edge.config import ConfigError, load_settings
from edge.schedule import ScheduleError, parse_schedule
from tests.support.backup_env import PASSPHRASE, make_env, table_rows, tree_digest


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("archive")
    settings, manager = make_env(root / "device")
    archive = root / "device" / "backups" / manager.create()["name"]
    return root, settings, manager, archive


def _snapshot(settings) -> dict:
    """Everything in the data dir except the staging areas, plus the DB's rows."""
    files = {p.relative_to(settings.data_dir).as_posix(): p.stat().st_size
             for p in settings.data_dir.rglob("*") if p.is_file()
             and not p.name.startswith(("facepro.db", ".backup.lock"))}
    return {"files": files, "users": table_rows(settings.db_path, "users"),
            "faces": tree_digest(settings.data_dir / "faces")}


def _rewrite(src: Path, dst: Path, mutate) -> None:
    """Copy a ZIP member by member, letting ``mutate(name, data, info)`` change things."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            for name, blob, new_info in mutate(info.filename, data, info):
                zout.writestr(new_info or zipfile.ZipInfo(name), blob)


def _manifest_adding(zin_path: Path, extra: dict) -> bytes:
    with zipfile.ZipFile(zin_path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    manifest["members"].append(extra)
    return json.dumps(manifest).encode()


def _hostile(kind: str, archive: Path, out: Path) -> None:
    if kind == "corrupted":
        data = bytearray(archive.read_bytes())
        mid = len(data) // 2
        data[mid: mid + 64] = os.urandom(64)
        out.write_bytes(bytes(data))
    elif kind == "truncated":
        out.write_bytes(archive.read_bytes()[: archive.stat().st_size * 2 // 3])
    elif kind == "tampered":
        # One byte of a stored (uncompressed) face image.
        with zipfile.ZipFile(archive) as zf:
            info = zf.getinfo("faces/person-1/0.jpg")
            offset = info.header_offset + 30 + len(info.filename) + len(info.extra)
        data = bytearray(archive.read_bytes())
        data[offset + 100] ^= 0x01
        out.write_bytes(bytes(data))
    elif kind in ("zip-slip", "absolute", "symlink", "unlisted", "oversize", "no-manifest"):
        def mutate(name, data, info):
            if name != "manifest.json":
                yield name, data, info
                return
            if kind == "no-manifest":
                return
            evil = {"zip-slip": "../../evil.txt", "absolute": "/tmp/evil-abs.txt", "symlink": "faces/link",
                    "unlisted": "faces/unlisted.jpg", "oversize": "faces/big.bin"}[kind]
            payload = b"/etc/passwd" if kind == "symlink" else (b"A" * 100_000 if kind == "oversize" else b"evil")
            member = zipfile.ZipInfo(evil)
            if kind == "symlink":
                member.external_attr = (stat.S_IFLNK | 0o777) << 16
            yield evil, payload, member
            if kind == "unlisted":
                yield name, data, info
                return
            size = 10 if kind == "oversize" else len(payload)
            import hashlib
            manifest = _manifest_adding(archive, {"name": evil, "size": size,
                                                  "sha256": hashlib.sha256(payload).hexdigest()})
            yield name, manifest, None
        _rewrite(archive, out, mutate)


@pytest.mark.parametrize("kind,message", [
    ("corrupted", r"damaged|not a readable backup|checksum"),
    ("truncated", r"not a readable backup archive \(corrupted or truncated\)"),
    ("tampered", r"faces/person-1/0.jpg' fails its checksum"),
    ("zip-slip", r"unsafe member name '\.\./\.\./evil\.txt'"),
    ("absolute", r"unsafe member name '/tmp/evil-abs\.txt'"),
    ("symlink", r"member 'faces/link' is a symbolic link"),
    ("unlisted", r"member 'faces/unlisted\.jpg' is not in the manifest"),
    ("oversize", r"faces/big\.bin' is 100000 bytes, the manifest says 10"),
    ("no-manifest", r"no manifest\.json"),
])
def test_hostile_or_damaged_archive_is_rejected_and_nothing_changes(env, kind: str, message: str) -> None:
    root, settings, manager, archive = env
    bad = root / kind / archive.name
    bad.parent.mkdir(exist_ok=True)
    _hostile(kind, archive, bad)
    before = _snapshot(settings)
    outside_before = sorted(p.name for p in root.iterdir())
    with pytest.raises(BackupError, match=message):
        manager.verify(bad)
    with pytest.raises(BackupError, match=message):
        manager.restore(bad)
    assert _snapshot(settings) == before
    assert sorted(p.name for p in root.iterdir()) == outside_before
    assert not Path("/tmp/evil-abs.txt").exists() and not (root / "evil.txt").exists()
    assert not (settings.data_dir / ".restore").exists()
    assert not (settings.data_dir / "backups" / "pre-restore").exists()  # refused before the pre-restore backup
    runs = manager.store.recent(1)
    assert runs[0]["operation"] == "restore" and runs[0]["result"] == "failed"


def test_encrypted_archive_wrong_key_and_damage(tmp_path: Path) -> None:
    settings, manager = make_env(tmp_path, encrypt=True)
    archive = tmp_path / "backups" / manager.create(include=["db", "faces"])["name"]
    before = _snapshot(settings)
    key_file = tmp_path / "other.key"
    key_file.write_bytes(os.urandom(32).hex().encode())
    with pytest.raises(BackupError, match="wrong passphrase or key file"):
        manager.verify(archive, key_file=key_file)
    with pytest.raises(BackupError, match="wrong passphrase or key file"):
        manager.restore(archive, key_file=key_file)
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x80
    tampered = tmp_path / "t" / archive.name
    tampered.parent.mkdir()
    tampered.write_bytes(bytes(data))
    with pytest.raises(BackupError, match=r"encrypted data is (truncated or )?damaged \(chunk \d+ failed authentication\)"):
        manager.restore(tampered)
    tampered.write_bytes(archive.read_bytes()[:-100])
    with pytest.raises(BackupError, match="truncated or damaged"):
        manager.verify(tampered)
    assert _snapshot(settings) == before
    assert manager.verify(archive)["ok"]
    # Without any key configured, the error says what is needed.
    settings.data["backup"]["encrypt"] = {"enabled": False, "passphrase": None, "key_file": None}
    with pytest.raises(BackupError, match="the archive is encrypted"):
        manager.verify(archive)


@pytest.mark.parametrize("size", [0, 1, crypto.CHUNK_SIZE - 1, crypto.CHUNK_SIZE, 2 * crypto.CHUNK_SIZE + 5])
def test_crypto_stream_round_trip_at_chunk_boundaries(size: int) -> None:
    keys = crypto.KeySource(passphrase=PASSPHRASE)
    plain = os.urandom(size)
    sealed = io.BytesIO()
    crypto.encrypt_stream(io.BytesIO(plain), sealed, keys)
    out = io.BytesIO()
    crypto.decrypt_stream(io.BytesIO(sealed.getvalue()), out, keys)
    assert out.getvalue() == plain
    # Dropping the final chunk (or appending data) never passes.
    blob = sealed.getvalue()
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt_stream(io.BytesIO(blob + b"x"), io.BytesIO(), keys)
    with pytest.raises(crypto.CryptoError, match="truncated or damaged"):
        crypto.decrypt_stream(io.BytesIO(blob[:-1]), io.BytesIO(), keys)
    if size >= crypto.CHUNK_SIZE:  # cut exactly after a full chunk: the missing final chunk is noticed
        header_len = len(blob) - (size // crypto.CHUNK_SIZE) * (crypto.CHUNK_SIZE + crypto.TAG) \
            - (size % crypto.CHUNK_SIZE + crypto.TAG)
        with pytest.raises(crypto.CryptoError, match="truncated or damaged"):
            crypto.decrypt_stream(io.BytesIO(blob[: header_len + crypto.CHUNK_SIZE + crypto.TAG]), io.BytesIO(), keys)


def test_schedule_parsing_and_settings_validation(tmp_path: Path) -> None:
    assert parse_schedule(None) is None
    assert parse_schedule("daily 03:00").at == (3, 0)
    assert parse_schedule("hourly").interval.total_seconds() == 3600
    assert parse_schedule("every 6h").interval.total_seconds() == 6 * 3600
    for bad in ("daily 25:00", "every 1m", "sometimes", "weekly"):
        with pytest.raises(ScheduleError):
            parse_schedule(bad)
    from datetime import datetime
    s = parse_schedule("daily 03:00")
    now = datetime(2026, 1, 2, 10, 0)
    assert s.next_due(None, now) <= now  # never ran: due
    assert s.next_due(datetime(2026, 1, 2, 3, 5), now) == datetime(2026, 1, 3, 3, 0)
    assert s.next_due(datetime(2026, 1, 1, 3, 5), now) == datetime(2026, 1, 2, 3, 0)  # missed today's slot
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"backup": {"schedule": "at noon"}}))
    with pytest.raises(ConfigError, match=r"s\.json: key backup\.schedule: 'at noon' is not a schedule"):
        load_settings(path, env={})
    path.write_text(json.dumps({"backup": {"targets": [{"name": "u", "type": "usb", "path": "/mnt/u",
                                                        "subdir": "../x"}]}}))
    with pytest.raises(ConfigError, match=r"backup\.targets\[0\]\.subdir"):
        load_settings(path, env={})
