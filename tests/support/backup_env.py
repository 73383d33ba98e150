"""A seeded FacePro data dir for the backup tests: migrated DB, people with embeddings,
face image files, events, a settings file with secrets; plus comparison helpers."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.backup.manager import BackupManager
from edge.config import Settings, load_settings
from edge.db.connection import connect
from edge.db.migrator import Migrator

MQTT_SECRET = "mqtt-secret-value-1"
PASSPHRASE = "correct horse battery staple"


def make_env(root: Path, targets: list[dict[str, Any]] | None = None, *, encrypt: bool = False,
             keep: int = 7, people: int = 3, migrate_to: int | None = None, seed: bool = True,
             device_id: str = "dev-test", extra: dict[str, Any] | None = None) -> tuple[Settings, BackupManager]:
    root.mkdir(parents=True, exist_ok=True)
    data_dir = root / "data"
    data_dir.mkdir(exist_ok=True)
    doc: dict[str, Any] = {
        "device": {"id": device_id, "name": "Backup test"},
        "paths": {"data_dir": str(data_dir), "models_dir": str(root)},
        "mqtt": {"enabled": False, "password": MQTT_SECRET},
        "web": {"enabled": False},
        "backup": {"targets": targets if targets is not None else [
            {"name": "local", "type": "local", "path": str(root / "backups")}], "keep": keep,
            "schedule": None,
            "encrypt": {"enabled": encrypt, "passphrase": PASSPHRASE if encrypt else None, "key_file": None}},
    }
    for key, value in (extra or {}).items():
        if isinstance(value, dict):
            doc.setdefault(key, {}).update(value)
        else:  # a list (cameras) replaces
            doc[key] = value
    settings_path = root / "settings.json"
    settings_path.write_text(json.dumps(doc, indent=2))
    settings = load_settings(settings_path, env={})
    with Migrator(settings.db_path) as migrator:
        migrator.migrate(to=migrate_to)
    if seed:
        seed_data(settings, people)
    return settings, BackupManager(settings, device_id)


def seed_data(settings: Settings, people: int = 3, events: int = 200) -> None:
    rng = np.random.default_rng(7)
    faces = settings.data_dir / "faces"
    conn = connect(settings.db_path)
    cols = {r[1] for r in conn.execute("PRAGMA table_info(face_encodings)")}
    try:
        conn.execute("BEGIN")
        for p in range(people):
            uid = conn.execute("INSERT INTO users (name) VALUES (?)", (f"person-{p}",)).lastrowid
            for k in range(2):
                emb = rng.standard_normal(512).astype(np.float32)
                emb /= np.linalg.norm(emb)
                rel = f"person-{p}/{k}.jpg"
                (faces / f"person-{p}").mkdir(parents=True, exist_ok=True)
                noise = rng.integers(0, 256, (40 + 8 * k, 40, 3), dtype=np.uint8)
                (faces / rel).write_bytes(cv2.imencode(".jpg", noise)[1].tobytes())  # a real, decodable image
                if "image_path" in cols:
                    conn.execute("INSERT INTO face_encodings (user_id, encoding, image_path) VALUES (?,?,?)",
                                 (uid, emb.tobytes(), rel))
                else:
                    conn.execute("INSERT INTO face_encodings (user_id, encoding) VALUES (?,?)", (uid, emb.tobytes()))
        for i in range(events):
            conn.execute("INSERT INTO events (event_type, object_label, confidence, camera_name) VALUES (?,?,?,?)",
                         ("recognized", f"person-{i % people}", 0.5 + (i % 50) / 100, "cam1"))
        conn.execute("COMMIT")
    finally:
        conn.close()


def table_rows(db: Path, table: str, columns: str = "*") -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [tuple(r) for r in conn.execute(f"SELECT {columns} FROM {table} ORDER BY id")]
    finally:
        conn.close()


def tree_digest(directory: Path) -> dict[str, str]:
    if not directory.exists():
        return {}
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def integrity(db: Path) -> str:
    conn = sqlite3.connect(str(db))
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


class EventWriter(threading.Thread):
    """Inserts events as fast as it can (one transaction each), recording each commit's latency."""

    def __init__(self, db: Path, payload: int = 200, pause_s: float = 0.001) -> None:
        super().__init__(daemon=True)
        self.pause_s = pause_s
        self.db = db
        self.payload = payload
        self.stop_event = threading.Event()
        self.latencies: list[float] = []
        self.inserted = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        conn = connect(self.db, busy_timeout_ms=10000)
        blob = os.urandom(self.payload).hex()
        try:
            while not self.stop_event.is_set():
                t0 = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO events (event_type, object_label, confidence, snapshot_path, camera_name)"
                             " VALUES ('unknown', NULL, 0.42, ?, 'cam-writer')", (blob,))
                conn.execute("COMMIT")
                self.latencies.append(time.perf_counter() - t0)
                self.inserted += 1
                if self.pause_s:
                    time.sleep(self.pause_s)
        except BaseException as exc:  # surfaced by the test
            self.error = exc
        finally:
            conn.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(30)
