"""What the machine API answers: enrolment by upload (all or nothing, size and pixel limits),
events with filters and paging, camera frames (rate-limited), backups, and its error shape."""
from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest

from edge.db import web_queries
from edge.db.events import EventStore
from edge.images import MAX_PIXELS, image_size
from edge.web.api_v1 import cameras
from edge.web.api_v1.common import ERROR_CODES
from edge.web.ratelimit import SlidingWindow
from tests.conftest import MEDIA_DIR
from tests.support.api import call, make_api
from tests.test_web_app import add_events

LIN = (MEDIA_DIR / "lin-manuel-miranda.png").read_bytes()
GROUP = (MEDIA_DIR / "two_people.jpg").read_bytes()
SMALL = cv2.imencode(".png", np.zeros((32, 32, 3), np.uint8))[1].tobytes()


def huge_png(width: int, height: int) -> bytes:
    """A small PNG file whose header declares ``width`` x ``height`` pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    head = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return head + b"\x00" * 70_000


def huge_jpeg(width: int, height: int) -> bytes:
    """A JPEG start (SOI, APP0, SOF0) declaring ``width`` x ``height`` pixels."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app0 + sof + b"\x00" * 1000


@pytest.fixture
def api(tmp_path: Path, write_settings: Any, data_dir: Path) -> SimpleNamespace:
    return make_api(tmp_path, write_settings, data_dir)


def people(api: SimpleNamespace) -> list[tuple[str, int]]:
    return [(p["name"], p["embeddings"]) for p in web_queries.list_people(api.ctx.db_path)]


def crops(api: SimpleNamespace) -> list[Path]:
    return [p for p in (api.ctx.data_dir / "faces").rglob("*") if p.is_file()]


def upload(api: SimpleNamespace, path: str, files: list[tuple[bytes, str]], **fields: str) -> Any:
    data: dict[str, Any] = dict(fields, photos=[(io.BytesIO(content), name) for content, name in files])
    return call(api, "admin", "POST", path, data=data, content_type="multipart/form-data")


def assert_error(response: Any, status: int, code: str, *words: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"code", "message"} and body["code"] == code and code in ERROR_CODES
    for word in words:
        assert word in body["message"], (word, body["message"])


# -- people ----------------------------------------------------------------------------------

def test_create_with_photos_then_add_faces_then_remove(api: SimpleNamespace) -> None:
    response = upload(api, "/api/v1/people", [(LIN, "lin.png")], name="  Lin   Manuel ")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["name"] == "Lin Manuel" and response.get_json()["added"] == 1
    assert_error(upload(api, "/api/v1/people", [(LIN, "lin.png")], name="Lin Manuel"), 409, "conflict")
    response = upload(api, "/api/v1/people/Lin Manuel/faces", [(LIN, "a.png"), (LIN, "b.png")])
    assert response.status_code == 201 and response.get_json()["faces"] == 3
    assert people(api) == [("Lin Manuel", 3)] and len(crops(api)) == 3
    listed = call(api, "read", "GET", "/api/v1/people").get_json()["people"]
    assert [(p["name"], p["faces"]) for p in listed] == [("Lin Manuel", 3)]
    response = call(api, "admin", "DELETE", "/api/v1/people/Lin%20Manuel")
    assert response.get_json() == {"name": "Lin Manuel", "removed_faces": 3}
    assert people(api) == [] and crops(api) == []
    assert_error(call(api, "admin", "DELETE", "/api/v1/people/Lin%20Manuel"), 404, "not_found")


def test_faces_for_someone_not_enrolled_are_refused(api: SimpleNamespace) -> None:
    assert_error(upload(api, "/api/v1/people/Ghost/faces", [(LIN, "lin.png")]), 404, "not_found", "create them first")
    assert people(api) == []


