#!/usr/bin/env python3
"""Enrol one person on many FacePro Edge devices through their machine API.

    scripts/enroll_fleet.py DEVICES.txt NAME PHOTO [PHOTO ...]

DEVICES.txt has one device per line: its status page URL, then its admin token or
``@FILE`` naming a file that holds it (a line with a URL alone uses ``--token-file``):

    # front door
    http://10.0.10.21:8080  @tokens/front-door.token
    http://10.0.10.22:8080  fpe_...

Make each device's token on the device: ``facepro web token create fleet --scope admin``.
On each device the person is created with the photos; where they are already enrolled,
the photos are added to them. Every device checks the photos as ``facepro enroll`` does
(exactly one face each) and takes all of them or none. One line per device says what
happened; the exit status is 0 when every device enrolled, 1 when any failed, 2 for bad
input. Needs only Python 3.9+; tokens are never printed.
"""
from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

MAX_PHOTO_BYTES = 20 * 1024 * 1024
MAX_DEVICES = 1000
MAX_ANSWER_BYTES = 1024 * 1024


class BadInput(Exception):
    pass


def read_token(path: Path, where: str) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise BadInput(f"{where}: cannot read token file {path}: {exc.strerror or exc}") from None
    if not token or any(c.isspace() for c in token):
        raise BadInput(f"{where}: token file {path} does not hold one token")
    return token


def parse_devices(path: Path, default_token: str | None) -> list[tuple[str, str]]:
    """[(base URL, token)] from DEVICES.txt; BadInput naming the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read the devices file: {exc}") from None
    devices: list[tuple[str, str]] = []
    for number, line in enumerate(lines, start=1):
        where = f"{path}:{number}"
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) > 2:
            raise BadInput(f"{where}: expected 'URL [TOKEN | @TOKEN_FILE]', got {len(fields)} fields")
        url = fields[0].rstrip("/")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadInput(f"{where}: {url!r} is not an http:// or https:// URL")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise BadInput(f"{where}: the URL must not carry credentials, a query or a fragment")
        if len(fields) == 2:
            token = fields[1]
            if token.startswith("@"):
                token = read_token((path.parent / token[1:]), where)
        elif default_token is not None:
            token = default_token
        else:
            raise BadInput(f"{where}: no token for {url} (add one to the line or pass --token-file)")
        devices.append((url, token))
    if not devices:
        raise BadInput(f"{path}: lists no device")
    if len(devices) > MAX_DEVICES:
        raise BadInput(f"{path}: more than {MAX_DEVICES} devices")
    return devices


def read_photos(paths: list[str]) -> list[tuple[str, bytes, str]]:
    photos = []
    for name in paths:
        path = Path(name)
        try:
            size = path.stat().st_size
            if size > MAX_PHOTO_BYTES:
                raise BadInput(f"{path}: {size} bytes is more than {MAX_PHOTO_BYTES} bytes")
            data = path.read_bytes()
        except OSError as exc:
            raise BadInput(f"{path}: {exc.strerror or exc}") from None
        if data[:3] == b"\xff\xd8\xff":
            kind = "image/jpeg"
        elif data[:8] == b"\x89PNG\r\n\x1a\n":
            kind = "image/png"
        else:
            raise BadInput(f"{path}: not a JPEG or PNG image")
        photos.append((path.name, data, kind))
    return photos


def multipart(fields: dict[str, str], photos: list[tuple[str, bytes, str]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    chunks: list[bytes] = []
    for key, value in fields.items():
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode())
    for filename, data, kind in photos:
        safe = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="photos"; filename="{safe}"\r\n'
                      f"Content-Type: {kind}\r\n\r\n".encode() + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def post(url: str, token: str, body: bytes, content_type: str, timeout: float) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON answer); OSError when the device cannot be reached."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": content_type, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read(MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read(MAX_ANSWER_BYTES)
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = {"code": "not_json", "message": f"HTTP {status}: the answer is not JSON (is this a FacePro device?)"}
    return status, answer if isinstance(answer, dict) else {"code": "not_json", "message": f"HTTP {status}"}


def enrol_one(url: str, token: str, name: str, photos: list[tuple[str, bytes, str]],
              timeout: float) -> dict[str, Any]:
    result: dict[str, Any] = {"device": url, "ok": False}
    try:
        body, kind = multipart({"name": name}, photos)
        status, answer = post(f"{url}/api/v1/people", token, body, kind, timeout)
        action = "created"
        if status == 409:
            body, kind = multipart({}, photos)
            faces_url = f"{url}/api/v1/people/{urllib.parse.quote(name, safe='')}/faces"
            status, answer = post(faces_url, token, body, kind, timeout)
            action = "added to the existing person"
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc
        result.update(code="unreachable", message=f"cannot reach the device: {reason}")
        return result
    if status == 201:
        result.update(ok=True, action=action, added=answer.get("added"), faces=answer.get("faces"))
    else:
        result.update(status=status, code=answer.get("code", "error"), message=answer.get("message", ""))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Enrol one person on many FacePro Edge devices (machine API).")
    parser.add_argument("devices", type=Path, metavar="DEVICES.txt", help="one 'URL [TOKEN|@FILE]' per line")
    parser.add_argument("name", metavar="NAME", help="the person's name")
    parser.add_argument("photos", nargs="+", metavar="PHOTO", help="JPEG or PNG photos, one face each")
    parser.add_argument("--token-file", type=Path, help="the token for devices listed without one")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per device request (default 60)")
    parser.add_argument("--parallel", type=int, default=4, help="devices enrolled at once (default 4)")
    parser.add_argument("--json", action="store_true", help="one JSON report instead of lines")
    args = parser.parse_args(argv)
    try:
        if not args.name.strip():
            raise BadInput("NAME: the person's name is empty")
        if not 1 <= args.parallel <= 32 or not 0 < args.timeout <= 3600:
            raise BadInput("--parallel: 1..32 and --timeout: up to 3600 s")
        default = read_token(args.token_file, "--token-file") if args.token_file else None
        devices = parse_devices(args.devices, default)
        photos = read_photos(args.photos)
    except BadInput as exc:
        print(f"enroll_fleet: error: {exc}", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        results = list(pool.map(lambda d: enrol_one(d[0], d[1], args.name, photos, args.timeout), devices))
    failed = [r for r in results if not r["ok"]]
    if args.json:
        json.dump({"name": args.name, "devices": results, "failed": len(failed)}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for r in results:
            if r["ok"]:
                print(f"OK    {r['device']}  {r['action']}: {r['added']} face(s) added, {r['faces']} in all")
            else:
                print(f"FAIL  {r['device']}  {r['code']}: {r['message']}")
        print(f"{args.name}: enrolled on {len(results) - len(failed)} of {len(results)} device(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
