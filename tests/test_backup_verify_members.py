"""A backup that verifies must be one that restores (issue 13, item 1, first bullet).

Each forged archive below has a manifest whose checksums all match, so a checksum-only
verification passes it; ``backup verify``, the CLI and the web import must open the member
for what it claims to be and name the one that fails."""
from __future__ import annotations

import hashlib
import json
import sqlite3
import struct
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.backup.errors import BackupError
from tests.support.backup_env import make_env
from tests.support.cli import run_cli


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("verify")
    settings, manager = make_env(root / "device", people=2)
    archive = root / "device" / "backups" / manager.create()["name"]
    return root, settings, manager, archive


def forge(real: Path, out: Path, replace: dict[str, bytes | None], includes: list[str] | None = None) -> Path:
    """``real`` with members replaced (None drops one, a new name adds one) and a fresh,
    self-consistent manifest: every size and SHA-256 matches."""
    with zipfile.ZipFile(real) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        members = {m["name"]: zf.read(m["name"]) for m in manifest["members"]}
    for name, data in replace.items():
        if data is None:
            members.pop(name, None)
        else:
            members[name] = data
    manifest["members"] = [{"name": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
                           for n, d in members.items()]
    if includes is not None:
        manifest["includes"] = includes
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("manifest.json", json.dumps(manifest))
    return out


def _db_bytes(real: Path) -> bytes:
    with zipfile.ZipFile(real) as zf:
        return zf.read("db/facepro.db")


def _db_variant(real: Path, tmp: Path, sql: str) -> bytes:
    path = tmp / "variant.db"
    path.write_bytes(_db_bytes(real))
    conn = sqlite3.connect(path)
    conn.executescript(sql)
    conn.commit()
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    return path.read_bytes()


def _corrupt_db(real: Path) -> bytes:
    data = bytearray(_db_bytes(real))
    page = struct.unpack(">H", data[16:18])[0] or 65536
    for p in range(1, len(data) // page):  # scribble over the b-tree page headers, keep the file header
        data[p * page: p * page + 12] = b"\xff" * 12
    return bytes(data)


def _png_bomb(width: int = 25000, height: int = 25000) -> bytes:
    """A small, valid PNG header declaring ``width`` x ``height`` (the issue's 74 KB bomb, shortened)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


FACE = "faces/person-0/0.jpg"
CASES = {
    "db-not-sqlite": (lambda real, tmp: {"db/facepro.db": b"MZ" + bytes(4094)}, None,
                      r"member 'db/facepro\.db' is not an SQLite database"),
    "db-zeros": (lambda real, tmp: {"db/facepro.db": bytes(8 << 20)}, None,
                 r"member 'db/facepro\.db' is not an SQLite database"),
    "db-corrupt": (lambda real, tmp: {"db/facepro.db": _corrupt_db(real)}, None,
                   r"member 'db/facepro\.db'(: SQLite cannot read it| fails integrity_check)"),
    "db-newer-schema": (lambda real, tmp: {"db/facepro.db": _db_variant(
        real, tmp, "INSERT INTO schema_migrations (version, name, applied_at, checksum) "
                   "VALUES (999, 'future', '2099-01-01', 'x');")}, None,
        r"member 'db/facepro\.db': its schema \(999\) is newer than this facepro"),
    "db-no-migrations": (lambda real, tmp: {"db/facepro.db": _db_variant(
        real, tmp, "DELETE FROM schema_migrations;")}, None,
        r"member 'db/facepro\.db' has no applied migrations"),
    "settings-invalid": (lambda real, tmp: {"settings.json": b'{"mqtt": {"port": 70000}}'}, None,
                         r"member 'settings\.json'.*key mqtt\.port: 70000 is above the maximum 65535"),
    "settings-not-json": (lambda real, tmp: {"settings.json": b"{not json"}, None,
                          r"member 'settings\.json'.*invalid JSON"),
    "face-not-an-image": (lambda real, tmp: {FACE: b"\x00" * 3000}, None,
                          r"member 'faces/person-0/0\.jpg' is not a PNG or JPEG image"),
    "face-damaged": (lambda real, tmp: {FACE: b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x40\x00\x40" + b"\x00" * 2000},
                     None, r"member 'faces/person-0/0\.jpg' does not decode"),
    "face-png-bomb": (lambda real, tmp: {FACE: _png_bomb()}, None,
                      r"member 'faces/person-0/0\.jpg': a PNG of 25000x25000 pixels is refused"),
    "unknown-member": (lambda real, tmp: {"notes/readme.txt": b"hello"}, None,
                       r"member 'notes/readme\.txt' is not part of a facepro backup"),
    "includes-lie": (lambda real, tmp: {}, ["faces", "settings"],
                     r"member 'db/facepro\.db': the manifest's includes say it is not there"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_forged_member_fails_verify_naming_it_and_is_not_imported(env, case: str, tmp_path: Path) -> None:
    root, settings, manager, real = env
    make, includes, message = CASES[case]
    forged = forge(real, tmp_path / "up" / "facepro_backup_dev-test_20990101T000000Z.zip", make(real, tmp_path),
                   includes)
    with pytest.raises(BackupError, match=message):
        manager.verify(forged)
    before = sorted(p.name for p in (root / "device" / "backups").iterdir())
    with pytest.raises(BackupError, match=message):
        manager.import_archive(forged)
    assert sorted(p.name for p in (root / "device" / "backups").iterdir()) == before
    last = manager.store.recent(1)[0]
    assert last["operation"] == "verify" and last["result"] == "failed"
    assert not (settings.data_dir / ".backup-verify").exists()


def test_cli_verify_names_the_member_and_exits_1(env, tmp_path: Path) -> None:
    root, _settings, _manager, real = env
    forged = forge(real, tmp_path / "facepro_backup_dev-test_20990101T000000Z.zip",
                   {"db/facepro.db": bytes(1 << 20)})
    proc = run_cli(root / "device" / "settings.json", "backup", "verify", str(forged))
    assert proc.returncode == 1 and "member 'db/facepro.db' is not an SQLite database" in proc.stderr, proc.stderr
    ok = run_cli(root / "device" / "settings.json", "backup", "verify", str(real), "--json")
    assert ok.returncode == 0, ok.stderr
    contents = json.loads(ok.stdout)["contents"]
    assert contents["faces"] == 4 and contents["settings"] is True and contents["schema_version"] >= 8


def test_real_png_and_jpeg_faces_pass(env, tmp_path: Path) -> None:
    _root, _settings, manager, real = env
    png = cv2.imencode(".png", np.full((112, 112, 3), 127, np.uint8))[1].tobytes()
    progressive = cv2.imencode(".jpg", np.zeros((64, 48, 3), np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1]
    forged = forge(real, tmp_path / real.name, {"faces/p/crop.png": png, "faces/p/prog.jpg": progressive.tobytes()})
    assert manager.verify(forged)["contents"]["faces"] == 6