@pytest.mark.parametrize("files,status,code,words", [
    ([(LIN, "ok.png"), (GROUP, "group.jpg")], 400, "photo_rejected", ("group.jpg", "2 faces")),
    ([(LIN, "ok.png"), (b"hello", "notes.txt")], 400, "photo_rejected", ("notes.txt",)),
    ([(LIN, "ok.png"), (b"\xff\xd8\xff\xe0" + b"\x00" * 300, "broken.jpg")], 400, "photo_rejected", ("broken.jpg",)),
    ([(LIN, "ok.png"), (huge_png(25000, 25000), "bomb.png")], 413, "image_too_large",
     ("bomb.png", "25000x25000")),
    ([(huge_jpeg(60000, 60000), "bomb.jpg")], 413, "image_too_large", ("bomb.jpg", "60000x60000")),
    ([], 400, "bad_request", ("photos",)),
    ([(SMALL, f"{i}.png") for i in range(21)], 400, "bad_request", ("at most 20",)),
])
def test_a_bad_photo_refuses_the_whole_upload(api: SimpleNamespace, files: list[tuple[bytes, str]], status: int,
                                              code: str, words: tuple[str, ...]) -> None:
    assert call(api, "admin", "POST", "/api/v1/people", json={"name": "Alex"}).status_code == 201
    started = time.monotonic()
    assert_error(upload(api, "/api/v1/people/Alex/faces", files), status, code, *words)
    if code == "image_too_large":  # refused from the header, never decoded
        assert time.monotonic() - started < 5
    assert people(api) == [("Alex", 0)] and crops(api) == []
    if files:  # creating someone with the same photos is refused the same way
        assert_error(upload(api, "/api/v1/people", files, name="Other"), status, code, *words)
    assert [name for name, _ in people(api)] == ["Alex"]


def test_uploads_over_the_byte_limit_are_refused_before_enrolment(api: SimpleNamespace) -> None:
    big = LIN + b"\x00" * (3 * 1024 * 1024)  # the limit here is web.max_upload_mb = 2
    assert_error(upload(api, "/api/v1/people", [(big, "big.png")], name="Big"), 413, "upload_too_large",
                 "web.max_upload_mb")
    assert people(api) == [] and crops(api) == []


@pytest.mark.parametrize("body,words", [
    ({"name": ""}, ("name",)), ({"name": "../etc"}, ("name",)), ({"name": "x" * 65}, ("longer than",)),
    ({"name": 5}, ("string",)), ({}, ("name",)),
])
def test_create_refuses_bad_names(api: SimpleNamespace, body: dict[str, Any], words: tuple[str, ...]) -> None:
    assert_error(call(api, "admin", "POST", "/api/v1/people", json=body), 400, "bad_request", *words)
    assert people(api) == []


