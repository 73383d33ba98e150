"""scripts/fetch_models.sh: downloads a pack only when it matches its pinned SHA-256
(served on loopback; no real download)."""
from __future__ import annotations

import hashlib
import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MODELS_DIR, REPO, subprocess_env

FETCH = REPO / "scripts" / "fetch_models.sh"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler_cls = server.RequestHandlerClass
    handler_cls.log_message = lambda *a: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def fetch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(FETCH), *args], env=subprocess_env(), capture_output=True, text=True,
                          timeout=60)


def test_wrong_file_is_refused_and_nothing_kept(served: tuple[str, Path], tmp_path: Path) -> None:
    base, www = served
    (www / "buffalo_s.zip").write_bytes(b"not the pinned archive")
    pinned = hashlib.sha256((MODELS_DIR / "mobilefacenet.onnx").read_bytes()).hexdigest()
    dest = tmp_path / "models"
    proc = fetch("--url", f"{base}/buffalo_s.zip", "--sha256", pinned, "--dest", str(dest))
    assert proc.returncode == 1
    assert "SHA-256 mismatch" in proc.stderr and pinned in proc.stderr
    assert list(dest.iterdir()) == []


def test_matching_file_is_kept_and_not_downloaded_twice(served: tuple[str, Path], tmp_path: Path) -> None:
    base, www = served
    payload = (MODELS_DIR / "mobilefacenet.onnx").read_bytes()
    (www / "pack.zip").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    lock = tmp_path / "packs.lock"
    lock.write_text(f"# test pins\ndev  {base}/pack.zip  {digest.upper()}\n")
    dest = tmp_path / "models"
    proc = fetch("--pack", "dev", "--lock", str(lock), "--dest", str(dest))
    assert proc.returncode == 0, proc.stderr
    assert (dest / "pack.zip").read_bytes() == payload and "verified" in proc.stdout
    (www / "pack.zip").unlink()  # a second run must not need the server
    again = fetch("--pack", "dev", "--lock", str(lock), "--dest", str(dest))
    assert again.returncode == 0 and "already present and verified" in again.stdout


def test_file_url_and_unpinned_or_unknown_packs(tmp_path: Path) -> None:
    wrong = fetch("--url", (MODELS_DIR / "mobilefacenet.onnx").as_uri(), "--sha256", "0" * 64,
                  "--dest", str(tmp_path / "m"))
    assert wrong.returncode == 1 and "mismatch" in wrong.stderr
    unpinned = fetch("--pack", "buffalo_l", "--dest", str(tmp_path / "m"))
    assert unpinned.returncode == 2 and "no pinned SHA-256" in unpinned.stderr
    unknown = fetch("--pack", "nope", "--dest", str(tmp_path / "m"))
    assert unknown.returncode == 2 and "buffalo_s" in unknown.stderr
