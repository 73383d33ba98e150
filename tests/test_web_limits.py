"""Resource limits and hostile input (issue 13, items 5 and 7): bounded caches, image bombs
refused from their header (web upload and ``facepro enroll``), control characters in paths
and log lines. Real Flask app, real migrated SQLite, real encoders for the header cases.
"""
from __future__ import annotations

import io
import logging
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest

from edge.images import MAX_PIXELS, ImageRefused, check_image_header, image_size
from edge.logs import setup_logging
from edge.web.status import TTLCache
from tests.support.cli import run_cli
from tests.support.web import login
from tests.test_web_app import PASSWORD, make_web


@pytest.fixture
def web(tmp_path: Path, write_settings: Any, data_dir: Path) -> SimpleNamespace:
    return make_web(tmp_path, write_settings, data_dir)


def png_bomb(width: int = 25000, height: int = 25000) -> bytes:
    """A valid PNG header declaring ``width`` x ``height`` RGB pixels, with one compressed row
    of data: a few hundred bytes that a decoder would expand to gigabytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = zlib.compress(b"\x00" * (1 + 3 * width), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", row) + chunk(b"IEND", b"")


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real small JPEG (OpenCV's encoder) whose frame header is rewritten to ``width`` x ``height``."""
    ok, encoded = cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))
    assert ok
    data = bytearray(encoded.tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


# -- caches ------------------------------------------------------------------------------------

def test_history_windows_do_not_grow_the_cache(web: SimpleNamespace) -> None:
    login(web.client, PASSWORD)
    cache: TTLCache = web.app.extensions["facepro_status_cache"]
    for window in range(10, 610):  # 600 distinct values of ?window=
        assert web.client.get(f"/api/history?window={window}").status_code == 200
    assert len(cache._entries) <= 32 and len(cache) <= 32  # 600 on the unbounded cache
    assert web.client.get("/api/history?window=600").get_json()["available"] is True


BAD_WINDOWS = ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "-1", "0", "9.99", "86401", "1e400", "1e308",
               "abc", "", "600s", "0x10"]


def test_history_refuses_a_window_that_is_not_a_bounded_number(tmp_path: Path, write_settings: Any,
                                                               data_dir: Path) -> None:
    """Anonymous with public_read on: ``round(nan)`` once answered 500."""
    built = make_web(tmp_path, write_settings, data_dir, public_read=True)
    for window in BAD_WINDOWS:
        response = built.client.get("/api/history", query_string={"window": window})
        assert response.status_code == 400, (window, response.status_code)
        assert response.get_json()["error"].startswith("window: expected a number of seconds from 10 to 86400"), \
            response.get_json()
    for window in ("10", "600", "86400", "3600.5"):
        assert built.client.get("/api/history", query_string={"window": window}).status_code == 200, window


def test_the_cache_keeps_recent_keys_and_computes_once_per_ttl() -> None:
    cache = TTLCache(ttl_s=60, max_entries=4)
    calls: list[int] = []
    for key in range(100):
        cache.get(key, lambda key=key: calls.append(key) or key)
    assert len(cache) == 4 and len(calls) == 100
    assert cache.get(99, lambda: calls.append(-1)) == 99 and calls[-1] == 99  # still cached: not computed


# -- image bombs -------------------------------------------------------------------------------

