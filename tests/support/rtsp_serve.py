"""A looping RTSP server for one H.264 (or H.265) MP4 clip (GStreamer's RTSP server).

Run with Debian's /usr/bin/python3 (python3-gi, gir1.2-gst-rtsp-server-1.0), not the venv:
    /usr/bin/python3 tests/support/rtsp_serve.py CLIP PORT [h264|h265]
Prints ``READY <port>`` once listening, then ``SESSION <n>`` for every RTSP session the
server creates (one per client that SETUPs), flushed, so a test can count them.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

# The clip is an MP4 long enough for any one test; a shared media restarts from the start
# once its last client has gone. config-interval=0: SPS/PPS only in the SDP, as many
# cameras do, so the hub must put them in front of keyframes itself.
PIPELINE = (
    "( filesrc location={clip} ! qtdemux ! h264parse "
    "! rtph264pay name=pay0 pt=96 config-interval=0 )"
)
# H.265: VPS/SPS/PPS in band before every keyframe (config-interval=-1), as H.265 cameras
# commonly send them; the hub's pull keeps only H.264 parameter sets from the SDP.
PIPELINE_H265 = (
    "( filesrc location={clip} ! qtdemux ! h265parse "
    "! rtph265pay name=pay0 pt=96 config-interval=-1 )"
)


def main() -> None:
    clip, port = sys.argv[1], sys.argv[2]
    pipeline = PIPELINE_H265 if sys.argv[3:] == ["h265"] else PIPELINE
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(pipeline.format(clip=clip))
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    sessions = [0]

    def on_client(_server, client):  # type: ignore[no-untyped-def]
        def on_setup(_client, _ctx):  # type: ignore[no-untyped-def]
            sessions[0] += 1
            print(f"SESSION {sessions[0]}", flush=True)

        client.connect("new-session", on_setup)

    server.connect("client-connected", on_client)
    if server.attach(None) == 0:
        print("FAILED attach", flush=True)
        sys.exit(1)
    print(f"READY {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
