"""``facepro process VIDEO`` and ``facepro events list``."""
from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge.cli.common import Subparsers, command_group, get_settings, print_json
from edge.db.events import EventStore, event_fields
from edge.db.migrate import migrate_database
from edge.errors import BadInput, FaceproError

RECOGNIZED = "face_recognized"  # edge.events.RECOGNIZED, without loading cv2 for a listing
STAGE_ORDER = ("decode", "preprocess", "detect", "embed", "match", "persist", "publish")


def cmd_process(args: argparse.Namespace) -> int:
    # cv2 and onnxruntime load only for the commands that need them.
    from edge.pipeline.service import process_file
    from edge.pipeline.sources import SourceError

    video = Path(args.video)
    if not video.exists():
        raise BadInput(f"{args.video}: video file not found")
    if not video.is_file():
        raise BadInput(f"{args.video}: not a file")
    settings = get_settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate_database(settings)
    camera = args.camera or video.stem
    try:
        summary = process_file(settings, video, camera)
    except SourceError as exc:
        raise BadInput(f"{args.video}: cannot decode video ({exc})") from None
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


def _event_json(row: Mapping[str, Any]) -> dict[str, Any]:
    e = event_fields(row)
    return {
        "id": e["id"],
        "type": e["type"],
        "person": e["label"] if e["type"] == RECOGNIZED else None,
        "label": e["label"],
        "confidence": e["confidence"],
        "camera": e["camera"],
        "timestamp": e["timestamp"],
        "snapshot": e["snapshot_path"],
        "method": e["method"],
    }


def cmd_events_list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise BadInput(f"--limit: must be at least 1, got {args.limit}")
    settings = get_settings(args)
    db_path = settings.db_path
    rows: list[dict[str, Any]] = []
    if db_path.is_file():
        try:
            with EventStore(db_path, busy_timeout_ms=settings["database.busy_timeout_ms"]) as store:
                rows = [_event_json(r) for r in store.list(limit=args.limit, camera=args.camera, person=args.person)]
        except sqlite3.Error as exc:
            raise FaceproError(f"{db_path}: cannot read events: {exc} (run 'facepro migrate up'?)") from None
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


def register(sub: Subparsers) -> None:
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
