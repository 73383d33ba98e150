"""Camera sources: a capture thread per camera, decoding into a frame ring and reopening on failure.

Opening (source kinds, credentials, named errors) is :mod:`edge.pipeline.capture`; the probe
``facepro doctor`` runs is :mod:`edge.pipeline.probe`; stall detection and the reconnect
backoff are :mod:`edge.pipeline.stall`.

A :class:`CameraSource` runs one capture thread. A live source whose stream stops advancing
(no new picture by its timestamps or content) for ``stall_timeout_s`` is offline and reopened;
a grab that fails while pictures still come is a decode error (counted), not a lost camera.
Reopening waits a short first retry, then a jittered backoff capped at ``reconnect_max_s``.
Its state (online, reconnects, last frame time, error with code and fix, decode errors) is
readable through :meth:`CameraSource.status` and published on the bus topic ``camera``.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

import cv2
import numpy as np

from edge.pipeline import native_log, rawjpeg
from edge.pipeline.capture import (  # noqa: F401  (re-exported: the names callers import from here)
    KINDS,
    URL_SCHEMES,
    SourceError,
    describe,
    has_gstreamer,
    iso_utc,
    open_capture,
    source_kind,
)
from edge.pipeline.probe import probe_source  # noqa: F401
from edge.pipeline.ring import FrameRing, RateMeter, RingClosed
from edge.pipeline.stall import Backoff, FrameProgress

log = logging.getLogger(__name__)

BACKOFF_INITIAL_S = 0.5
DEFAULT_RECONNECT_MAX_S = 2.5
# A live stream whose grab() fails and that gave no new picture for this long has ended
# (server gone); shorter gaps between failures are damaged packets.
READ_FAIL_GRACE_S = 1.0
FAIL_PAUSE_S = 0.01
TIMEOUT_FRACTION = 0.9


class CameraSource:
    """One camera's capture thread, decoding into ``ring`` and reopening on failure.

    ``lossless`` (for ``facepro process``): the reader waits for a free slot instead of
    overwriting, and a file that ends finishes the source instead of reopening it.
    """

    def __init__(self, camera: dict[str, Any], ring: FrameRing, *, bus: Any = None, metrics: Any = None,
                 lossless: bool = False, backoff_initial_s: float = BACKOFF_INITIAL_S,
                 reconnect_max_s: float | None = None, gate: Any = None) -> None:
        self.camera = camera
        self.name: str = camera["name"]
        self.kind = source_kind(camera["source"])
        self.ring = ring
        self.bus = bus
        self.metrics = metrics
        self.lossless = lossless
        self.loop_file = bool(camera.get("loop")) and not lossless
        self.rate = "max" if lossless else camera.get("rate", "native")
        self.stall_timeout_s = float(camera.get("stall_timeout_s", 10.0))
        self.backoff_initial_s = backoff_initial_s
        self.reconnect_max_s = float(reconnect_max_s if reconnect_max_s is not None
                                     else camera.get("reconnect_max_s", DEFAULT_RECONNECT_MAX_S))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.online = False
        self.reconnects = 0
        self.opened_once = False
        self.last_frame_at: float | None = None      # wall clock
        self._last_frame_mono: float | None = None
        self.frames_captured = 0
        self.error: str | None = None
        self.finished = False                        # a non-looping file reached its end
        self.fps_native: float | None = None
        self._dropped_reported = 0
        self._media_frames = 0                       # frames read from a file, across loops
        self.capture_rate = RateMeter()
        self.gate = gate  # edge.pipeline.gate.DetectGate: which frames are converted, which detected
        self.error_code: str | None = None
        self.error_fix: str | None = None
        self.decode_errors = 0                       # failed grabs/retrieves while the stream went on
        self.frames_skipped = 0                      # repeated or empty pictures, never processed
        self.raw_packets = False                     # MJPEG read as packets (rawjpeg): decoded when sampled

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> CameraSource:
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.ring.close()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("camera %s: capture thread did not stop within %.0f s", self.name, timeout)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- state -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "name": self.name,
                "online": self.online,
                "reconnects": self.reconnects,
                "last_frame_at": iso_utc(self.last_frame_at),
                "frames_captured": self.frames_captured,
                "frames_dropped": self.ring.dropped,
                "source_kind": self.kind,
                "error": self.error,
                "error_code": self.error_code,
                "error_fix": self.error_fix,
                "decode_errors": self.decode_errors + native_log.decode_errors(self.name),
                "frames_skipped": self.frames_skipped,
                "finished": self.finished,
            }

    def check_stall(self, now_mono: float | None = None) -> bool:
        """Mark the camera offline when no frame arrived for ``stall_timeout_s``. True if stalled.

        Called by the pipeline's housekeeping: it covers a read that blocks inside the driver.
        """
        now_mono = time.monotonic() if now_mono is None else now_mono
        with self._lock:
            stalled = (self.online and self._last_frame_mono is not None
                       and now_mono - self._last_frame_mono > self.stall_timeout_s)
        if stalled:
            self._set_state(False, f"no new frame for {self.stall_timeout_s:g} s (stalled)", "stalled")
        return stalled

    def _set_state(self, online: bool, error: str | None = None, code: str | None = None,
                   fix: str | None = None) -> None:
        with self._lock:
            changed = online != self.online
            self.online = online
            if error is not None or online:
                self.error, self.error_code, self.error_fix = error, code, fix
            payload = {"name": self.name, "online": online, "reconnects": self.reconnects,
                       "last_frame_at": iso_utc(self.last_frame_at), "error": self.error,
                       "error_code": self.error_code}
        if not changed:
            return
        if online:
            log.info("camera %s online (%s source, reconnects %d)", self.name, self.kind, self.reconnects)
        elif self.finished:
            log.info("camera %s: end of file after %d frame(s)", self.name, self.frames_captured)
        elif self._stop.is_set():
            log.info("camera %s stopped", self.name)
        else:
            log.warning("camera %s offline: %s", self.name, error or "stopped")
        if self.bus is not None:
            self.bus.publish("camera", payload)

    # -- capture thread --------------------------------------------------------------------

    def _run(self) -> None:
        backoff = Backoff(self.backoff_initial_s, self.reconnect_max_s)
        while not self._stop.is_set():
            try:
                cap = open_capture(self.camera, stop=self._stop)
            except Exception as exc:  # SourceError, or cv2.error for a malformed source string
                message = str(exc)
                cause = getattr(exc, "cause", None)
                if message != self.error:  # once per distinct failure, not once per retry
                    log.warning("%s (retrying, every %g s at most)", message, self.reconnect_max_s)
                self._set_state(False, message, cause.code if cause else None, cause.fix if cause else None)
                if self._stop.wait(backoff.next()):
                    break
                continue
            if self.opened_once and not self._reopening_file:
                with self._lock:
                    self.reconnects += 1
                if self.metrics is not None:
                    self.metrics.incr("reconnects", 1, self.name)
            self.opened_once = True
            self._reopening_file = False
            try:
                reason, got_frames = self._read_frames(cap)
            except RingClosed:
                reason, got_frames = "stop", True
            finally:
                cap.release()
            if got_frames:
                backoff.reset()
            if reason == "stop" or self._stop.is_set():
                break
            if reason == "eof" and self.kind == "file":
                if self.loop_file and got_frames:
                    self._reopening_file = True
                    continue
                with self._lock:
                    self.finished = True
                self._set_state(False, "end of file")
                break
            if reason == "stalled":
                self._set_state(False, f"no new frame for {self.stall_timeout_s:g} s (stalled)", "stalled")
            else:
                self._set_state(False, "stream ended" if reason == "eof" else f"read failed ({reason})", "ended")
            if self._stop.wait(backoff.next()):
                break
        if self.lossless:
            self.ring.close()  # tells the consumer that no more frames will come
        if self.online:
            self._set_state(False, "stopped")

    _reopening_file = False
    _pending_errors = 0

    def _read_frames(self, cap: cv2.VideoCapture) -> tuple[str, bool]:
        """Decode into ring slots until the stream ends/fails or stop is requested."""
        ring = self.ring
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps_native = float(fps) if fps and 0 < fps < 1000 else None
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        if width > 0 and height > 0:
            ring.ensure_shape((height, width, 3))
        interval = 1.0 / self.fps_native if self.kind == "file" and self.rate == "native" and self.fps_native else 0.0
        pace = interval > 0
        next_due = time.monotonic()
        got_frames = False
        live = self.kind != "file"
        progress = FrameProgress()
        self._pending_errors = 0
        raw = self._raw_jpeg(cap, width, height)
        self.raw_packets = raw is not None
        while not self._stop.is_set():
            if pace:
                delay = next_due - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return "stop", got_frames

                next_due = max(next_due + interval, time.monotonic() - interval)
            slot = None
            while slot is None:
                slot = ring.acquire_write(timeout=0.5)
                if self._stop.is_set():
                    if slot is not None:
                        ring.abandon(slot)
                    return "stop", got_frames
            # grab() reads and decodes the next packet(s), retrieve() converts the picture into
            # the slot's buffer in place: "decode" is both (on a live camera grab() also holds
            # the wait for the packet, which OpenCV does not let us tell apart).
            t0 = time.perf_counter()
            ok = cap.grab()
            # A grab that lasted FFmpeg's whole read timeout ended by its interrupt: what it
            # returns is the decoder's flushed leftover, not the camera moving on.
            timed_out = time.perf_counter() - t0 >= TIMEOUT_FRACTION * self.stall_timeout_s
            skip = ok and self.gate is not None and not self.gate.sample_due(time.monotonic())
            if skip and (not live or (not timed_out and progress.pts_advanced(cap.get(cv2.CAP_PROP_POS_MSEC)))):
                # decoded by grab(), never converted: the gate skips it, and the stream's own
                # clock says it moved on (without usable timestamps the picture has to tell)
                ring.abandon(slot)
                self._flush_decode_errors()
                got_frames = self._note_frame(time.time(), time.monotonic(), time.perf_counter() - t0)
                continue
            if raw is not None and ok:
                result = self._raw_sample(cap, raw, slot, progress, skip, timed_out, t0)
                if result == "stalled":
                    return result, got_frames
                got_frames = got_frames or result == "frame"
                continue
            out = cap.retrieve(slot.array)[1] if ok else None
            decode_s = time.perf_counter() - t0
            if not ok or out is None or out.size == 0:
                ring.abandon(slot)
                if not live:
                    return "eof", got_frames
                verdict = self._failed_read(progress, ok)
                if verdict:
                    return verdict, got_frames
                continue
            if live and (timed_out or not progress.accept(out, cap.get(cv2.CAP_PROP_POS_MSEC))):
                ring.abandon(slot)  # the last picture again (FFmpeg's read timeout): not a frame
                with self._lock:
                    self.frames_skipped += 1
                if progress.stalled_for() > self.stall_timeout_s:
                    return "stalled", got_frames
                continue
            self._flush_decode_errors()
            if skip:  # converted only to see that the stream moved on: not for the detector
                ring.abandon(slot)
                got_frames = self._note_frame(time.time(), time.monotonic(), decode_s)
                continue
            if out is not slot.array:
                # The stream's frame shape differs from the buffers: reallocate once, copy this frame.
                ring.abandon(slot)
                ring.ensure_shape(out.shape)
                slot = ring.acquire_write(timeout=None)
                if slot is None:
                    return "stop", got_frames
                np.copyto(slot.array, out)
            now = time.time()
            mono = time.monotonic()
            media_time = self._media_frames / self.fps_native if self.kind == "file" and self.fps_native else mono
            if self.gate is not None and not self.gate.admit(slot, mono):
                ring.abandon(slot)  # converted for the motion check, not for the detector
            else:
                ring.commit(slot, now, media_time, decode_s)
            got_frames = self._note_frame(now, mono, decode_s)
        return "stop", got_frames

    def _raw_jpeg(self, cap: Any, width: int, height: int) -> tuple[tuple[int, int], int] | None:
        """(size, grey flag) when this live camera's MJPEG is read as packets (a gate on motion)."""
        gate = self.gate
        if self.kind != "url" or gate is None or gate.motion is None or width <= 0 or height <= 0:
            return None
        if not rawjpeg.use_raw_packets(cap):
            return None
        return (width, height), rawjpeg.reduction(width, gate.motion.config.width)

    def _raw_sample(self, cap: Any, raw: tuple[tuple[int, int], int], slot: Any, progress: FrameProgress,
                    skip: bool, timed_out: bool, t0: float) -> str:
        """One MJPEG picture read as a packet: progress by its bytes, motion by a reduced grey
        decode, the full decode into ``slot`` only for a picture the detector sees.
        Returns "frame" (the camera moved on), "repeat" or "stalled"."""
        ring, (size, flag) = self.ring, raw
        packet = cap.retrieve()[1]
        if (timed_out or packet is None or packet.size == 0
                or not progress.accept(packet, cap.get(cv2.CAP_PROP_POS_MSEC))):
            ring.abandon(slot)
            with self._lock:
                self.frames_skipped += 1
            return "stalled" if progress.stalled_for() > self.stall_timeout_s else "repeat"
        mono = time.monotonic()
        outcome = "skipped" if skip else rawjpeg.take(packet, size, flag, self.gate, slot, mono)
        committed = outcome == "detect"
        if outcome == "damaged":
            self._pending_errors += 1  # not a JPEG of the stream's size: never decoded
        self._flush_decode_errors()
        decode_s = time.perf_counter() - t0
        now = time.time()
        if committed:
            ring.commit(slot, now, mono, decode_s)
        else:
            ring.abandon(slot)
        self._note_frame(now, mono, decode_s)
        return "frame"

    def _note_frame(self, now: float, mono: float, decode_s: float) -> bool:
        """A frame came from the camera (converted and committed or not). Returns True."""
        self._media_frames += 1
        with self._lock:
            self.frames_captured += 1
            self.last_frame_at = now
            self._last_frame_mono = mono
            was_online = self.online
        self.capture_rate.tick(mono)
        if not was_online:
            self._set_state(True)
        if self.metrics is not None:
            self.metrics.incr("frames_captured", 1, self.name)
            self.metrics.observe("decode", decode_s, self.name)
            dropped = self.ring.dropped
            if dropped != self._dropped_reported:
                self.metrics.incr("frames_dropped", dropped - self._dropped_reported, self.name)
                self._dropped_reported = dropped
        return True

    def _flush_decode_errors(self) -> None:
        """Decode errors are counted once a picture follows them (the failures before an end are not)."""
        if not self._pending_errors:
            return
        with self._lock:
            self.decode_errors += self._pending_errors
        if self.metrics is not None:
            self.metrics.incr("decode_errors", self._pending_errors, self.name)
        self._pending_errors = 0

    def _failed_read(self, progress: FrameProgress, grabbed: bool) -> str | None:
        """A live stream's grab/retrieve failed: a decode error while pictures still come,
        the end of the stream once none came for READ_FAIL_GRACE_S, a stall after stall_timeout_s."""
        self._pending_errors += 1  # counted once a picture follows: the failures before an end are not
        stalled_for = progress.stalled_for()
        if stalled_for > self.stall_timeout_s:
            return "stalled"
        if not grabbed and stalled_for > min(READ_FAIL_GRACE_S, self.stall_timeout_s):
            return "eof"
        self._stop.wait(FAIL_PAUSE_S)
        return None
