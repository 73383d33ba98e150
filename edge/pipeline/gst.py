"""GStreamer cameras through PyGObject: a decode path that does not depend on how OpenCV was built.

JetPack's OpenCV has GStreamer and PyPI's has not; Debian's needs numpy < 2. This source talks to
GStreamer itself (``gi.repository.Gst``), so the same service runs hardware decoding on a
Jetson, VA-API on an Intel NUC and software decoding elsewhere, whatever OpenCV is installed.

:class:`GstCapture` offers the part of ``cv2.VideoCapture`` the capture thread uses (``grab``,
``retrieve`` into a ring slot, ``get`` of fps, size and the stream's clock, ``release``), so
stall detection, the detect gate and reconnects work the same for both decode paths. A grabbed
sample is kept as GStreamer's buffer, in the decoder's own YUV, and only mapped and converted,
once, into the ring slot's BGR array when the frame is retrieved: a frame the detect gate skips
is never converted or copied at all.

The pipeline for a URL camera is chosen per platform (:func:`choose_platform`): ``nvidia``
(``nvv4l2decoder`` + ``nvvidconv``, JetPack), ``vaapi`` (the ``va`` or ``vaapi`` decoders with a
``/dev/dri`` render node, Intel), else ``software`` (libav/jpegdec). For RTSP the codec (H.264 or
H.265) is read from the stream itself when its pad appears. A camera can force a platform with
``cameras[].decoder`` or give its whole pipeline as ``source`` (a string with ``!`` that ends in
``appsink``). Credentials go to the source element as properties, never into the pipeline text.
"""
from __future__ import annotations

import ctypes
import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np

from edge import secrets
from edge.pipeline import yuv
from edge.pipeline.gst_platform import (
    CUSTOM_SINK_FORMATS,
    ENCODINGS,
    TAIL,
    GstSourceError,
    choose_platform,
    decode_chain,
    mjpeg_chain,
    split_credentials,
)

log = logging.getLogger(__name__)

RTSP_LATENCY_MS = 200
RELEASE_WAIT_S = 2.0
PULL_SLICE_S = 0.2           # how often a blocked grab looks at the bus and at a stop request
MAX_FRAME_BYTES = 8192 * 8192 * 3


_gst: Any = None
_gst_error: str | None = None
_init_lock = threading.Lock()


def _keep_the_cxx_unwinder() -> None:
    """libgstreamer links libunwind, and GModule loads it into the process's global symbols: its
    ``_Unwind_Resume`` then serves C++ code bound later (ONNX Runtime, OpenCV), whose exceptions
    (a corrupt model, a bad input) abort the whole service instead of being raised. The compiler's
    own unwinder, put into the global scope first, stays the one that is found."""
    try:
        ctypes.CDLL("libgcc_s.so.1", mode=ctypes.RTLD_GLOBAL)
    except OSError:
        log.debug("libgcc_s.so.1 not found; C++ exceptions rely on the default symbol order")


def gst() -> Any:
    """``gi.repository.Gst``, initialised once; raises GstSourceError saying what is missing."""
    global _gst, _gst_error
    with _init_lock:
        if _gst is None and _gst_error is None:
            _keep_the_cxx_unwinder()
            try:
                import gi
                gi.require_version("Gst", "1.0")
                from gi.repository import Gst
                Gst.init(None)
                _gst = Gst
            except (ImportError, ValueError) as exc:
                _gst_error = (f"GStreamer through PyGObject is not available ({exc}): install python3-gi and "
                              "gir1.2-gstreamer-1.0 (deploy/install.sh links them into the service's venv)")
    if _gst is None:
        raise GstSourceError(_gst_error or "GStreamer is not available")
    return _gst


def unavailable_reason() -> str:
    try:
        gst()
    except GstSourceError as exc:
        return str(exc)
    return ""


def available() -> bool:
    return not unavailable_reason()


def has_element(name: str) -> bool:
    return gst().ElementFactory.find(name) is not None


def platform_for(setting: str = "auto") -> tuple[str, str]:
    """The decode platform for a camera's ``decoder`` setting on this device, and why."""
    return choose_platform(setting, has_element)


