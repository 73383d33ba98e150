"""Which GStreamer decoder a camera gets on this device: ``nvidia`` (JetPack's ``nvv4l2decoder`` +
``nvvidconv``), ``vaapi`` (the ``va`` or ``vaapi`` decoders, with a ``/dev/dri`` render node) or
``software`` (libav, jpegdec); the chain of elements for a codec on that platform; and a URL's
credentials taken out, for the source element's properties.

Pure functions over "is this element present?", so the choice is tested with the element sets
of a Jetson or a NUC on any machine.
"""
from __future__ import annotations

import glob
from collections.abc import Callable
from urllib.parse import unquote, urlsplit, urlunsplit


class GstSourceError(Exception):
    """The pipeline could not be built or started; the text says why (no credentials in it)."""


PLATFORMS = ("nvidia", "vaapi", "software")
DECODER_CHOICES = ("auto", *PLATFORMS)

# What decodes each codec per platform, first present element wins. The nvidia chain copies the
# decoder's NV12 into system memory. Every chain ends in the decoder's own YUV: the frame ring
# holds BGR, but a frame is converted to it only when the capture thread retrieves it
# (edge.pipeline.yuv), not for every decoded frame as a videoconvert to BGR here would.
DECODERS: dict[str, dict[str, list[str]]] = {
    "nvidia": {"h264": ["nvv4l2decoder ! nvvidconv ! video/x-raw,format=NV12"],
               "h265": ["nvv4l2decoder ! nvvidconv ! video/x-raw,format=NV12"],
               "jpeg": ["nvv4l2decoder mjpeg=1 ! nvvidconv ! video/x-raw,format=NV12", "nvjpegdec ! nvvidconv ! video/x-raw,format=NV12"]},
    "vaapi": {"h264": ["vah264dec", "vaapih264dec"],
              "h265": ["vah265dec", "vaapih265dec"],
              "jpeg": ["vajpegdec", "vaapijpegdec"]},
    "software": {"h264": ["avdec_h264"], "h265": ["avdec_h265"], "jpeg": ["jpegdec"]},
}
PARSERS = {"h264": "rtph264depay ! h264parse", "h265": "rtph265depay ! h265parse", "jpeg": "rtpjpegdepay"}
ENCODINGS = {"H264": "h264", "H265": "h265", "JPEG": "jpeg"}
# videoconvert passes I420/NV12 through untouched; it converts only other layouts (a 4:2:2 JPEG).
SINK_FORMATS = "video/x-raw,format=(string){I420,NV12}"
TAIL = f"videoconvert ! {SINK_FORMATS} ! appsink name=facepro_sink max-buffers=1 drop=true sync=false"
# An appsink without caps in the user's own pipeline: BGR as well, for a pipeline that converts.
CUSTOM_SINK_FORMATS = "video/x-raw,format=(string){I420,NV12,BGR}"


def _render_node() -> bool:
    return bool(glob.glob("/dev/dri/renderD*"))


def _first_present(chains: list[str], present: Callable[[str], bool]) -> str | None:
    for chain in chains:
        if all(present(part.split()[0]) for part in chain.split(" ! ") if not part.startswith("video/")):
            return chain
    return None


def choose_platform(setting: str, present: Callable[[str], bool],
                    render_node: Callable[[], bool] = _render_node) -> tuple[str, str]:
    """The decode platform and why: ``nvidia`` where JetPack's decoder is present, ``vaapi`` where a
    VA decoder and a render node are, else ``software``; ``setting`` other than auto forces one."""
    if setting != "auto":
        return setting, f"cameras[].decoder is {setting!r}"
    if _first_present(DECODERS["nvidia"]["h264"], present):
        return "nvidia", "nvv4l2decoder is present (JetPack)"
    if _first_present(DECODERS["vaapi"]["h264"], present):
        if render_node():
            return "vaapi", "a VA-API H.264 decoder and a /dev/dri render node are present"
        return "software", "VA-API decoders are installed but there is no /dev/dri render node"
    return "software", "no hardware decoder element found"


def decode_chain(platform: str, codec: str, present: Callable[[str], bool]) -> str:
    """``parse ! decoder ! ...`` for an RTP ``codec`` on ``platform`` (depayloader included)."""
    chain = _first_present(DECODERS[platform][codec], present)
    if chain is None:
        raise GstSourceError(f"no {platform} decoder for {codec.upper()} is installed "
                             f"(looked for {', '.join(c.split()[0] for c in DECODERS[platform][codec])})")
    return f"{PARSERS[codec]} ! {chain}"


def mjpeg_chain(platform: str, present: Callable[[str], bool]) -> str:
    chain = _first_present(DECODERS[platform]["jpeg"], present)
    if chain is None:
        raise GstSourceError(f"no {platform} JPEG decoder is installed")
    return f"multipartdemux ! image/jpeg ! {chain} ! {TAIL}"


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without its userinfo, and the user and password that were in it (decoded)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare, unquote(user) or None, unquote(password) if password else None


