"""Opening a camera: the source kinds, ``open_capture`` and the error a failed open gets.

Source kinds (from the ``source`` value):

* ``usb``        an integer device index, a string of digits or a ``/dev/...`` path (V4L2);
* ``url``        ``rtsp://``, ``rtsp(s)``, ``http(s)://`` ... (MJPEG, H.264) through OpenCV's FFmpeg backend;
* ``gstreamer``  a pipeline string (contains ``!``), ending in ``appsink``: run through PyGObject
                 (:mod:`edge.pipeline.gst`), or OpenCV's GStreamer backend where only that exists;
* ``file``       a video file, optionally looped, paced at its native rate or read as fast as possible.

``backend: gstreamer`` on a URL camera decodes it with a pipeline chosen for the platform
(:func:`edge.pipeline.gst.choose_platform`, or ``cameras[].decoder``).

A URL that does not open is diagnosed (:mod:`edge.pipeline.camera_errors`): the error names
the cause (401, 404, refused, unknown host, timeout, TLS, unknown scheme) and a fix. Messages
name the camera by its masked URL; the password never appears.
"""
from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2

from edge.errors import FaceproError
from edge.pipeline import gst
from edge.pipeline.camera_errors import CameraError, check_scheme, diagnose
from edge.pipeline.camera_url import CredentialError, display_source, open_url

log = logging.getLogger(__name__)

KINDS = ("usb", "url", "gstreamer", "file")
URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
# OpenCV reads its FFmpeg options from the environment when a capture opens; a lock makes
# each camera's rtsp_transport apply to its own open only.
_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_open_lock = threading.Lock()


class SourceError(FaceproError):
    """A camera cannot be opened or read; the message names the camera and its source."""

    def __init__(self, message: str, cause: CameraError | None = None) -> None:
        super().__init__(message)
        self.cause = cause


def source_kind(source: str | int) -> str:
    if isinstance(source, int) or (isinstance(source, str) and source.strip().isdigit()):
        return "usb"
    text = source.strip()
    if "!" in text:
        return "gstreamer"
    if text.lower().startswith(URL_SCHEMES) or "://" in text:
        return "url"  # an unknown scheme (rstp://) is a URL with a typo, not a file name
    if text.startswith("/dev/"):
        return "usb"
    return "file"


def has_gstreamer() -> bool:
    try:
        return bool(cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER))
    except Exception:  # very old OpenCV without the registry
        return "GStreamer:                   YES" in cv2.getBuildInformation()


