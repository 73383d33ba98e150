"""The machine API under test: the web app of tests/test_web_app.py plus one token of each kind.

``make_api`` builds the app over a real migrated database, real telemetry and a real backup
manager, with a pipeline stand-in whose frames sit in a real :class:`FrameRing`, and makes
tokens through :mod:`edge.web.tokens` as the CLI does: a read, an admin, a revoked and an
expired one (its expiry moved into the past, as time would).
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2

from edge.pipeline.ring import FrameRing
from edge.web import tokens
from edge.web.api_v1 import cameras
from edge.web.ratelimit import SlidingWindow
from tests.conftest import MEDIA_DIR
from tests.support.web import login
from tests.test_web_app import PASSWORD, StandInPipeline, make_web

CREDENTIALS = ("read", "admin", "none", "revoked", "expired", "session")


class FramedPipeline(StandInPipeline):
    """The stand-in's cameras, with camera door's newest frame in a real frame ring."""

    def __init__(self) -> None:
        super().__init__()
        frame = cv2.imread(str(MEDIA_DIR / "obama.jpg"))
        self.frame_shape = frame.shape
        self.ring = FrameRing(3, shape=frame.shape)
        slot = self.ring.acquire_write()
        assert slot is not None
        slot.array[...] = frame
        self.ring.commit(slot, captured_at=1_700_000_000.0, media_time=0.0)

    def latest_frame(self, camera: str) -> tuple[Any, float] | None:
        if camera != "door":
            raise KeyError(camera)
        return self.ring.copy_latest()


def expire(db_path: Path, name: str) -> None:
    """Move token ``name``'s expiry into the past (what waiting out its days would do)."""
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("UPDATE api_tokens SET expires_at = '2001-01-01 00:00:00' WHERE name = ?", (name,))
        conn.commit()
    finally:
        conn.close()


def make_api(tmp_path: Path, write_settings: Any, data_dir: Path, **options: Any) -> SimpleNamespace:
    web = make_web(tmp_path, write_settings, data_dir, **options)
    if web.ctx.pipeline is not None:
        web.ctx.pipeline = FramedPipeline()
    db = web.ctx.db_path
    values = {"read": tokens.create(db, "reader", "read")[0], "admin": tokens.create(db, "installer", "admin")[0],
              "revoked": tokens.create(db, "old-laptop", "admin")[0],
              "expired": tokens.create(db, "temp", "admin", expires_days=1)[0]}
    tokens.revoke(db, "old-laptop")
    expire(db, "temp")
    web.tokens = values
    # The matrix sends many bad tokens from one address; the failure limit is tested on its own.
    web.app.extensions["facepro_api_gate"].failures = SlidingWindow(10_000, 60)
    web.app.extensions[cameras.LIMITER] = SlidingWindow(10_000, 1)
    web.session = web.app.test_client()
    web.csrf = login(web.session, PASSWORD)
    return web


def call(api: SimpleNamespace, credential: str, method: str, path: str, **kwargs: Any) -> Any:
    """One request with ``credential``: a token kind, ``none``, or ``session`` (logged in, CSRF header sent)."""
    headers = dict(kwargs.pop("headers", {}))
    client = api.client
    if credential == "session":
        client = api.session
        headers["X-CSRF-Token"] = api.csrf
    elif credential != "none":
        headers["Authorization"] = f"Bearer {api.tokens[credential]}"
    return client.open(path, method=method, headers=headers, **kwargs)