def test_image_size_reads_real_headers() -> None:
    for path in sorted(MEDIA_DIR.glob("*.jpg")) + sorted(MEDIA_DIR.glob("*.png")):
        height, width = cv2.imread(str(path)).shape[:2]
        assert image_size(path.read_bytes())[1:] == (width, height), path.name
    ok, progressive = cv2.imencode(".jpg", np.zeros((48, 64, 3), np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok and image_size(progressive.tobytes()) == ("JPEG", 64, 48)
    assert image_size(huge_png(25000, 25000)) == ("PNG", 25000, 25000) and 25000 * 25000 > MAX_PIXELS
    for junk in (b"", b"\xff\xd8", b"\xff\xd8\xff\xda\x00\x02", b"\xff\xd8\x00\x00\x00\x00", b"GIF89a" + b"\x00" * 40,
                 b"\x89PNG\r\n\x1a\n\x00\x00"):
        assert image_size(junk) is None, junk


# -- events -----------------------------------------------------------------------------------

def test_events_filters_paging_one_event_and_its_snapshot(api: SimpleNamespace) -> None:
    add_events(api.ctx)
    with EventStore(api.ctx.db_path) as store:
        for i in range(7):
            store.insert("face_recognized", "Obama", 0.7, "door", None, time.time() + i)
    seen: list[int] = []
    url: str | None = "/api/v1/events?limit=3&camera=door"
    while url:
        page = call(api, "read", "GET", url).get_json()
        assert len(page["events"]) <= 3
        seen += [e["id"] for e in page["events"]]
        url = page["next"]
        assert url is None or ("camera=door" in url and "limit=3" in url)
    assert seen == [10, 9, 8, 7, 6, 5, 4, 1]
    event = call(api, "read", "GET", "/api/v1/events/1").get_json()
    assert event["person"] == "Obama" and event["camera"] == "door" and event["timestamp"].endswith("Z")
    assert event["snapshot"] == "/api/v1/events/1/snapshot.jpg"
    image = call(api, "read", "GET", event["snapshot"])
    assert image.mimetype == "image/jpeg" and image.data == (MEDIA_DIR / "obama.jpg").read_bytes()
    # event 3's stored path points outside the snapshot dir: never served
    assert call(api, "read", "GET", "/api/v1/events/3").get_json()["snapshot"] is None
    assert_error(call(api, "read", "GET", "/api/v1/events/3/snapshot.jpg"), 404, "not_found")
    assert_error(call(api, "read", "GET", "/api/v1/events/2/snapshot.jpg"), 404, "not_found", "no snapshot")
    assert [e["id"] for e in call(api, "read", "GET", "/api/v1/events?type=face_unknown").get_json()["events"]] == [2]
    assert_error(call(api, "read", "GET", "/api/v1/events?limit=0"), 400, "bad_request", "limit")
    assert_error(call(api, "read", "GET", "/api/v1/events?before_id=x"), 400, "bad_request", "before_id")


# -- cameras ----------------------------------------------------------------------------------

def test_cameras_and_the_latest_frame_rate_limited(api: SimpleNamespace) -> None:
    assert call(api, "read", "GET", "/api/v1/cameras").get_json()["cameras"][0]["name"] == "door"
    api.app.extensions[cameras.LIMITER] = SlidingWindow(cameras.LATEST_LIMIT, 30)
    response = call(api, "read", "GET", "/api/v1/cameras/door/latest.jpg")
    assert response.status_code == 200 and response.headers["X-Captured-At"] == "2023-11-14T22:13:20.000Z"
    frame = cv2.imdecode(np.frombuffer(response.data, np.uint8), cv2.IMREAD_COLOR)
    original = cv2.imread(str(MEDIA_DIR / "obama.jpg"))
    assert frame.shape == original.shape and np.abs(frame.astype(int) - original).mean() < 6
    assert_error(call(api, "read", "GET", "/api/v1/cameras/garage/latest.jpg"), 404, "not_found")
    response = call(api, "read", "GET", "/api/v1/cameras/door/latest.jpg")
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response.headers["Retry-After"]) <= 30
    api.ctx.pipeline = None
    assert_error(call(api, "read", "GET", "/api/v1/cameras"), 503, "unavailable")


# -- backups ----------------------------------------------------------------------------------

def test_backup_job_and_download(api: SimpleNamespace) -> None:
    response = call(api, "admin", "POST", "/api/v1/backups", json={"target": "local", "include": ["db", "settings"]})
    assert response.status_code == 202 and response.headers["Location"] == response.get_json()["poll"]
    deadline = time.monotonic() + 30
    while (job := call(api, "read", "GET", response.get_json()["poll"]).get_json())["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert job["state"] == "ok", job
    listing = call(api, "read", "GET", "/api/v1/backups").get_json()
    name = listing["targets"][0]["backups"][0]["name"]
    download = call(api, "admin", "GET", f"/api/v1/backups/targets/local/{name}")
    assert download.status_code == 200 and download.data == (api.archives / name).read_bytes()
    assert int(download.headers["Content-Length"]) == len(download.data)
    assert_error(call(api, "admin", "GET", "/api/v1/backups/targets/local/facepro_backup_x_20260101T000000Z.zip"),
                 404, "not_found")
    assert_error(call(api, "admin", "GET", "/api/v1/backups/targets/usb9/" + name), 400, "bad_request", "usb9")
    assert call(api, "admin", "GET", "/api/v1/backups/targets/local/..%2Ffacepro.db").status_code in (400, 404)
    assert_error(call(api, "read", "GET", "/api/v1/backups/jobs/nope"), 404, "not_found")


@pytest.mark.parametrize("body,words", [
    ({"include": ["nope"]}, ("include",)), ({"target": "usb9"}, ("usb9",)), ({"when": "now"}, ("unknown field",)),
    (["db"], ("JSON object",)),
])
def test_backup_create_refuses_bad_bodies(api: SimpleNamespace, body: Any, words: tuple[str, ...]) -> None:
    assert_error(call(api, "admin", "POST", "/api/v1/backups", json=body), 400, "bad_request", *words)
    assert api.ctx.backups.list("local") == []


def test_parts_that_are_not_running_answer_503(tmp_path: Path, write_settings: Any, data_dir: Path) -> None:
    bare = make_api(tmp_path, write_settings, data_dir, parts=False)
    for path in ("/api/v1/backups", "/api/v1/cameras", "/api/v1/cameras/door/latest.jpg"):
        assert_error(call(bare, "read", "GET", path), 503, "unavailable")
    assert_error(call(bare, "admin", "POST", "/api/v1/backups", json={}), 503, "unavailable")
    assert call(bare, "read", "GET", "/api/v1/health").status_code == 503
