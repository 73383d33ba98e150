"""The technician's password, the session secret key and the login rate limit.

The password is kept only as a salted scrypt hash in ``<data_dir>/web-password.json``
(mode 0600). At first boot, when no password exists, a random one is generated and
written once to ``<data_dir>/technician-password.txt`` (mode 0600) for the installer to
read and hand over; the service never logs or shows it. The Flask secret key that signs
session cookies is generated per device into ``<data_dir>/web-secret-key`` (mode 0600).

A new password must be at least ``MIN_PASSWORD_LENGTH`` characters and score at least
``MIN_PASSWORD_SCORE`` (of 4) with zxcvbn, which checks it against dictionaries of common
passwords, words, names and keyboard patterns: "Password123!" has length and all character
classes and is still refused.

Nothing here imports Flask, so the CLI can set a password without loading the web app.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets as pysecrets
import threading
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from edge import secrets
from edge.errors import BadInput

log = logging.getLogger(__name__)

PASSWORD_FILE = "web-password.json"
FIRST_BOOT_PASSWORD_FILE = "technician-password.txt"
SECRET_KEY_FILE = "web-secret-key"
MIN_PASSWORD_LENGTH = 10
MIN_PASSWORD_SCORE = 3  # zxcvbn: 3 = "safely unguessable: moderate protection from offline attacks"
# Words a guesser tries first on this device; zxcvbn penalises passwords built from them.
DEVICE_WORDS = ("facepro", "edge", "technician", "admin", "jetson", "camera")

# scrypt with n=2**14, r=8 needs 16 MiB and ~50 ms on a small ARM core: slow enough to make
# guessing expensive, cheap enough for a login form.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MAXMEM = 64 * 1024 * 1024


class PasswordError(BadInput, ValueError):
    """A password that cannot be accepted (too short, empty)."""


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically (temp file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # root running `facepro web set-password` on a device: the file must stay readable by
        # the service's own user, who owns the data dir.
        owner = path.parent.stat()
        os.chown(tmp, owner.st_uid, owner.st_gid)
    os.replace(tmp, path)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=32)


def hash_password(password: str) -> dict[str, Any]:
    salt = os.urandom(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return {"algorithm": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P,
            "salt": salt.hex(), "hash": digest.hex(), "set_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def check_password_record(record: dict[str, Any], password: str) -> bool:
    if record.get("algorithm") != "scrypt":
        return False
    try:
        digest = _scrypt(password, bytes.fromhex(record["salt"]), int(record["n"]), int(record["r"]), int(record["p"]))
        return hmac.compare_digest(digest, bytes.fromhex(record["hash"]))
    except (KeyError, ValueError, TypeError):
        return False


def password_file(data_dir: Path) -> Path:
    return Path(data_dir) / PASSWORD_FILE


def load_password_record(data_dir: Path) -> dict[str, Any] | None:
    """The stored hash record, or None when no password is set (or the file is unreadable)."""
    path = password_file(data_dir)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.error("technician password file %s is unreadable (%s); logins are refused until it is set again",
                  path, exc)
        return None
    return record if isinstance(record, dict) else None


def check_strength(password: str, context: tuple[str, ...] = ()) -> None:
    """Refuse a password that is empty, short, or guessable from dictionaries (PasswordError)."""
    if not password or not password.strip():
        raise PasswordError("the password is empty")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordError(f"the password is shorter than {MIN_PASSWORD_LENGTH} characters")
    from zxcvbn import zxcvbn

    # zxcvbn's matching is quadratic in the length; what lies past 100 characters adds nothing.
    result = zxcvbn(password[:100], user_inputs=list(DEVICE_WORDS + context))
    if int(result["score"]) < MIN_PASSWORD_SCORE:
        feedback = result.get("feedback") or {}
        why = feedback.get("warning") or "it is built from common words or patterns"
        hint = " ".join(feedback.get("suggestions") or [])
        raise PasswordError(f"the password is too easy to guess ({why.rstrip('.')})"
                            + (f"; {hint}" if hint else "") + " - use a longer passphrase of unrelated words")


def set_password(data_dir: Path, password: str, context: tuple[str, ...] = ()) -> None:
    """Store ``password`` as a salted scrypt hash (replacing any earlier one).

    ``context``: words about this device (its name, id) the password must not lean on."""
    check_strength(password, context)
    secrets.register(password)
    record = hash_password(password)
    _write_private(password_file(data_dir), (json.dumps(record, indent=2) + "\n").encode())
    # A password set on purpose replaces the generated one: do not leave the old one lying around.
    first_boot = Path(data_dir) / FIRST_BOOT_PASSWORD_FILE
    if first_boot.exists():
        first_boot.unlink()


def verify_password(data_dir: Path, password: str) -> bool:
    record = load_password_record(data_dir)
    if record is None or not password:
        return False
    return check_password_record(record, password)


def password_fingerprint(data_dir: Path) -> str | None:
    """A short value that changes whenever the password changes (sessions bind to it)."""
    record = load_password_record(data_dir)
    if record is None:
        return None
    return hashlib.sha256(str(record.get("salt", "")).encode()).hexdigest()[:16]


def ensure_technician_password(data_dir: Path) -> str | None:
    """At first boot (no password stored), create a random password.

    The password is written once to ``<data_dir>/technician-password.txt`` (mode 0600)
    for the installer, its hash to the password file, and returned. Returns None when a
    password already exists.
    """
    data_dir = Path(data_dir)
    if password_file(data_dir).exists():
        return None
    password = pysecrets.token_urlsafe(12)
    secrets.register(password)
    record = hash_password(password)
    try:
        _write_private(data_dir / FIRST_BOOT_PASSWORD_FILE, (password + "\n").encode())
        _write_private(password_file(data_dir), (json.dumps(record, indent=2) + "\n").encode())
    except OSError as exc:  # a full disk at first boot: no login until a password is set
        (data_dir / FIRST_BOOT_PASSWORD_FILE).unlink(missing_ok=True)
        log.error("cannot write the generated technician password to %s (%s); logins are refused until "
                  "'facepro web set-password' succeeds", data_dir, exc.strerror or exc)
        return None
    log.debug("generated the technician password at first boot; the installer reads it from %s",
             data_dir / FIRST_BOOT_PASSWORD_FILE)
    return password


def load_secret_key(data_dir: Path) -> bytes:
    """The per-device key that signs session cookies; created (0600) on first use."""
    path = Path(data_dir) / SECRET_KEY_FILE
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
        log.warning("session secret key %s is too short; generating a new one", path)
    except FileNotFoundError:
        pass
    key = pysecrets.token_hex(32).encode()
    try:
        _write_private(path, key)
    except OSError as exc:  # a full or read-only disk must not stop the service from booting
        log.error("cannot store the session secret key in %s (%s): sessions last until the service "
                  "restarts", path, exc.strerror or exc)
    return key


class LoginRateLimiter:
    """At most ``limit`` login attempts per ``window_s`` seconds per key (a client address,
    or the account itself: the web app keeps one of each, so guesses spread over many
    addresses still meet the account's limit)."""

    def __init__(self, limit: int = 5, window_s: float = 60.0, max_keys: int = 10000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._attempts: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, client: str, now: float | None = None) -> bool:
        """Record an attempt by ``client``; False when it is over the limit."""
        now = time.monotonic() if now is None else now
        with self._lock:
            attempts = self._attempts[client]
            while attempts and attempts[0] <= now - self.window_s:
                attempts.popleft()
            if len(attempts) >= self.limit:
                return False
            attempts.append(now)
            if len(self._attempts) > self.max_keys:
                self._shrink(now)
            return True

    def _shrink(self, now: float) -> None:
        """Under ``_lock``: forget keys whose attempts all left the window, then (a flood of
        fresh addresses) the keys whose last attempt is oldest, down to ``max_keys``."""
        for key in [k for k, v in self._attempts.items() if not v or v[-1] <= now - self.window_s]:
            del self._attempts[key]
        if len(self._attempts) > self.max_keys:
            by_age = sorted(self._attempts, key=lambda k: self._attempts[k][-1])
            for key in by_age[:len(self._attempts) - self.max_keys]:
                del self._attempts[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._attempts)

    def forget(self, client: str) -> None:
        """A successful login clears the client's attempts: only failures should lock it out."""
        with self._lock:
            self._attempts.pop(client, None)

    def retry_after(self, client: str, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        with self._lock:
            attempts = self._attempts.get(client)
            if not attempts:
                return 0
            return max(1, int(attempts[0] + self.window_s - now + 0.999))
