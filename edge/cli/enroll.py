"""``facepro enroll`` and ``facepro users list|remove``.

These run in their own process: the running service notices enrolment changes through
``Gallery.reload_if_changed`` (a cheap check of face_encodings) and reloads its gallery.
"""
from __future__ import annotations

import argparse
import sqlite3

from edge.cli.common import Subparsers, command_group, get_settings, print_json
from edge.db import connect
from edge.db import faces as faces_store
from edge.db.migrate import migrate_database
from edge.errors import BadInput

USER_FIELDS = ("name", "created_at", "embeddings", "dims", "backends", "last_enrolled_at", "images")


def _open_db(args: argparse.Namespace) -> sqlite3.Connection:
    settings = get_settings(args)
    migrate_database(settings)  # the schema must be current before we touch it
    return connect(settings.db_path, busy_timeout_ms=settings["database.busy_timeout_ms"])


def cmd_enroll(args: argparse.Namespace) -> int:
    # cv2 and onnxruntime load only for the commands that need them.
    from edge.pipeline.enroll import analyse_image, check_image_file, save_samples, validate_name
    from edge.pipeline.pack import load_model_pack_from_settings

    settings = get_settings(args)
    validate_name(args.name)
    for image in args.images:  # a missing file or an image bomb is refused before the models load
        check_image_file(image)
    pack = load_model_pack_from_settings(settings)
    threshold = settings["recognition.det_threshold"]
    # Every image is checked before the database is opened or anything written.
    samples = [analyse_image(pack, image, threshold) for image in args.images]
    conn = _open_db(args)
    try:
        result = save_samples(conn, settings.data_dir, args.name, samples, pack.embedder.backend)
    finally:
        conn.close()
    if args.json:
        print_json(result)
    else:
        print(f"enrolled {result['name']}: {result['added']} face(s) added "
              f"(backend {result['backend']}, dim {result['dim']})")
        for item in result["images"]:
            print(f"  {item['image']} -> {item['crop']} (score {item['score']:.2f})")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    conn = _open_db(args)
    try:
        users = [{key: person[key] for key in USER_FIELDS} for person in faces_store.list_people(conn)]
    finally:
        conn.close()
    if args.json:
        print_json(users)
        return 0
    if not users:
        print("no one enrolled")
        return 0
    width = max(len(u["name"]) for u in users)
    print(f"{'NAME':<{width}}  FACES  MODEL             ENROLLED (UTC)")
    for u in users:
        model = ",".join(f"{b}/{d}" for b in u["backends"] for d in u["dims"]) or "-"
        print(f"{u['name']:<{width}}  {u['embeddings']:>5}  {model:<16}  {u['created_at']}")
    return 0


def cmd_users_remove(args: argparse.Namespace) -> int:
    from edge.pipeline.enroll import remove

    settings = get_settings(args)
    conn = _open_db(args)
    try:
        result = remove(conn, settings.data_dir, args.name)
    except KeyError:
        raise BadInput(f"no enrolled person named {args.name!r} (see: facepro users list)") from None
    finally:
        conn.close()
    print(f"removed {result['name']}: {result['removed_embeddings']} face(s)")
    return 0


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("enroll", help="enrol a person from photos (exactly one face per photo)")
    p.add_argument("name", metavar="NAME", help="the person's name")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="photo(s) with exactly one face each")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_enroll)

    usub = command_group(subparsers, "users", "enrolled people")
    p = usub.add_parser("list", help="list enrolled people")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_users_list)
    p = usub.add_parser("remove", help="remove a person, their embeddings and face images")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_users_remove)
