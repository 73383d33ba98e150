"""``facepro process VIDEO`` and ``facepro events list``."""
from __future__ import annotations

import argparse
import logging
import sqlite3
from pathlib import Path
from typing import Any

from edge.cli import CliError, command_group, get_settings, print_json

log = logging.getLogger(__name__)

STAGE_ORDER = ("decode", "preprocess", "detect", "embed", "match", "persist", "publish")


def cmd_process(args: argparse.Namespace) -> int:
    from edge.pipeline.service import process_file
    from edge.pipeline.sources import SourceError
    from edge.service import migrate_database

    video = Path(args.video)
    if not video.exists():
        raise CliError(f"{args.video}: video file not found", 2)
    if not video.is_file():
        raise CliError(f"{args.video}: not a file", 2)
    settings = get_settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate_database(settings)
    camera = args.camera or video.stem
    try:
        summary = process_file(settings, video, camera)
    except SourceError as exc:
        raise CliError(f"{args.video}: cannot decode video ({exc})", 2) from None
    except Exception as exc:
        if type(exc).__name__ == "ModelPackError":
            raise CliError(str(exc), 2) from None
        raise
    if args.json:
        print_json(summary)
        return 0
    by_person = ", ".join(f"{name}: {count}" for name, count in sorted(summary["events_by_person"].items()))
    print(f"processed {summary['video']} as camera {camera!r}")
    print(f"frames:  {summary['frames_processed']} of {summary['frames']} ({summary['frames_dropped']} dropped)")
    print(f"faces:   {summary['faces']} ({summary['faces_embedded']} embedded, the others kept a frame's embedding)")
    print(f"events:  {summary['events']}" + (f" ({by_person})" if by_person else ""))
    print(f"speed:   {summary['fps']:.1f} frames/s ({summary['seconds']:.2f} s, decoding included)")
    print("stage latency, mean / p95 ms:")
    for stage in STAGE_ORDER:
        stats = summary["stages"].get(stage)
        if stats:
            print(f"  {stage:<10} {stats['mean_ms']:8.2f} / {stats['p95_ms']:8.2f}   ({stats['count']} calls)")
    return 0


def _event_row(row: dict[str, Any]) -> dict[str, Any]:
    from edge.db.events import iso_from_db

    recognized = row["event_type"] == "face_recognized"
    return {
        "id": row["id"],
        "type": row["event_type"],
        "person": row["object_label"] if recognized else None,
        "label": row["object_label"],
        "confidence": row["confidence"],
        "camera": row["camera_name"],
        "timestamp": iso_from_db(row["created_at"]),
        "snapshot": row["snapshot_path"],
        "method": row["identification_method"],
    }


def cmd_events_list(args: argparse.Namespace) -> int:
    from edge.db.events import EventStore

    if args.limit < 1:
        raise CliError(f"--limit: must be at least 1, got {args.limit}", 2)
    settings = get_settings(args)
    db_path = settings.db_path
    rows: list[dict[str, Any]] = []
    if db_path.is_file():
        try:
            with EventStore(db_path, busy_timeout_ms=settings["database.busy_timeout_ms"]) as store:
                rows = [_event_row(r) for r in store.list(limit=args.limit, camera=args.camera, person=args.person)]
        except sqlite3.Error as exc:
            raise CliError(f"{db_path}: cannot read events: {exc} (run 'facepro migrate up'?)", 1) from None
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no events" + ("" if db_path.is_file() else f" (database {db_path} does not exist yet)"))
        return 0
    print(f"{'id':>6}  {'time (UTC)':<20}  {'camera':<14}  {'type':<15}  {'label':<24}  {'conf':>5}  snapshot")
    for r in rows:
        conf = f"{r['confidence']:.2f}" if r["confidence"] is not None else "-"
        print(f"{r['id']:>6}  {(r['timestamp'] or '')[:19]:<20}  {str(r['camera'])[:14]:<14}  {r['type']:<15}  "
              f"{str(r['label'])[:24]:<24}  {conf:>5}  {r['snapshot'] or '-'}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("process", help="run the face pipeline once over a video file and record its events")
    p.add_argument("video", metavar="VIDEO", help="video file (every frame is processed)")
    p.add_argument("--camera", metavar="NAME", help="camera name for the events (default: the file's name)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_process)

    esub = command_group(sub, "events", "recognition events")
    p = esub.add_parser("list", help="latest events first")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N events (default 50)")
    p.add_argument("--camera", metavar="NAME", help="only this camera")
    p.add_argument("--person", metavar="NAME", help="only this label (a person's name, or 'unknown')")
    p.set_defaults(func=cmd_events_list)
