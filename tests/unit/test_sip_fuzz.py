"""Fuzzing protocols/sip parsers: arbitrary input raises only the package's own errors, and
encode/parse round-trips hold."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.sip.digest import (
    DigestChallenge,
    parse_challenge,
    parse_credentials,
)
from protocols.sip.message import (
    Headers,
    SipFramer,
    SipParseError,
    SipRequest,
    SipResponse,
    encode,
    parse_message,
    parse_name_addr,
    parse_uri,
    parse_via,
)
from protocols.sip.sdp import SdpError, parse_sdp
from protocols.sip.transaction import (
    AckAbsorbed,
    ClientTransaction,
    NewRequest,
    Retransmission,
    ServerTransactions,
)

FUZZ = settings(max_examples=300, deadline=None, database=None)

SEED_BODY = b"v=0\r\no=- 0 0 IN IP4 h\r\ns=Play\r\ny=0100\r\n"
SEED_MESSAGE = (
    b"INVITE sip:34020000001320000001@192.168.1.64:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.168.1.10:5060;rport;branch=z9hG4bK77\r\n"
    b"From: <sip:34020000002000000001@3402000000>;tag=a1\r\n"
    b"To: <sip:34020000001320000001@3402000000>\r\n"
    b"Call-ID: 9@192.168.1.10\r\nCSeq: 3 INVITE\r\n"
    b"Contact: <sip:34020000002000000001@192.168.1.10:5060>\r\n"
    b"Content-Type: APPLICATION/SDP\r\nSubject: 34020000001320000001:0100000001,3402:0\r\n"
    b"Content-Length: " + str(len(SEED_BODY)).encode() + b"\r\n\r\n" + SEED_BODY
)
SEED_SDP = (
    "v=0\r\no=3402 0 0 IN IP4 192.168.1.10\r\ns=Play\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\n"
    "m=video 30000 TCP/RTP/AVP 96\r\na=recvonly\r\na=setup:active\r\na=rtpmap:96 PS/90000\r\n"
    "y=0100000001\r\nf=v/2/4///a///\r\n"
)


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """The seed with a few random byte-level edits, so fuzzing reaches deep branches."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(0, 6))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(st.binary(min_size=1, max_size=4))
        if action == "insert":
            data[position:position] = chunk
        elif action == "delete":
            del data[position : position + len(chunk)]
        else:
            data[position : position + len(chunk)] = chunk
    return bytes(data)


sip_bytes = st.one_of(st.binary(max_size=600), mutated(SEED_MESSAGE))
sip_text = st.one_of(
    st.text(max_size=200),
    mutated(SEED_MESSAGE).map(lambda data: data.decode("latin-1")),
)


@FUZZ
@given(sip_bytes)
def test_parse_message_raises_only_sip_parse_error(data: bytes) -> None:
    try:
        message = parse_message(data)
    except SipParseError as err:
        assert 400 <= err.status <= 505
        return
    # A parsed message exposes its mandatory fields without raising.
    assert message.call_id
    assert message.cseq[0] >= 0
    _ = (message.top_via, message.from_addr, message.to_addr, message.content_type)


@FUZZ
@given(mutated(SEED_MESSAGE))
def test_parsed_messages_round_trip_through_encode(data: bytes) -> None:
    try:
        message = parse_message(data)
    except SipParseError:
        return
    again = parse_message(encode(message))
    assert type(again) is type(message)
    assert again.body == message.body
    assert again.headers.get_all("Via") == message.headers.get_all("Via")
    assert again.cseq == message.cseq
    if isinstance(message, SipRequest):
        assert isinstance(again, SipRequest)
        assert (again.method, again.uri) == (message.method, message.uri)


@FUZZ
@given(
    st.lists(st.one_of(st.just(SEED_MESSAGE), st.just(b"\r\n\r\n"), sip_bytes), max_size=4),
    st.lists(st.integers(1, 64), min_size=1, max_size=40),
)
def test_framer_raises_only_sip_parse_error_under_any_chunking(
    parts: list[bytes], sizes: list[int]
) -> None:
    stream = b"".join(parts)
    framer = SipFramer()
    position = 0
    index = 0
    try:
        while position < len(stream):
            size = sizes[index % len(sizes)]
            for message in framer.feed(stream[position : position + size]):
                assert isinstance(message, SipRequest | SipResponse)
            position += size
            index += 1
    except SipParseError:
        pass


@FUZZ
@given(st.lists(st.integers(1, 50), min_size=1, max_size=30), st.integers(1, 4))
def test_framer_yields_the_same_messages_for_any_chunking(sizes: list[int], count: int) -> None:
    stream = (SEED_MESSAGE + b"\r\n\r\n") * count
    framer = SipFramer()
    messages: list[SipRequest | SipResponse] = []
    position = 0
    index = 0
    while position < len(stream):
        size = sizes[index % len(sizes)]
        messages.extend(framer.feed(stream[position : position + size]))
        position += size
        index += 1
    assert len(messages) == count
    assert all(message == parse_message(SEED_MESSAGE) for message in messages)


@FUZZ
@given(st.one_of(st.binary(max_size=400), mutated(SEED_SDP.encode()), st.text(max_size=300)))
def test_parse_sdp_raises_only_sdp_error_and_round_trips(data: bytes | str) -> None:
    try:
        sdp = parse_sdp(data)
    except SdpError:
        return
    assert parse_sdp(sdp.encode()) == sdp
    for media in sdp.media:
        assert 0 <= media.port <= 65535
        _ = (media.rtpmap(), media.direction, media.setup, media.tcp)