class GstCapture:
    """A GStreamer pipeline ending in an appsink, read like ``cv2.VideoCapture``.

    ``url`` (with credentials, from :func:`edge.pipeline.camera_url.open_url`) builds a pipeline
    for ``platform``; ``launch`` is a whole pipeline given by the user. ``open_timeout_s`` bounds
    the wait for the first frame, ``read_timeout_s`` each :meth:`grab`; ``stop`` (an Event) ends a
    blocked grab early.
    """

    def __init__(self, *, url: str | None = None, launch: str | None = None, platform: str = "software",
                 transport: str = "tcp", open_timeout_s: float = 10.0, read_timeout_s: float = 10.0,
                 stop: threading.Event | None = None) -> None:
        Gst = gst()
        self._Gst = Gst
        self.platform = platform
        self.description = ""
        self.error: str | None = None
        self._read_timeout_s = read_timeout_s
        self._stop = stop
        self._sample: Any = None
        self._pending: Any = None
        self._pts_ms = 0.0
        self._fps = 0.0
        self._width = self._height = 0
        self._format = "BGR"
        self._full_range = False
        self._opened = False
        self._lock = threading.Lock()
        if launch is not None:
            self.platform = "custom pipeline"
            secrets.register_url(launch)  # a password inside the user's pipeline is a secret too
            self.description = secrets.mask_url(launch)
            self.pipeline = self._parse(launch)
            self.sink = self.pipeline.get_by_name("facepro_sink") or self._find_appsink()
        elif url is not None:
            self.pipeline = self._url_pipeline(url, platform, transport, read_timeout_s)
            self.sink = self.pipeline.get_by_name("facepro_sink")
        else:
            raise GstSourceError("GstCapture needs a url or a launch line")
        if self.sink is None:
            self.pipeline.set_state(Gst.State.NULL)
            raise GstSourceError("the pipeline has no appsink: end it with '! appsink'")
        if self.sink.get_property("caps") is None:  # formats retrieve() turns into the ring's BGR
            self.sink.set_property("caps", Gst.Caps.from_string(CUSTOM_SINK_FORMATS))
        self.sink.set_property("max-buffers", 1)
        self.sink.set_property("drop", True)
        self.sink.set_property("sync", False)
        self.bus = self.pipeline.get_bus()
        self._start(open_timeout_s)

    # -- building ------------------------------------------------------------------------------

    def _parse(self, text: str) -> Any:
        try:
            return self._Gst.parse_launch(text)
        except Exception as exc:  # GLib.Error: no element "x", syntax error, link failure
            raise GstSourceError(f"the GStreamer pipeline does not build: {getattr(exc, 'message', exc)}") from None

    def _bin(self, text: str) -> Any:
        try:
            return self._Gst.parse_bin_from_description(text, True)
        except Exception as exc:
            raise GstSourceError(f"cannot build {text!r}: {getattr(exc, 'message', exc)}") from None

    def _find_appsink(self) -> Any:
        it = self.pipeline.iterate_recurse()
        while True:
            result, element = it.next()
            if result != self._Gst.IteratorResult.OK:
                return None
            factory = element.get_factory()
            if factory is not None and factory.get_name() == "appsink":
                return element

    def _url_pipeline(self, url: str, platform: str, transport: str, read_timeout_s: float) -> Any:
        bare, user, password = split_credentials(url)
        scheme = urlsplit(bare).scheme.lower()
        Gst = self._Gst
        if scheme in ("rtsp", "rtsps"):
            pipeline = Gst.Pipeline.new("facepro")
            src = Gst.ElementFactory.make("rtspsrc", "facepro_src")
            if src is None:
                raise GstSourceError("the rtspsrc element is missing: install gstreamer1.0-plugins-good")
            src.set_property("latency", RTSP_LATENCY_MS)
            src.set_property("protocols", "tcp" if transport == "tcp" else "udp")
            # a hung camera fails the connection instead of holding it (default 20 s)
            src.set_property("tcp-timeout", int(max(read_timeout_s, 1.0) * 1e6))
            self._tail = self._bin(TAIL)
            pipeline.add(src)
            pipeline.add(self._tail)
            src.connect("pad-added", self._on_rtsp_pad)
            self.description = f"rtspsrc ! <depay, parse and decoder for the stream's codec on {platform}> ! {TAIL}"
        elif scheme in ("http", "https"):
            chain = mjpeg_chain(platform, has_element)
            pipeline = self._parse(f"souphttpsrc name=facepro_src is-live=true do-timestamp=true ! {chain}")
            src = pipeline.get_by_name("facepro_src")
            self.description = f"souphttpsrc ! {chain}"
        else:
            raise GstSourceError(f"the GStreamer source reads rtsp://, rtsps://, http:// and https:// URLs, not {scheme}://")
        src.set_property("location", bare)
        if user:
            src.set_property("user-id", user)
        if password:
            src.set_property("user-pw", password)
        return pipeline

    def _on_rtsp_pad(self, _src: Any, pad: Any) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        structure = caps.get_structure(0)
        if structure.get_string("media") != "video":
            return
        encoding = (structure.get_string("encoding-name") or "").upper()
        codec = ENCODINGS.get(encoding)
        try:
            if codec is None:
                raise GstSourceError(f"the stream is {encoding or 'of an unknown codec'}; "
                                     "H.264, H.265 and MJPEG are supported")
            chain = decode_chain(self.platform, codec, has_element)
            decoder = self._bin(chain)
        except Exception as exc:
            self.error = str(getattr(exc, "message", exc))
            return
        with self._lock:
            self.description = f"rtspsrc ! {chain} ! {TAIL}"
        self.pipeline.add(decoder)
        decoder.link(self._tail)
        decoder.sync_state_with_parent()
        result = pad.link(decoder.get_static_pad("sink"))
        if result != self._Gst.PadLinkReturn.OK:
            self.error = f"cannot link the {encoding} stream to {chain}: {result.value_nick}"

    # -- running -------------------------------------------------------------------------------

    def _start(self, timeout_s: float) -> None:
        Gst = self._Gst
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            reason = self._bus_error() or "the pipeline refused to start"
            self.release()
            raise GstSourceError(reason)
        sample = self._pull(timeout_s)
        if sample is None:
            reason = self.error or self._bus_error() or f"no frame within {timeout_s:g} s"
            self.release()
            raise GstSourceError(reason)
        self._pending = sample
        self._take_caps(sample)
        self._opened = True

    def _bus_error(self) -> str | None:
        Gst = self._Gst
        while True:
            message = self.bus.pop_filtered(Gst.MessageType.ERROR | Gst.MessageType.EOS | Gst.MessageType.WARNING)
            if message is None:
                return self.error
            if message.type == Gst.MessageType.EOS:
                self.error = "end of stream"
                return self.error
            err, debug = (message.parse_error() if message.type == Gst.MessageType.ERROR
                          else message.parse_warning())
            text = f"{message.src.get_name()}: {err.message}"
            if message.type == Gst.MessageType.WARNING:
                log.debug("gstreamer warning %s (%s)", text, debug)
                continue
            self.error = text
            log.debug("gstreamer error %s (%s)", text, debug)
            return self.error

    def _pull(self, timeout_s: float) -> Any:
        """The next sample, or None when the stream ended, failed, stopped or ``timeout_s`` passed."""
        deadline = time.monotonic() + timeout_s
        slice_ns = int(PULL_SLICE_S * 1e9)
        while True:
            sample = self.sink.emit("try-pull-sample", min(slice_ns, max(0, int((deadline - time.monotonic()) * 1e9))))
            if sample is not None:
                return sample
            if self._bus_error() is not None or time.monotonic() >= deadline:
                return None
            if self._stop is not None and self._stop.is_set():
                return None
            if self.sink.get_property("eos"):
                self.error = self.error or "end of stream"
                return None

    def _take_caps(self, sample: Any) -> None:
        structure = sample.get_caps().get_structure(0)
        self._format = structure.get_string("format") or ""
        self._full_range = yuv.full_range(structure.get_string("colorimetry"))
        self._width = structure.get_int("width")[1]
        self._height = structure.get_int("height")[1]
        ok, num, den = structure.get_fraction("framerate")
        self._fps = num / den if ok and den else 0.0

    @property
    def pixel_format(self) -> str:
        """The format the appsink receives (I420 or NV12 from a decoder, BGR from a user's pipeline)."""
        return self._format

    @property
    def decode_path(self) -> str:
        """What decodes this camera, as the log and ``facepro doctor`` name it."""
        if self.platform == "custom pipeline":
            return "GStreamer, custom pipeline"
        return f"GStreamer, {self.platform} decoding"

    def isOpened(self) -> bool:  # cv2.VideoCapture's name
        return self._opened

    def grab(self) -> bool:
        if not self._opened:
            return False
        sample, self._pending = self._pending, None
        if sample is None:
            sample = self._pull(self._read_timeout_s)
        if sample is None:
            self._sample = None
            return False
        self._sample = sample
        pts = sample.get_buffer().pts
        self._pts_ms = pts / 1e6 if pts != self._Gst.CLOCK_TIME_NONE else 0.0
        return True

    def retrieve(self, image: np.ndarray | None = None) -> tuple[bool, np.ndarray | None]:
        """The grabbed frame as BGR, written once from GStreamer's buffer into ``image`` when its
        shape fits (a ring slot), else into a new array: converted from the decoder's YUV
        (:mod:`edge.pipeline.yuv`), or copied where the pipeline gave BGR."""
        sample, self._sample = self._sample, None
        if sample is None:
            return False, None
        self._take_caps(sample)
        height, width, fmt = self._height, self._width, self._format
        buffer = sample.get_buffer()
        size = buffer.get_size()
        if height <= 0 or width <= 0 or size > MAX_FRAME_BYTES or fmt not in (*yuv.FORMATS, "BGR"):
            return False, None
        if size < (yuv.frame_size(fmt, width, height) if fmt in yuv.FORMATS else height * width * 3):
            return False, None
        ok, info = buffer.map(self._Gst.MapFlags.READ)
        if not ok:
            return False, None
        try:
            data = np.frombuffer(info.data, dtype=np.uint8, count=size)
            if fmt != "BGR":
                return True, yuv.to_bgr(data, fmt, width, height, image, full=self._full_range)
            stride = size // height  # rows are padded to 4 bytes: 641 px of BGR take 1924 bytes
            frame = data[: stride * height].reshape(height, stride)[:, : width * 3].reshape(height, width, 3)
            if image is not None and image.shape == frame.shape and image.dtype == np.uint8:
                np.copyto(image, frame)
                return True, image
            return True, frame.copy()
        finally:
            buffer.unmap(info)

    def read(self, image: np.ndarray | None = None) -> tuple[bool, np.ndarray | None]:
        if not self.grab():
            return False, None
        return self.retrieve(image)

    def get(self, prop: int) -> float:
        if prop == cv2.CAP_PROP_FPS:
            return self._fps
        if prop == cv2.CAP_PROP_FRAME_WIDTH:
            return float(self._width)
        if prop == cv2.CAP_PROP_FRAME_HEIGHT:
            return float(self._height)
        if prop == cv2.CAP_PROP_POS_MSEC:
            return self._pts_ms
        return 0.0

    def set(self, prop: int, value: float) -> bool:
        return False

    def release(self) -> None:
        """Stop the pipeline. rtspsrc's teardown can hang on a connection the camera half-dropped,
        so it runs on its own thread and a camera thread waits at most RELEASE_WAIT_S for it."""
        self._opened = False
        self._sample = self._pending = None
        pipeline, self.pipeline = getattr(self, "pipeline", None), None
        if pipeline is None:
            return
        done = threading.Event()

        def teardown() -> None:
            pipeline.set_state(self._Gst.State.NULL)
            done.set()

        threading.Thread(target=teardown, name="gst-release", daemon=True).start()
        if not done.wait(RELEASE_WAIT_S):
            log.warning("GStreamer pipeline did not stop within %g s; left to stop in the background",
                        RELEASE_WAIT_S)
