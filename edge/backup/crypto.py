"""Encrypted archive container: AES-256-GCM in authenticated chunks, key from scrypt.

Layout of an encrypted archive (``.zip.enc``)::

    b"FPBKENC1" | uint32 header length | header (JSON) | chunk 0 | chunk 1 | ... | final chunk

The header holds the KDF parameters and salt, the cipher, the chunk size, a random
7-byte nonce prefix and a key-check tag. Each chunk is ``chunk_size`` bytes of plaintext
(the final one shorter, possibly empty) sealed with AES-GCM under the nonce
``prefix | counter (4 bytes) | last (1 byte)`` and the header bytes as associated data
(the STREAM construction): reordering, dropping, truncating or appending chunks, or
touching the header, fails authentication. Memory use is one chunk, whatever the size.

The key is scrypt(passphrase or key-file bytes, salt, n=2**15, r=8, p=1): salted and slow,
so a stolen archive cannot be brute-forced cheaply. A reader accepts only n from 2**14 to
2**16 with r=8 and p=1 (at most 64 MiB and about a second): the header is the attacker's,
and a crafted one asking for n=2**20, r=32 would cost gigabytes before the key check.
A wrong key is detected by the key-check tag before any data is decrypted and reported
as such; a damaged archive fails on the chunk that is damaged.
"""
from __future__ import annotations

import base64
import json
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from edge.errors import FaceproError

MAGIC = b"FPBKENC1"
CHUNK_SIZE = 1 << 20
TAG = 16
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 15, 8, 1
_CHECK_AAD = b"facepro backup key check"
MAX_HEADER = 4096
# What a reader accepts from a header (see the module docstring); the writer uses SCRYPT_*.
ACCEPTED_N = (1 << 14, 1 << 15, 1 << 16)
ACCEPTED_R, ACCEPTED_P = (8,), (1,)


class CryptoError(FaceproError):
    """Decryption failed; the message says whether the key is wrong or the data damaged."""