AUTH_SEED = (
    'Digest username="34020000001320000001", realm="3402000000", nonce="abc", '
    'uri="sip:34020000002000000001@3402000000", response="0123456789abcdef0123456789abcdef", '
    'algorithm=MD5, cnonce="c", qop=auth, nc=00000001'
)
auth_text = st.one_of(
    st.text(max_size=200),
    mutated(AUTH_SEED.encode()).map(lambda data: data.decode("latin-1")),
)


@FUZZ
@given(auth_text)
def test_parse_credentials_raises_only_sip_parse_error(value: str) -> None:
    try:
        credentials = parse_credentials(value)
    except SipParseError:
        return
    assert credentials.username is not None


@FUZZ
@given(auth_text)
def test_parse_challenge_raises_only_sip_parse_error(value: str) -> None:
    try:
        challenge = parse_challenge(value)
    except SipParseError:
        return
    assert parse_challenge(challenge.header_value()) == challenge


quoted_safe = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30)


@FUZZ
@given(quoted_safe, quoted_safe, st.one_of(st.none(), quoted_safe), st.booleans())
def test_challenge_round_trips(realm: str, nonce: str, opaque: str | None, stale: bool) -> None:
    challenge = DigestChallenge(realm=realm, nonce=nonce, opaque=opaque, stale=stale)
    assert parse_challenge(challenge.header_value()) == challenge


@FUZZ
@given(sip_text)
def test_address_parsers_raise_only_sip_parse_error(value: str) -> None:
    for parser in (parse_via, parse_uri, parse_name_addr):
        try:
            parsed = parser(value)
        except SipParseError:
            continue
        # Whatever parses prints back to something that parses to the same value.
        assert parser(str(parsed)) == parsed


token = st.text("abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=12)
user = st.text("0123456789abcdefXYZ", min_size=1, max_size=20)


@FUZZ
@given(
    user,
    token.filter(lambda host: host[0].isalnum()),
    st.one_of(st.none(), st.integers(0, 65535)),
    st.dictionaries(token, st.one_of(st.none(), token), max_size=3),
    st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)),
)
def test_name_addr_round_trips(
    number: str, host: str, port: int | None, params: dict[str, str | None], display: str | None
) -> None:
    port_text = "" if port is None else f":{port}"
    uri = parse_uri(f"sip:{number}@{host}{port_text}")
    assert (uri.user, uri.host, uri.port) == (number, host, port)
    value = parse_name_addr(
        f"<{uri}>" + "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())
    )
    value.display = display
    assert parse_name_addr(str(value)) == value


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from(["Via", "v", "X-A", "Contact", "m", "To"]), token), max_size=8
    )
)
def test_headers_get_all_matches_compact_and_long_names(pairs: list[tuple[str, str]]) -> None:
    headers = Headers(pairs)
    assert headers.get_all("v") == headers.get_all("VIA")
    assert len(headers.get_all("Contact")) == sum(
        1 for name, _ in pairs if name in ("Contact", "m")
    )
    assert Headers(headers.items()) == headers


def _request(method: str, branch: str) -> SipRequest:
    data = (
        f"{method} sip:34020000001320000001@3402000000 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.168.1.64:5060;branch={branch}\r\n"
        "From: <sip:a@3402000000>;tag=f\r\nTo: <sip:b@3402000000>\r\n"
        f"Call-ID: {branch}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    parsed = parse_message(data)
    assert isinstance(parsed, SipRequest)
    return parsed


operations = st.lists(
    st.tuples(
        st.sampled_from(["receive", "respond", "respond_error", "due"]),
        st.sampled_from(["INVITE", "MESSAGE", "ACK", "REGISTER"]),
        st.sampled_from(["z9hG4bK1", "z9hG4bK2", "z9hG4bK3", "old-style"]),
        st.booleans(),
        st.floats(0, 5),
    ),
    max_size=40,
)


@FUZZ
@given(operations)
def test_server_transactions_stay_bounded_and_drain(
    ops: list[tuple[str, str, str, bool, float]],
) -> None:
    table = ServerTransactions(max_entries=3)
    now = 0.0
    for action, method, branch, reliable, step in ops:
        now += step
        message = _request(method, branch)
        if action == "receive":
            assert isinstance(
                table.receive(message, now), NewRequest | Retransmission | AckAbsorbed
            )
        elif action == "due":
            for data, _destination in table.due(now):
                assert data in (b"final", b"error")
        elif method != "ACK":
            table.respond(
                message,
                b"error" if action == "respond_error" else b"final",
                ("h", 1),
                now,
                reliable=reliable,
                final=True,
                invite_error=action == "respond_error",
            )
        assert len(table) <= 3
        deadline = table.next_deadline()
        assert deadline is None or deadline >= 0
    table.due(now + 200.0)
    assert len(table) == 0
    assert table.next_deadline() is None


@FUZZ
@given(st.sampled_from(["INVITE", "MESSAGE"]), st.lists(st.floats(0.01, 3.0), max_size=60))
def test_client_retransmissions_never_shrink_and_stop_at_timeout(
    method: str, steps: list[float]
) -> None:
    client = ClientTransaction(_request(method, "z9hG4bKc"), b"x", reliable=False, now=0.0)
    now = 0.0
    sent: list[float] = []
    for step in steps:
        now += step
        if client.retransmit_due(now) is not None:
            sent.append(now)
        if client.timed_out(now):
            break
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent)]
    assert all(gap >= 0.5 - 1e-9 for gap in gaps)
    assert all(moment < 32.0 + 3.0 for moment in sent)
