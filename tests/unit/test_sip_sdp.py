"""protocols/sip/sdp: GB28181 INVITE bodies (y=, f=, u=, TCP setup) parse and re-encode."""

from __future__ import annotations

import pytest

from protocols.sip.message import parse_message
from protocols.sip.sdp import MediaDescription, SdpError, SessionDescription, parse_sdp

PLAY = (
    "v=0\r\n"
    "o=34020000002000000001 0 0 IN IP4 192.168.1.10\r\n"
    "s=Play\r\n"
    "c=IN IP4 192.168.1.10\r\n"
    "t=0 0\r\n"
    "m=video 30000 RTP/AVP 96 98 97\r\n"
    "a=recvonly\r\n"
    "a=rtpmap:96 PS/90000\r\n"
    "a=rtpmap:98 H264/90000\r\n"
    "a=rtpmap:97 MPEG4/90000\r\n"
    "y=0100000001\r\n"
    "f=v/2/4///a///\r\n"
)

PLAYBACK_TCP = (
    "v=0\n"
    "o=34020000001320000001 0 0 IN IP4 192.168.1.64\n"
    "s=Playback\n"
    "u=34020000001320000001:0\n"
    "c=IN IP4 192.168.1.64\n"
    "t=1700000000 1700003600\n"
    "m=video 15060 TCP/RTP/AVP 96\n"
    "a=sendonly\n"
    "a=rtpmap:96 PS/90000\n"
    "a=setup:passive\n"
    "a=connection:new\n"
    "y=1100000002\n"
)


def test_gb28181_play_offer_parses() -> None:
    sdp = parse_sdp(PLAY.encode())
    assert sdp.origin_user == "34020000002000000001"
    assert sdp.origin_address == "192.168.1.10"
    assert sdp.session_name == "Play"
    assert sdp.connection == "192.168.1.10"
    assert sdp.ssrc == "0100000001"
    assert sdp.format_line == "v/2/4///a///"
    assert sdp.time == "0 0"
    video = sdp.media[0]
    assert (video.kind, video.port, video.proto) == ("video", 30000, "RTP/AVP")
    assert video.formats == ["96", "98", "97"]
    assert video.rtpmap() == {96: ("PS", 90000), 98: ("H264", 90000), 97: ("MPEG4", 90000)}
    assert video.direction == "recvonly"
    assert video.setup is None
    assert not video.tcp
    assert video.attribute("rtpmap") == "96 PS/90000"
    assert video.attribute("recvonly") == ""
    assert video.attribute("missing") is None


def test_playback_over_tcp_with_lf_line_ends() -> None:
    sdp = parse_sdp(PLAYBACK_TCP)
    assert sdp.session_name == "Playback"
    assert sdp.uri == "34020000001320000001:0"
    assert sdp.time == "1700000000 1700003600"
    assert sdp.format_line is None
    video = sdp.media[0]
    assert video.tcp
    assert video.setup == "passive"
    assert video.direction == "sendonly"


def test_encode_round_trips_and_puts_y_f_after_media() -> None:
    for text in (PLAY, PLAYBACK_TCP):
        sdp = parse_sdp(text)
        data = sdp.encode()
        assert b"\n" not in data.replace(b"\r\n", b"")
        assert parse_sdp(data) == sdp
        assert str(sdp) == data.decode()
    text = parse_sdp(PLAY).encode().decode()
    assert text.index("m=video") < text.index("y=0100000001") < text.index("f=v/2/4///a///")
    assert text == PLAY


def test_built_answer_encodes_like_devices_expect() -> None:
    answer = SessionDescription(
        origin_user="34020000001320000001",
        session_id="0",
        session_version="0",
        origin_address="192.168.1.64",
        session_name="Play",
        connection="192.168.1.64",
        media=[
            MediaDescription(
                "video", 15060, "RTP/AVP", ["96"], [("sendonly", None), ("rtpmap", "96 PS/90000")]
            )
        ],
        ssrc="0100000001",
    )
    assert answer.encode() == (
        b"v=0\r\no=34020000001320000001 0 0 IN IP4 192.168.1.64\r\ns=Play\r\n"
        b"c=IN IP4 192.168.1.64\r\nt=0 0\r\nm=video 15060 RTP/AVP 96\r\na=sendonly\r\n"
        b"a=rtpmap:96 PS/90000\r\ny=0100000001\r\n"
    )
    assert parse_sdp(answer.encode()) == answer