class KeySource:
    """A passphrase or a key file, turned into a key per archive salt."""

    def __init__(self, passphrase: str | None = None, key_file: str | Path | None = None) -> None:
        if not passphrase and not key_file:
            raise ValueError("an encryption key needs a passphrase or a key file")
        self.passphrase = passphrase
        self.key_file = Path(key_file) if key_file else None

    def secret(self) -> bytes:
        if self.key_file is not None:
            try:
                data = self.key_file.read_bytes()
            except OSError as exc:
                raise CryptoError(f"{self.key_file}: cannot read key file: {exc.strerror}") from exc
            if len(data.strip()) < 16:
                raise CryptoError(f"{self.key_file}: key file is too short (at least 16 bytes)")
            return data.strip()
        assert self.passphrase is not None
        return self.passphrase.encode("utf-8")

    def derive(self, salt: bytes, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> bytes:
        return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(self.secret())


def is_encrypted(path: str | Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(MAGIC)) == MAGIC


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + struct.pack(">I", counter) + (b"\x01" if last else b"\x00")


def encrypt_stream(src: BinaryIO, dst: BinaryIO, keys: KeySource,
                   progress: Callable[[int], None] | None = None, sync_every: int = 0) -> None:
    """Encrypt everything readable from ``src`` into ``dst``."""
    salt = os.urandom(16)
    prefix = os.urandom(7)
    key = keys.derive(salt)
    aead = AESGCM(key)
    check = aead.encrypt(_nonce(prefix, 0xFFFFFFFF, True), b"", _CHECK_AAD)
    header_json = json.dumps({
        "cipher": "AES-256-GCM", "kdf": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P,
        "salt": base64.b64encode(salt).decode(), "nonce_prefix": base64.b64encode(prefix).decode(),
        "chunk_size": CHUNK_SIZE, "key_check": base64.b64encode(check).decode(),
    }, sort_keys=True).encode()
    header = MAGIC + struct.pack(">I", len(header_json)) + header_json
    dst.write(header)
    counter = 0
    while True:
        chunk = _read_full(src, CHUNK_SIZE)
        last = len(chunk) < CHUNK_SIZE  # a full chunk is never the last: an empty one follows
        if counter >= 0xFFFFFFFF:
            raise CryptoError("archive too large for one encrypted stream")
        dst.write(aead.encrypt(_nonce(prefix, counter, last), chunk, header))
        if sync_every and counter % sync_every == sync_every - 1 and hasattr(dst, "fileno"):
            dst.flush()
            os.fdatasync(dst.fileno())  # keep dirty data small (see archive.DirtyLimiter)
        if progress:
            progress(len(chunk))
        counter += 1
        if last:
            break


def _read_full(src: BinaryIO, size: int) -> bytes:
    parts: list[bytes] = []
    left = size
    while left:
        part = src.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def read_header(src: BinaryIO, label: str = "archive") -> tuple[dict[str, Any], bytes]:
    """The parsed header and its raw bytes (the associated data of every chunk). Refuses a
    header that is malformed or asks for KDF parameters outside the accepted range, in one
    line, before any key is derived."""
    magic = src.read(len(MAGIC))
    if magic != MAGIC:
        raise CryptoError(f"{label}: not an encrypted facepro backup")
    raw_len = src.read(4)
    if len(raw_len) != 4:
        raise CryptoError(f"{label}: truncated encryption header")
    (length,) = struct.unpack(">I", raw_len)
    if length > MAX_HEADER:
        raise CryptoError(f"{label}: corrupted encryption header")
    header_json = src.read(length)
    try:
        meta = json.loads(header_json)
        if meta["cipher"] != "AES-256-GCM" or meta["kdf"] != "scrypt":
            raise CryptoError(f"{label}: unsupported cipher {meta['cipher']!r} / kdf {meta['kdf']!r}")
        parsed: dict[str, Any] = {
            "salt": base64.b64decode(meta["salt"]), "prefix": base64.b64decode(meta["nonce_prefix"]),
            "check": base64.b64decode(meta["key_check"]), "chunk_size": int(meta["chunk_size"]),
            "n": int(meta["n"]), "r": int(meta["r"]), "p": int(meta["p"])}
    except CryptoError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise CryptoError(f"{label}: corrupted encryption header") from exc
    n, r, p = parsed["n"], parsed["r"], parsed["p"]
    if n not in ACCEPTED_N or r not in ACCEPTED_R or p not in ACCEPTED_P:
        raise CryptoError(f"{label}: refused: the encryption header asks for scrypt n={n}, r={r}, p={p}; "
                          "facepro accepts only n=16384..65536 (a power of two), r=8, p=1")
    if len(parsed["prefix"]) != 7 or not 1024 <= parsed["chunk_size"] <= 64 << 20:
        raise CryptoError(f"{label}: corrupted encryption header")
    return parsed, MAGIC + raw_len + header_json


def check_header(path: Path, label: str) -> None:
    """Read and check only the header of an encrypted file (cheap; no key is derived)."""
    with open(path, "rb") as fh:
        read_header(fh, label)


def decrypt_stream(src: BinaryIO, dst: BinaryIO, keys: KeySource, label: str = "archive",
                   progress: Callable[[int], None] | None = None) -> None:
    """Decrypt ``src`` into ``dst``; raises :class:`CryptoError` with a clear reason."""
    meta, header = read_header(src, label)
    prefix, chunk_size = meta["prefix"], meta["chunk_size"]
    aead = AESGCM(keys.derive(meta["salt"], meta["n"], meta["r"], meta["p"]))
    try:
        aead.decrypt(_nonce(prefix, 0xFFFFFFFF, True), meta["check"], _CHECK_AAD)
    except InvalidTag:
        raise CryptoError(f"{label}: wrong passphrase or key file (the key check failed)") from None
    counter = 0
    while True:
        block = _read_full(src, chunk_size + TAG)
        last = len(block) < chunk_size + TAG
        try:
            plain = aead.decrypt(_nonce(prefix, counter, last), block, header)
        except InvalidTag:
            what = "truncated or damaged" if last else "damaged"
            raise CryptoError(f"{label}: encrypted data is {what} (chunk {counter} failed authentication)") from None
        dst.write(plain)
        if progress:
            progress(len(plain))
        counter += 1
        if last:
            break
    if src.read(1):
        raise CryptoError(f"{label}: unexpected data after the final encrypted chunk")
