"""An encrypted archive's header is the attacker's: scrypt parameters outside the range the
device writes are refused in one line before any key is derived (issue 13, item 5)."""
from __future__ import annotations

import base64
import io
import json
import os
import resource
import struct
import subprocess
import time
from pathlib import Path

import pytest

from edge.backup import crypto
from edge.backup.errors import BackupError
from tests.conftest import FACEPRO, REPO, subprocess_env
from tests.support.backup_env import make_env


def crafted(n: int, r: int, p: int, size: int = 282) -> bytes:
    """A well-formed header asking for (n, r, p), padded with junk to ``size`` bytes."""
    header = json.dumps({
        "cipher": "AES-256-GCM", "kdf": "scrypt", "n": n, "r": r, "p": p,
        "salt": base64.b64encode(b"s" * 16).decode(), "nonce_prefix": base64.b64encode(b"p" * 7).decode(),
        "chunk_size": 1 << 20, "key_check": base64.b64encode(b"k" * 16).decode(),
    }, sort_keys=True).encode()
    blob = crypto.MAGIC + struct.pack(">I", len(header)) + header
    return blob + b"\0" * max(0, size - len(blob))


REFUSED = [(1 << 20, 32, 16), (1 << 17, 8, 1), (1 << 15, 16, 1), (1 << 15, 8, 2), (1000, 8, 1), (1 << 13, 8, 1)]


@pytest.mark.parametrize("n,r,p", REFUSED)
def test_header_outside_the_accepted_range_is_refused_before_deriving(n: int, r: int, p: int) -> None:
    keys = crypto.KeySource(passphrase="x" * 20)
    t0 = time.process_time()
    with pytest.raises(crypto.CryptoError) as info:
        crypto.decrypt_stream(io.BytesIO(crafted(n, r, p)), io.BytesIO(), keys, label="evil.zip.enc")
    message = str(info.value)
    assert message.startswith("evil.zip.enc: refused") and f"n={n}, r={r}, p={p}" in message
    assert "\n" not in message and "r=8, p=1" in message
    assert time.process_time() - t0 < 0.5  # no scrypt ran: 2**17 alone takes longer than that here


def test_crafted_282_byte_archive_cli_one_line_under_a_memory_limit(tmp_path: Path) -> None:
    """The issue's file: n=2**20, r=32, p=16 (4 GiB of scrypt) under a 1.5 GiB address-space
    limit. Before: MemoryError traceback (or minutes of CPU); now one line, exit 1."""
    settings, _manager = make_env(tmp_path, seed=False, encrypt=True)
    evil = tmp_path / "facepro_backup_dev-test_20990101T000000Z.zip.enc"
    evil.write_bytes(crafted(1 << 20, 32, 16))
    assert evil.stat().st_size == 282

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))

    proc = subprocess.run([*FACEPRO, "--config", str(tmp_path / "settings.json"), "backup", "verify", str(evil)],
                          cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=60,
                          preexec_fn=limit)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "refused" in lines[0] and "n=1048576, r=32, p=16" in lines[0] and evil.name in lines[0]
    assert not (settings.data_dir / ".backup-verify").exists()


def test_device_written_archive_still_verifies_and_key_file_hint(tmp_path: Path) -> None:
    settings, manager = make_env(tmp_path, encrypt=True, people=1)
    archive = tmp_path / "backups" / manager.create(include=["db"])["name"]
    assert manager.verify(archive)["ok"]
    settings.data["backup"]["encrypt"] = {"enabled": False, "passphrase": None, "key_file": None}
    with pytest.raises(BackupError, match=r"pass --key-file\)") as info:
        manager.verify(archive)
    assert "--passphrase-file" not in str(info.value)
    assert os.path.exists(archive)