def test_a_png_bomb_upload_is_refused_from_its_header(web: SimpleNamespace) -> None:
    bomb = png_bomb()
    assert len(bomb) < 2000
    token = login(web.client, PASSWORD)
    response = web.client.post("/people/enroll", data={
        "csrf_token": token, "name": "Someone", "photos": [(io.BytesIO(bomb), "bomb.png")]},
        content_type="multipart/form-data", follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "bomb.png: the PNG image declares 25000x25000 pixels, more than the 50 megapixels" in html
    assert "Someone" not in html.split("</form>")[-1]  # nobody enrolled


def test_a_png_bomb_is_refused_by_the_enrol_command(tmp_path: Path, write_settings: Any, data_dir: Path) -> None:
    bomb = tmp_path / "holiday.png"
    bomb.write_bytes(png_bomb(30000, 20000))
    run = run_cli(write_settings(), "enroll", "someone", str(bomb), log_level="warning")
    assert run.returncode == 2
    assert f"{bomb}: the PNG image declares 30000x20000 pixels" in run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert not (data_dir / "faces").exists()


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp"])
def test_the_header_reader_agrees_with_the_encoders(ext: str) -> None:
    image = np.zeros((37, 53, 3), np.uint8)
    ok, encoded = cv2.imencode(ext, image)
    assert ok
    data = encoded.tobytes()
    assert image_size(data)[1:] == (53, 37)  # type: ignore[index]
    assert check_image_header(data, f"x{ext}")[1:] == (53, 37)


@pytest.mark.parametrize("data,message", [
    (jpeg_declaring(12000, 9000), "the JPEG image declares 12000x9000 pixels"),
    (png_bomb(7072, 7072), "the PNG image declares 7072x7072 pixels"),
    (png_bomb(40000, 10), "the PNG image declares 40000x10 pixels"),
    (png_bomb(0, 10), "the PNG header declares 0x10 pixels"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "the PNG file is damaged"),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 50, "the JPEG file is damaged"),
    (b"GIF89a\x10\x00\x10\x00", "not a PNG, JPEG, BMP or WebP image"),
])
def test_headers_over_the_limit_or_unreadable_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ImageRefused, match=message) as refused:
        check_image_header(data, "upload.bin")
    assert str(refused.value).startswith("upload.bin: ")


def test_a_photo_at_the_limit_passes() -> None:
    side = int(MAX_PIXELS ** 0.5)
    assert check_image_header(jpeg_declaring(side, side), "big.jpg") == ("JPEG", side, side)


# -- control characters ----------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/snapshots/..%00.png", "/snapshots/a%00b.jpg", "/faces/x%00.png",
                                  "/snapshots/%0a.png", "/faces/%1b%5b31m.jpg"])
def test_control_characters_in_a_file_path_answer_404(tmp_path: Path, write_settings: Any, data_dir: Path,
                                                      path: str) -> None:
    built = make_web(tmp_path, write_settings, data_dir, public_read=True)
    stream = io.StringIO()
    setup_logging("info", stream)
    try:
        assert built.client.get(path).status_code == 404
    finally:
        logging.getLogger().handlers[:] = [h for h in logging.getLogger().handlers
                                           if not getattr(h, "_facepro", False)]
    assert "\x00" not in stream.getvalue() and "Traceback" not in stream.getvalue()


def test_log_lines_escape_control_characters_from_outside(web: SimpleNamespace) -> None:
    stream = io.StringIO()
    setup_logging("info", stream)
    forged = "10.0.0.9\x00\n2026-01-01T00:00:00.000Z INFO    web.views_auth: technician logged in\x1b[2K"
    try:
        client = web.app.test_client()
        client.environ_base["REMOTE_ADDR"] = forged
        client.get("/login")
        with client.session_transaction() as session:
            token = session["csrf"]
        assert client.post("/login", data={"password": "wrong guess", "csrf_token": token}).status_code == 401
        logging.getLogger("edge.test").warning("camera said %r and %s", "bad\x07", b"\x00raw")
        logging.getLogger("edge.test").warning("built outside: name\x00\u2028end")
    finally:
        logging.getLogger().handlers[:] = [h for h in logging.getLogger().handlers
                                           if not getattr(h, "_facepro", False)]
    lines = stream.getvalue().splitlines()
    failed = [line for line in lines if "failed technician login" in line]
    assert len(failed) == 1 and not any(line.startswith("2026-01-01T00:00:00.000Z") for line in lines)
    assert "10.0.0.9\\x00\\n2026-01-01" in failed[0] and "\\x1b[2K" in failed[0]
    assert any("camera said 'bad\\\\x07'" in line for line in lines)
    assert any("built outside: name\\x00\\u2028end" in line for line in lines)
    assert not any(ch in stream.getvalue() for ch in "\x00\x07\x1b\u2028")
