"""protocols/sip message layer: parsing GB28181 traffic, framing streams, encoding, responses."""

from __future__ import annotations

import pytest

from protocols.sip.message import (
    MAX_MESSAGE,
    Headers,
    NameAddr,
    SipFramer,
    SipParseError,
    SipRequest,
    SipResponse,
    SipUri,
    Via,
    encode,
    make_request,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse_message,
    parse_name_addr,
    parse_uri,
    parse_via,
    response_address,
)

REGISTER = (
    b"REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1371463273\r\n"
    b"From: <sip:34020000001320000001@3402000000>;tag=2043466181\r\n"
    b"To: <sip:34020000001320000001@3402000000>\r\n"
    b"Call-ID: 1011047669\r\n"
    b"CSeq: 1 REGISTER\r\n"
    b"Contact: <sip:34020000001320000001@192.168.1.64:5060>\r\n"
    b"Max-Forwards: 70\r\n"
    b"User-Agent: IP Camera\r\n"
    b"Expires: 3600\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

MESSAGE_BODY = (
    '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n'
    "<SN>43</SN>\r\n<DeviceID>34020000001320000001</DeviceID>\r\n<Status>OK</Status>\r\n"
    "<Info>\u6444\u50cf\u673a</Info>\r\n</Notify>\r\n"
).encode("gb2312")


def keepalive(body: bytes = MESSAGE_BODY, length: int | None = None) -> bytes:
    """A Hikvision-style keepalive MESSAGE with compact headers and a GB2312 body."""
    size = len(body) if length is None else length
    head = (
        "MESSAGE sip:34020000002000000001@3402000000 SIP/2.0\r\n"
        "v: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK20001\r\n"
        "f: <sip:34020000001320000001@3402000000>;tag=99\r\n"
        "t: <sip:34020000002000000001@3402000000>\r\n"
        "i: 77@192.168.1.64\r\n"
        "CSeq: 20 MESSAGE\r\n"
        "c: Application/MANSCDP+xml\r\n"
        "Max-Forwards: 70\r\n"
        f"l: {size}\r\n"
        "\r\n"
    )
    return head.encode() + body


def test_register_parses_into_typed_fields() -> None:
    message = parse_message(REGISTER)
    assert isinstance(message, SipRequest)
    assert message.method == "REGISTER"
    assert message.uri == "sip:34020000002000000001@3402000000"
    assert message.call_id == "1011047669"
    assert message.cseq == (1, "REGISTER")
    assert message.branch == "z9hG4bK1371463273"
    assert message.top_via.host == "192.168.1.64"
    assert message.top_via.port == 5060
    assert message.top_via.params["rport"] is None
    assert message.from_tag == "2043466181"
    assert message.to_tag is None
    assert message.from_addr.uri.user == "34020000001320000001"
    assert message.headers.get("expires") == "3600"
    assert message.body == b""
    assert message.content_type is None


def test_compact_headers_expand_and_gb2312_body_stays_bytes() -> None:
    message = parse_message(keepalive())
    assert message.headers.get("Via") is not None
    assert message.headers.get("Content-Type") == "Application/MANSCDP+xml"
    assert message.content_type == "application/manscdp+xml"
    assert message.call_id == "77@192.168.1.64"
    assert message.body == MESSAGE_BODY
    names = [name for name, _ in message.headers.items()]
    assert names[:5] == ["Via", "From", "To", "Call-ID", "CSeq"]


def test_body_longer_than_content_length_is_truncated() -> None:
    message = parse_message(keepalive(MESSAGE_BODY + b"trailing junk", len(MESSAGE_BODY)))
    assert message.body == MESSAGE_BODY


def test_body_shorter_than_content_length_is_400() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(keepalive(MESSAGE_BODY, len(MESSAGE_BODY) + 10))
    assert info.value.status == 400
    assert "Content-Length" in str(info.value)


def test_response_parses_with_multi_value_via() -> None:
    data = (
        b"SIP/2.0 401 Unauthorized\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa, SIP/2.0/TCP proxy.example:5070"
        b";branch=z9hG4bKb\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKc\r\n"
        b'From: "Cam" <sip:34020000001320000001@3402000000>;tag=1\r\n'
        b"To: sip:34020000001320000001@3402000000;tag=srv\r\n"
        b"Call-ID: abc\r\n"
        b"CSeq: 1 REGISTER\r\n"
        b'WWW-Authenticate: Digest realm="3402000000", nonce="n1", algorithm=MD5\r\n'
        b"Content-Length: 0\r\n\r\n"
    )
    message = parse_message(data)
    assert isinstance(message, SipResponse)
    assert (message.status, message.reason) == (401, "Unauthorized")
    vias = message.headers.get_all("Via")
    assert [parse_via(v).branch for v in vias] == ["z9hG4bKa", "z9hG4bKb", "z9hG4bKc"]
    assert message.top_via.host == "10.0.0.1"
    assert message.to_tag == "srv"
    assert message.from_addr.display == "Cam"
    assert message.headers.get_all("WWW-Authenticate") == [
        'Digest realm="3402000000", nonce="n1", algorithm=MD5'
    ]


def test_header_folding_is_joined() -> None:
    data = REGISTER.replace(b"User-Agent: IP Camera\r\n", b"User-Agent: IP\r\n  Camera\r\n")
    assert parse_message(data).headers.get("User-Agent") == "IP Camera"


def test_leading_crlf_is_ignored_and_lf_only_is_accepted() -> None:
    message = parse_message(b"\r\n" + REGISTER.replace(b"\r\n", b"\n"))
    assert isinstance(message, SipRequest)
    assert message.cseq == (1, "REGISTER")


@pytest.mark.parametrize("name", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_missing_mandatory_header_is_400_naming_it(name: str) -> None:
    lines = [line for line in REGISTER.split(b"\r\n") if not line.startswith(name.encode() + b":")]
    with pytest.raises(SipParseError) as info:
        parse_message(b"\r\n".join(lines))
    assert info.value.status == 400
    assert name in info.value.reason


@pytest.mark.parametrize(
    ("old", "new", "status"),
    [
        (b"REGISTER sip:3402", b"REGISTER tel:3402", 416),
        (b"@3402000000 SIP/2.0\r\n", b"@3402000000 SIP/3.0\r\n", 505),
        (b"@3402000000 SIP/2.0\r\n", b"@3402000000 HTTP/1.1\r\n", 400),
        (b"CSeq: 1 REGISTER", b"CSeq: 1 INVITE", 400),
        (b"CSeq: 1 REGISTER", b"CSeq: 2147483648 REGISTER", 400),
        (b"CSeq: 1 REGISTER", b"CSeq: x REGISTER", 400),
        (b"Content-Length: 0", b"Content-Length: -1", 400),
        (b"Max-Forwards: 70", b"Max-Forwards 70", 400),
        (b"User-Agent: IP Camera", b"User-Agent: IP \xff Camera", 400),
        (b"From: <sip:", b"From: <http:", 416),
    ],
)
def test_malformed_requests_get_the_right_status(old: bytes, new: bytes, status: int) -> None:
    assert old in REGISTER
    with pytest.raises(SipParseError) as info:
        parse_message(REGISTER.replace(old, new))
    assert info.value.status == status


def test_cseq_at_upper_bound_is_accepted() -> None:
    data = REGISTER.replace(b"CSeq: 1 REGISTER", b"CSeq: 2147483647 REGISTER")
    assert parse_message(data).cseq == (2147483647, "REGISTER")


def test_size_and_header_count_limits() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(REGISTER + b"x" * MAX_MESSAGE)
    assert info.value.status == 413
    many = REGISTER.replace(b"Expires: 3600\r\n", b"X-A: 1\r\n" * 200)
    with pytest.raises(SipParseError, match="more than"):
        parse_message(many)


def test_response_status_line_errors() -> None:
    base = REGISTER.split(b"\r\n", 1)[1]
    with pytest.raises(SipParseError):
        parse_message(b"SIP/2.0 99 Weird\r\n" + base)
    with pytest.raises(SipParseError) as info:
        parse_message(b"SIP/1.0 200 OK\r\n" + base)
    assert info.value.status == 505
    response = parse_message(b"SIP/2.0 200\r\n" + base)
    assert isinstance(response, SipResponse)
    assert response.reason == ""


def test_error_str_is_an_english_explanation() -> None:
    err = SipParseError("missing mandatory To header")
    assert err.status == 400
    assert str(err) == "missing mandatory To header (answer with SIP 400)"


def test_encode_sets_content_length_and_round_trips() -> None:
    message = parse_message(keepalive())
    message.headers.add("Content-Length", "999")
    data = encode(message)
    assert data.count(b"Content-Length") == 1
    assert f"Content-Length: {len(MESSAGE_BODY)}\r\n\r\n".encode() in data
    assert data.startswith(b"MESSAGE sip:34020000002000000001@3402000000 SIP/2.0\r\n")
    again = parse_message(data)
    assert again.body == MESSAGE_BODY
    assert again.headers.get_all("Via") == message.headers.get_all("Via")


def test_encode_refuses_header_injection() -> None:
    message = parse_message(REGISTER)
    message.headers.add("Subject", "x\r\nVia: SIP/2.0/UDP evil")
    with pytest.raises(ValueError, match="line break"):
        encode(message)


def test_framer_accepts_lf_only_messages_and_small_limits() -> None:
    data = keepalive().replace(b"\r\n", b"\n", 9)  # header lines LF, blank line CRLF
    messages = SipFramer().feed(data)
    assert len(messages) == 1
    assert messages[0].body == MESSAGE_BODY
    with pytest.raises(SipParseError) as info:
        SipFramer(max_size=100).feed(b"R" * 101)
    assert info.value.status == 413


def test_encode_response_start_line() -> None:
    response = SipResponse(200, "OK", Headers([("Via", "SIP/2.0/UDP h;branch=z9hG4bKx")]))
    assert encode(response) == (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nContent-Length: 0\r\n\r\n"
    )


def test_framer_handles_one_byte_at_a_time_and_keepalives() -> None:
    stream = b"\r\n\r\n" + keepalive() + b"\r\n\r\n" + REGISTER + keepalive()
    framer = SipFramer()
    messages = []
    for index in range(len(stream)):
        messages.extend(framer.feed(stream[index : index + 1]))
    assert [m.cseq[1] for m in messages] == ["MESSAGE", "REGISTER", "MESSAGE"]
    assert messages[0].body == MESSAGE_BODY
    assert messages[2].body == MESSAGE_BODY


def test_framer_splits_across_chunk_boundaries() -> None:
    stream = keepalive() + keepalive()
    framer = SipFramer()
    cut = len(keepalive()) - 5
    first = framer.feed(stream[:cut])
    assert first == []
    rest = framer.feed(stream[cut:])
    assert len(rest) == 2
    assert all(m.body == MESSAGE_BODY for m in rest)


def test_framer_requires_content_length() -> None:
    data = REGISTER.replace(b"Content-Length: 0\r\n", b"")
    with pytest.raises(SipParseError, match="Content-Length"):
        SipFramer().feed(data)


def test_framer_rejects_garbage_and_stays_broken() -> None:
    framer = SipFramer()
    with pytest.raises(SipParseError):
        framer.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises(SipParseError):
        framer.feed(REGISTER)


def test_framer_limits_header_section_and_body_size() -> None:
    framer = SipFramer(max_size=1024)
    with pytest.raises(SipParseError) as info:
        framer.feed(b"REGISTER sip:a@b SIP/2.0\r\n" + b"X-Long: aaaa\r\n" * 100)
    assert info.value.status == 413
    with pytest.raises(SipParseError) as info:
        SipFramer(max_size=1024).feed(keepalive(b"", 5000))
    assert info.value.status == 413


def test_headers_are_case_insensitive_ordered_and_multi_valued() -> None:
    headers = Headers([("via", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b"), ("X-Y", "1")])
    headers.add("V", "SIP/2.0/UDP c")
    headers.add("Contact", '"A, B" <sip:a@b;x=1,2>, <sip:c@d>')
    assert "VIA" in headers
    assert "Route" not in headers
    assert headers.get_all("Via") == [
        "SIP/2.0/UDP a;branch=z9hG4bK1",
        "SIP/2.0/UDP b",
        "SIP/2.0/UDP c",
    ]
    assert headers.get("Via") == "SIP/2.0/UDP a;branch=z9hG4bK1"
    assert headers.get_all("m") == ['"A, B" <sip:a@b;x=1,2>', "<sip:c@d>"]
    headers.set("x-y", "2")
    assert headers.items()[1] == ("X-Y", "2")
    clone = headers.copy()
    headers.remove("via")
    assert headers.get("Via") is None
    assert clone.get_all("Via") != []
    assert headers != clone


def test_auth_and_date_headers_are_never_split() -> None:
    value = 'Digest username="a", realm="b", nonce="c", uri="sip:d", response="e"'
    headers = Headers([("Authorization", value), ("Date", "Mon, 23 Nov 2026 10:00:00 GMT")])
    assert headers.get_all("Authorization") == [value]
    assert headers.get("Date") == "Mon, 23 Nov 2026 10:00:00 GMT"


def test_make_response_copies_transaction_headers_and_adds_to_tag() -> None:
    request = parse_message(REGISTER)
    assert isinstance(request, SipRequest)
    request.headers.add("Via", "SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKsecond")
    response = make_response(request, 200, to_tag="hub1")
    assert response.reason == "OK"
    assert response.headers.get_all("Via") == request.headers.get_all("Via")
    assert response.to_tag == "hub1"
    assert response.from_tag == "2043466181"
    assert response.call_id == request.call_id
    assert response.cseq == (1, "REGISTER")
    assert "Contact" not in response.headers
    assert parse_message(encode(response)).to_tag == "hub1"


def test_make_response_keeps_existing_to_tag_and_default_reasons() -> None:
    request = parse_message(REGISTER.replace(b"3402000000>\r\nCall", b"3402000000>;tag=t0\r\nCall"))
    assert isinstance(request, SipRequest)
    assert make_response(request, 481, to_tag="other").to_tag == "t0"
    assert make_response(request, 401).reason == "Unauthorized"
    assert make_response(request, 488).reason == "Not Acceptable Here"
    assert make_response(request, 599).reason == "Server Error"
    assert make_response(request, 200, "Fine").reason == "Fine"


def test_new_identifiers_are_fresh() -> None:
    assert new_branch().startswith("z9hG4bK")
    assert new_branch() != new_branch()
    assert new_tag() != new_tag()
    assert new_call_id("192.168.1.2").endswith("@192.168.1.2")


def test_gb28181_uris_parse_and_print() -> None:
    uri = parse_uri("sip:34020000001320000001@3402000000")
    assert uri == SipUri("sip", "34020000001320000001", "3402000000", None, {}, {})
    full = parse_uri("SIPS:34020000001320000001@192.168.1.10:5061;transport=tcp;lr?subject=x")
    assert (full.scheme, full.host, full.port) == ("sips", "192.168.1.10", 5061)
    assert full.params == {"transport": "tcp", "lr": None}
    assert full.headers == {"subject": "x"}
    assert str(full) == "sips:34020000001320000001@192.168.1.10:5061;transport=tcp;lr?subject=x"
    assert parse_uri("sip:[2001:db8::1]:5060").host == "[2001:db8::1]"


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("tel:+123", 416),
        ("http://x", 416),
        ("nocolon", 400),
        ("sip:a@b:99999", 400),
        ("sip:a@b:port", 400),
        ("sip:@host", 400),
        ("sip:a b@host", 400),
        ("sip:", 400),
    ],
)
def test_bad_uris(text: str, status: int) -> None:
    with pytest.raises(SipParseError) as info:
        parse_uri(text)
    assert info.value.status == status


def test_name_addr_forms() -> None:
    quoted = parse_name_addr('"Cam \\"1\\"" <sip:3402@3402000000>;tag=x;expires=60')
    assert quoted.display == 'Cam "1"'
    assert quoted.tag == "x"
    assert quoted.params["expires"] == "60"
    assert parse_name_addr(str(quoted)) == quoted
    bare = parse_name_addr("sip:3402@3402000000;tag=abc")
    assert bare == NameAddr(None, parse_uri("sip:3402@3402000000"), {"tag": "abc"})
    token = parse_name_addr("Camera One <sip:3402@h;lr>")
    assert token.display == "Camera One"
    assert token.uri.params == {"lr": None}
    assert str(bare) == "<sip:3402@3402000000>;tag=abc"
    for bad in ["", "<sip:a@b", '"x <sip:a@b>', "<sip:a@b> junk", "<tel:1>"]:
        with pytest.raises(SipParseError):
            parse_name_addr(bad)


def test_via_parse_and_print() -> None:
    via = parse_via("SIP / 2.0 / udp 192.168.1.64:5060 ;rport;branch=z9hG4bKx;received=1.2.3.4")
    assert via == Via(
        "UDP", "192.168.1.64", 5060, {"rport": None, "branch": "z9hG4bKx", "received": "1.2.3.4"}
    )
    assert str(via) == "SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bKx;received=1.2.3.4"
    assert parse_via(str(via)) == via
    for bad in ["SIP/2.0/UDP", "SIP/3.0/UDP h", "UDP h", "SIP/2.0/UDP h:x"]:
        with pytest.raises(SipParseError):
            parse_via(bad)


@pytest.mark.parametrize(
    ("via", "expected"),
    [
        ("SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1", ("10.0.0.9", 40000)),
        ("SIP/2.0/UDP 192.168.1.64:5060;rport=7000;branch=z9hG4bK1", ("10.0.0.9", 7000)),
        ("SIP/2.0/UDP 192.168.1.64:5070;branch=z9hG4bK1", ("10.0.0.9", 5070)),
        ("SIP/2.0/UDP 192.168.1.64;received=1.1.1.1;branch=z9hG4bK1", ("1.1.1.1", 5060)),
        ("SIP/2.0/UDP 192.168.1.64;maddr=239.1.1.1;branch=z9hG4bK1", ("239.1.1.1", 5060)),
        ("SIP/2.0/TCP 192.168.1.64:5060;branch=z9hG4bK1", ("10.0.0.9", 40000)),
        ("SIP/2.0/UDP 192.168.1.64;rport=\u00b2;branch=z9hG4bK1", ("10.0.0.9", 40000)),
    ],
)
def test_response_address(via: str, expected: tuple[str, int]) -> None:
    assert response_address(parse_via(via), ("10.0.0.9", 40000)) == expected


def test_make_request_builds_an_out_of_dialog_request_that_parses_back() -> None:
    via = Via("UDP", "10.0.0.5", 5062, {"branch": "z9hG4bKabc", "rport": None})
    request = make_request(
        "MESSAGE", "sip:34020000002000000001@3402000000", via=via,
        from_uri="sip:34020000002000000002@3402000000",
        to_uri="sip:34020000002000000001@3402000000", call_id="c1@10.0.0.5", cseq=7,
        from_tag="t1", extra=(("Content-Type", "Application/MANSCDP+xml"),), body=b"<x/>",
    )  # fmt: skip
    parsed = parse_message(encode(request))
    assert isinstance(parsed, SipRequest)
    assert (parsed.method, parsed.cseq, parsed.call_id) == (
        "MESSAGE",
        (7, "MESSAGE"),
        "c1@10.0.0.5",
    )
    assert parsed.from_tag == "t1" and parsed.to_tag is None
    assert parsed.branch == "z9hG4bKabc" and parsed.headers.get("Max-Forwards") == "70"
    assert parsed.content_type == "application/manscdp+xml" and parsed.body == b"<x/>"
    fresh = make_request("OPTIONS", "sip:gw", via=via, from_uri="sip:a@b", to_uri="sip:gw",
                         call_id="c2", cseq=1)  # fmt: skip
    assert fresh.from_tag and fresh.from_tag != "t1"