def test_media_level_connection_and_defaults() -> None:
    text = (
        "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=Talk\r\nm=audio 8000 RTP/AVP 8\r\nc=IN IP4 10.0.0.5/127\r\n"
        "b=AS:64\r\nx=unknown line\r\na=rtpmap:8 PCMA/8000/1\r\na=rtpmap:bad\r\n"
        "a=rtpmap:\u00b2 X/9000\r\na=rtpmap:9 G722/\u00b2\r\n"
    )
    sdp = parse_sdp(text)
    assert sdp.connection is None
    assert sdp.media[0].connection == "10.0.0.5"
    assert sdp.media[0].direction == "sendrecv"
    assert sdp.media[0].rtpmap() == {8: ("PCMA", 8000)}
    assert "IN IP6 ::1" in str(sdp)
    assert parse_sdp(str(sdp)) == sdp


def test_gb2312_session_name_is_decoded() -> None:
    sdp = parse_sdp(PLAY.replace("s=Play", "s=\u64ad\u653e").encode("gb2312"))
    assert sdp.session_name == "\u64ad\u653e"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "o=- 0 0 IN IP4 1.2.3.4\r\nv=0\r\n",
        "v=1\r\no=- 0 0 IN IP4 h\r\ns=x\r\n",
        "v=0\r\ns=x\r\n",
        "v=0\r\no=- 0 0 IN IP4 h\r\n",
        "v=0\r\no=- 0 IN IP4 h\r\ns=x\r\n",
        "v=0\r\no=- 0 0 IN IP4 h\r\ns=x\r\nm=video 70000 RTP/AVP 96\r\n",
        "v=0\r\no=- 0 0 IN IP4 h\r\ns=x\r\nm=video port RTP/AVP 96\r\n",
        "v=0\r\no=- 0 0 IN IP4 h\r\ns=x\r\nm=video 9\r\n",
        "v=0\r\no=- 0 0 IN IP4 h\r\ns=x\r\nc=IN IP4\r\n",
        "v=0\r\no=- 0 0 IN IP4 h\r\ns=x\r\ngarbage\r\n",
        "v=0\r\no=- 0 0 IN IP4 h\r\ns=x\r\nA=upper\r\n",
        "v=0\r\no=- 0 0 IN IP4 h\r\ns=x\r\na=\r\n",
        "v=0\r\no=- 0 0 IN IP4 h\r\ns=x\x01\r\n",
    ],
)
def test_garbage_is_refused_with_sdp_error(text: str) -> None:
    with pytest.raises(SdpError):
        parse_sdp(text)


def test_size_limit_and_undecodable_bytes() -> None:
    with pytest.raises(SdpError, match="larger"):
        parse_sdp(PLAY.encode() + b"a=x\r\n" * 3000)
    with pytest.raises(SdpError, match="neither"):
        parse_sdp(b"v=0\r\ns=\x80\xff\xfe\r\n")


def test_gb28181_invite_carries_the_play_offer() -> None:
    body = PLAY.encode()
    invite = (
        "INVITE sip:34020000001320000001@192.168.1.64:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.168.1.10:5060;rport;branch=z9hG4bK5501\r\n"
        "From: <sip:34020000002000000001@3402000000>;tag=hub1\r\n"
        "To: <sip:34020000001320000001@3402000000>\r\n"
        "Call-ID: 5501@192.168.1.10\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:34020000002000000001@192.168.1.10:5060>\r\n"
        "Subject: 34020000001320000001:0100000001,34020000002000000001:0\r\n"
        "Content-Type: APPLICATION/SDP\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    message = parse_message(invite)
    assert message.content_type == "application/sdp"
    sdp = parse_sdp(message.body)
    assert sdp.ssrc == "0100000001"
    assert sdp.format_line == "v/2/4///a///"
    assert sdp.media[0].port == 30000
