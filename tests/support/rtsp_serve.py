"""An RTSP camera on loopback: Debian's GStreamer RTSP server, run by the system /usr/bin/python3
(PyGObject and GstRtspServer come from Debian packages, not the test venv).

    /usr/bin/python3 rtsp_serve.py PORT MEDIA CODEC [USER PASSWORD]

serves MEDIA (an MP4 with H.264 or H.265 video, CODEC h264/h265) at rtsp://127.0.0.1:PORT/stream
to any number of clients, each from the start of the file, looping, in real time. With USER and
PASSWORD the server asks for Basic credentials and answers 401 without them, like a camera.
Prints "ready" once it listens. Stopped by SIGTERM/SIGKILL from the test that started it.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    port, media, codec = sys.argv[1], sys.argv[2], sys.argv[3]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    parse, pay = ("h265parse", "rtph265pay") if codec == "h265" else ("h264parse", "rtph264pay")
    factory.set_launch(f"( filesrc location={media} ! qtdemux ! {parse} config-interval=-1 ! "
                       f"{pay} name=pay0 pt=96 config-interval=1 )")
    factory.set_shared(False)
    if len(sys.argv) >= 6:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "camera-user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(sys.argv[4], sys.argv[5]), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("camera-user", "media.factory.access", True)
        permissions.add_permission_for_role("camera-user", "media.factory.construct", True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory("/stream", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{port}", file=sys.stderr)
        return 1
    print("ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
