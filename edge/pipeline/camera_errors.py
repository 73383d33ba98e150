"""Name why a camera URL does not open: unknown scheme, unknown host, refused, timeout, TLS,
401, 404 ... each with a fix that fits.

OpenCV's FFmpeg reader only says "cannot open"; FFmpeg's own reason goes to the C library's
stderr, which Python cannot tie to a camera. So after a failed open the service asks the camera
itself, with the same protocol steps a player takes: resolve the host, connect, TLS handshake
for rtsps/https, then an RTSP ``DESCRIBE`` or an HTTP ``GET`` (with Basic or Digest credentials
from the URL), and reads the status line. Every step is bounded by ``timeout_s`` and by size.
"""
from __future__ import annotations

import base64
import hashlib
import re
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from edge import secrets

KNOWN_SCHEMES = ("rtsp", "rtsps", "http", "https", "rtmp", "udp", "tcp", "srt")
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443, "rtmp": 1935}
MAX_REPLY_BYTES = 16384


@dataclass(frozen=True)
class CameraError:
    code: str        # unknown_scheme, unknown_host, refused, timeout, tls, unauthorized, not_found, ...
    message: str
    fix: str

    def text(self) -> str:
        return f"{self.message}; fix: {self.fix}"


FIXES = {
    "unknown_scheme": "the URL must start with rtsp://, rtsps://, http:// or https:// (check for a typo such as rstp://)",
    "bad_url": "write the URL as scheme://host[:port]/path",
    "unknown_host": "check the host name in cameras[].source, or use the camera's IP address; check DNS on the device",
    "refused": ("check the camera is reachable at that address, the port in the URL (RTSP is usually 554) "
                "and that its RTSP/HTTP service is enabled"),
    "unreachable": "check the network: cable, VLAN, routes, firewall between the device and the camera",
    "timeout": "check the camera is powered and reachable (ping it); a firewall may drop the traffic",
    "tls": "check the camera's certificate, or use rtsp:// / http:// if the camera has no TLS",
    "unauthorized": "check the user name and password (cameras[].username / password / password_file, "
                    "or user:password in the URL)",
    "forbidden": "the user has no right to this stream: check the user's permissions in the camera's web page",
    "not_found": "check the stream path in the camera's manual (for example /Streaming/Channels/101 or /stream1)",
    "not_stream": "the server answered but sent no video stream: check the path and the camera's stream settings",
    "server_error": "the camera reported an internal error: restart the camera",
    "no_answer": "the camera accepts connections but does not answer: restart it, or check the port is the stream's",
    "unknown": "check the URL with `ffprobe URL` from the device",
}


def error(code: str, message: str) -> CameraError:
    return CameraError(code, message, FIXES[code])


def check_scheme(url: str) -> CameraError | None:
    """An unknown or misspelt scheme (``rstp://``), before anything is opened."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme and scheme not in KNOWN_SCHEMES:
        return error("unknown_scheme", f"unknown URL scheme {scheme + '://'!r}")
    return None


def _digest(header: str, method: str, uri: str, user: str, password: str) -> str:
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', header))
    realm, nonce = fields.get("realm", ""), fields.get("nonce", "")
    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    response = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
    return (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}"')


def _request(sock: socket.socket, method: str, url: str, target: str, host: str, auth: str | None,
             rtsp: bool) -> tuple[int, dict[str, str]]:
    lines = [f"{method} {target} {'RTSP/1.0' if rtsp else 'HTTP/1.1'}"]
    lines += ["CSeq: 1", "Accept: application/sdp"] if rtsp else [f"Host: {host}", "Connection: close"]
    lines.append("User-Agent: facepro-probe")
    if auth:
        lines.append(f"Authorization: {auth}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data and len(data) < MAX_REPLY_BYTES:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status_line, _, rest = head.partition("\r\n")
    match = re.match(r"(RTSP|HTTP)/\d\.\d (\d{3})", status_line)
    if not match:
        raise ValueError(f"not an {'RTSP' if rtsp else 'HTTP'} answer: {status_line[:60]!r}")
    headers = {}
    for line in rest.split("\r\n"):
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(match.group(2)), headers


def diagnose(url: str, timeout_s: float = 5.0) -> CameraError:
    """Why ``url`` does not give a stream, found by asking the camera step by step."""
    bad = check_scheme(url)
    if bad is not None:
        return bad
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        host, port = parts.hostname, parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return error("bad_url", "the URL's port is not a number")
    if not host or port is None:
        return error("bad_url", f"no host in the URL {secrets.mask_url(url)}")
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4]
        addr = (str(info[0]), int(info[1]))
    except socket.gaierror:
        return error("unknown_host", f"unknown host {host!r} (the name does not resolve)")
    try:
        sock = socket.create_connection(addr, timeout=timeout_s)
    except ConnectionRefusedError:
        return error("refused", f"connection refused by {host}:{port}")
    except TimeoutError:
        return error("timeout", f"no connection to {host}:{port} within {timeout_s:g} s")
    except OSError as exc:
        return error("unreachable", f"{host}:{port} unreachable ({exc.strerror or exc})")
    if scheme in ("udp", "tcp", "srt", "rtmp"):
        sock.close()
        return error("unknown", f"{host}:{port} accepts connections but the stream does not open")
    try:
        sock.settimeout(timeout_s)
        if scheme in ("rtsps", "https"):
            context = ssl.create_default_context()
            try:
                sock = context.wrap_socket(sock, server_hostname=host)
            except ssl.SSLError as exc:
                return error("tls", f"TLS handshake with {host}:{port} failed ({exc.reason or exc})")
        rtsp = scheme.startswith("rtsp")
        target = url.split("@", 1)[-1] if rtsp else (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if rtsp:
            target = f"{scheme}://{target.split('://', 1)[-1]}"
        method = "DESCRIBE" if rtsp else "GET"
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        auth = ("Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()) if parts.username else None
        status, headers = _request(sock, method, url, target, host, auth, rtsp)
        challenge = headers.get("www-authenticate", "")
        if status == 401 and parts.username and challenge.lower().startswith("digest"):
            sock.close()
            sock = socket.create_connection(addr, timeout=timeout_s)
            if scheme in ("rtsps", "https"):
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            auth = _digest(challenge, method, target, user, password)
            status, headers = _request(sock, method, url, target, host, auth, rtsp)
    except TimeoutError:
        return error("no_answer", f"{host}:{port} accepted the connection but sent no answer within {timeout_s:g} s")
    except ValueError as exc:
        return error("unknown", f"{host}:{port}: {exc}")
    except OSError as exc:
        return error("no_answer", f"{host}:{port} closed the connection ({exc.strerror or exc})")
    finally:
        sock.close()
    return _from_status(status, headers, host, port, rtsp)


def _from_status(status: int, headers: dict[str, str], host: str, port: int, rtsp: bool) -> CameraError:
    what = "RTSP" if rtsp else "HTTP"
    if status == 401:
        return error("unauthorized", f"{what} 401 Unauthorized from {host}:{port} (wrong or missing user/password)")
    if status == 403:
        return error("forbidden", f"{what} 403 Forbidden from {host}:{port}")
    if status == 404:
        return error("not_found", f"{what} 404 Not Found from {host}:{port} (no stream at this path)")
    if status >= 500:
        return error("server_error", f"{what} {status} from {host}:{port}")
    if status >= 400:
        return error("unknown", f"{what} {status} from {host}:{port}")
    kind = headers.get("content-type", "")
    return error("not_stream", f"{what} {status} from {host}:{port} (content {kind or 'unknown'}) but no video decoded")