def iso_utc(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def describe(camera: dict[str, Any]) -> str:
    return f"camera {camera.get('name', '?')!r} (source {display_source(camera)!r})"


def _ffmpeg_options(camera: dict[str, Any]) -> str:
    options = []
    if str(camera["source"]).lower().startswith(("rtsp://", "rtsps://")):
        options.append(f"rtsp_transport;{camera.get('rtsp_transport') or 'tcp'}")
    return "|".join(options)


def _gst_url(camera: dict[str, Any], url: str, timeout_s: float, what: str,
             stop: threading.Event | None) -> gst.GstCapture:
    platform, why = gst.platform_for(camera.get("decoder") or "auto")
    try:
        cap = gst.GstCapture(url=url, platform=platform, transport=camera.get("rtsp_transport") or "tcp",
                             open_timeout_s=timeout_s, read_timeout_s=timeout_s, stop=stop)
    except gst.GstSourceError as exc:
        cause = diagnose(url, timeout_s=min(timeout_s, 5.0))
        if cause.code in ("unknown", "not_stream"):
            raise SourceError(f"{what}: GStreamer ({platform} decoding): {exc}", cause) from None
        raise SourceError(f"{what}: {cause.text()}", cause) from None
    log.info("%s: %s (%s): %s", what, cap.decode_path, why, cap.description)
    return cap


def _gst_launch(camera: dict[str, Any], timeout_s: float, what: str,
                stop: threading.Event | None) -> gst.GstCapture | cv2.VideoCapture:
    source = str(camera["source"])
    if not gst.available():
        if has_gstreamer():
            return cv2.VideoCapture(source, cv2.CAP_GSTREAMER)
        raise SourceError(f"{what}: a GStreamer pipeline needs PyGObject with GStreamer (python3-gi, "
                          "gir1.2-gstreamer-1.0) or an OpenCV built with GStreamer, and neither is here "
                          "(use an RTSP/HTTP URL or a device instead)")
    try:
        return gst.GstCapture(launch=source, open_timeout_s=timeout_s, read_timeout_s=timeout_s, stop=stop)
    except gst.GstSourceError as exc:
        raise SourceError(f"{what}: {exc}") from None


def _open_url(camera: dict[str, Any], timeout_ms: int, what: str,
              stop: threading.Event | None = None) -> cv2.VideoCapture | gst.GstCapture:
    bad = check_scheme(str(camera["source"]))
    if bad is not None:
        raise SourceError(f"{what}: {bad.text()}", bad)
    try:
        url = open_url(camera)
    except CredentialError as exc:
        raise SourceError(f"{what}: {exc}") from None
    if camera.get("backend") == "gstreamer":
        if not gst.available():
            raise SourceError(f"{what}: backend 'gstreamer': {gst.unavailable_reason()}")
        return _gst_url(camera, url, timeout_ms / 1000.0, what, stop)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
    with _open_lock:
        before = os.environ.get(_OPTIONS_ENV)
        options = _ffmpeg_options(camera)
        if options:
            os.environ[_OPTIONS_ENV] = options
        try:
            cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
        finally:
            if options:
                if before is None:
                    os.environ.pop(_OPTIONS_ENV, None)
                else:
                    os.environ[_OPTIONS_ENV] = before
    if not cap.isOpened():
        cap.release()
        cause = diagnose(url, timeout_s=min(timeout_ms / 1000.0, 5.0))
        raise SourceError(f"{what}: {cause.text()}", cause)
    return cap


def open_capture(camera: dict[str, Any], timeout_s: float | None = None,
                 stop: threading.Event | None = None) -> Any:
    """An opened ``VideoCapture`` (or :class:`~edge.pipeline.gst.GstCapture`, which reads the same)
    for ``camera``; raises SourceError naming the camera and source. ``stop`` ends a blocked
    GStreamer open or read early."""
    source = camera["source"]
    kind = source_kind(source)
    backend_setting = camera.get("backend", "auto")
    stall = float(timeout_s if timeout_s is not None else camera.get("stall_timeout_s", 10.0))
    timeout_ms = int(max(stall, 0.1) * 1000)
    what = describe(camera)

    if kind == "gstreamer":
        cap = _gst_launch(camera, timeout_ms / 1000.0, what, stop)
    elif kind == "url":
        return _open_url(camera, timeout_ms, what, stop)
    elif backend_setting == "gstreamer":
        raise SourceError(f"{what}: backend 'gstreamer' takes an rtsp:// or http(s):// URL or a whole "
                          f"pipeline (a source with '!'), not a {kind} source")
    elif kind == "usb":
        target: int | str = int(source) if isinstance(source, int) or str(source).isdigit() else str(source)
        if isinstance(target, str) and not os.path.exists(target):
            raise SourceError(f"{what}: device {target} does not exist")
        api = cv2.CAP_FFMPEG if backend_setting == "ffmpeg" else cv2.CAP_V4L2
        cap = cv2.VideoCapture(target, api)
    else:
        path = Path(str(source))
        if not path.exists():
            raise SourceError(f"{what}: video file {path} not found")
        if not path.is_file():
            raise SourceError(f"{what}: {path} is not a file")
        if not os.access(path, os.R_OK):
            raise SourceError(f"{what}: video file {path} is not readable (permission denied)")
        api = cv2.CAP_FFMPEG if backend_setting in ("auto", "ffmpeg") else cv2.CAP_ANY
        cap = cv2.VideoCapture(str(path), api)

    if not cap.isOpened():
        cap.release()
        if kind == "file":
            raise SourceError(f"{what}: cannot decode video file {source} (not a video OpenCV can read)")
        raise SourceError(f"{what}: cannot open {kind} source {display_source(camera)}")
    if kind == "usb":
        if camera.get("width"):
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, int(camera["width"]))
        if camera.get("height"):
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, int(camera["height"]))
    return cap
