"""protocols/sip transactions and dialogs: matching, absorbing duplicates, RFC 3261 timers
with time passed in, in-dialog requests and ACKs."""

from __future__ import annotations

import pytest

from protocols.sip.dialog import Dialog, make_ack
from protocols.sip.errors import SipParseError
from protocols.sip.message import (
    SipRequest,
    SipResponse,
    encode,
    make_response,
    parse_message,
    parse_via,
)
from protocols.sip.transaction import (
    AckAbsorbed,
    ClientTransaction,
    NewRequest,
    Retransmission,
    ServerTransactions,
    TimerConfig,
)

T = TimerConfig()
SOURCE = ("192.168.1.64", 5060)


def request(method: str = "MESSAGE", branch: str = "z9hG4bK100", cseq: int = 20) -> SipRequest:
    cseq_method = "INVITE" if method == "ACK" else method
    cseq_line = f"{cseq} {method if method == 'ACK' else cseq_method}"
    data = (
        f"{method} sip:34020000002000000001@3402000000 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch={branch}\r\n"
        "From: <sip:34020000001320000001@3402000000>;tag=f1\r\n"
        "To: <sip:34020000002000000001@3402000000>\r\n"
        "Call-ID: c1@192.168.1.64\r\n"
        f"CSeq: {cseq_line}\r\n"
        "Contact: <sip:34020000001320000001@192.168.1.64:5060>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    parsed = parse_message(data)
    assert isinstance(parsed, SipRequest)
    return parsed


def test_duplicate_request_gets_the_recorded_response_not_handled_twice() -> None:
    table = ServerTransactions()
    message = request()
    assert table.receive(message, 0.0) == NewRequest()
    assert table.receive(message, 0.1) == Retransmission(None, None)
    table.respond(message, b"200", SOURCE, 0.2, reliable=False, final=True)
    assert table.receive(message, 0.3) == Retransmission(b"200", SOURCE)
    assert len(table) == 1


def test_same_branch_different_sent_by_or_method_is_a_new_transaction() -> None:
    table = ServerTransactions()
    table.receive(request(), 0.0)
    other = request()
    other.headers.set("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK100")
    assert table.receive(other, 0.0) == NewRequest()
    assert table.receive(request("INFO"), 0.0) == NewRequest()
    assert len(table) == 3


def test_non_invite_unreliable_lingers_for_timer_j_reliable_goes_at_once() -> None:
    table = ServerTransactions()
    udp, tcp = request(branch="z9hG4bKu"), request(branch="z9hG4bKt")
    table.receive(udp, 0.0)
    table.receive(tcp, 0.0)
    table.respond(udp, b"u", SOURCE, 1.0, reliable=False, final=True)
    table.respond(tcp, b"t", SOURCE, 1.0, reliable=True, final=True)
    assert table.due(1.0) == []
    assert len(table) == 1
    assert table.next_deadline() == pytest.approx(1.0 + 64 * T.t1)
    assert table.due(1.0 + 64 * T.t1 - 0.01) == []
    assert len(table) == 1
    table.due(1.0 + 64 * T.t1)
    assert len(table) == 0
    assert table.next_deadline() is None


def test_unanswered_request_expires_eventually() -> None:
    table = ServerTransactions()
    table.receive(request(), 0.0)
    table.receive(request("INVITE", "z9hG4bKi", 1), 0.0)
    table.due(64 * T.t1)
    assert len(table) == 1  # the INVITE waits for Timer C
    table.due(180.0)
    assert len(table) == 0


def test_invite_error_retransmits_with_timer_g_until_ack_then_timer_i() -> None:
    table = ServerTransactions()
    invite = request("INVITE", "z9hG4bKinv", 1)
    table.receive(invite, 0.0)
    table.respond(invite, b"486", SOURCE, 0.0, reliable=False, final=True, invite_error=True)
    sent_at = []
    now = 0.0
    while now < 10.0:
        now = round(now + 0.05, 2)
        if table.due(now):
            sent_at.append(now)
    # T1=0.5 then doubling capped at T2=4: 0.5, 1.5, 3.5, 7.5
    assert sent_at == [0.5, 1.5, 3.5, 7.5]
    ack = request("ACK", "z9hG4bKinv", 1)
    assert table.receive(ack, 10.0) == AckAbsorbed()
    assert table.receive(ack, 10.1) == AckAbsorbed()
    assert table.due(12.0) == []
    assert len(table) == 1
    table.due(10.0 + T.t4)
    assert len(table) == 0


def test_invite_error_gives_up_at_timer_h_without_ack() -> None:
    table = ServerTransactions()
    invite = request("INVITE", "z9hG4bKh", 1)
    table.receive(invite, 0.0)
    table.respond(invite, b"404", SOURCE, 0.0, reliable=False, final=True, invite_error=True)
    count = 0
    now = 0.0
    while len(table):
        now += 0.25
        count += len(table.due(now))
    assert now == pytest.approx(64 * T.t1)
    assert count == 10  # 0.5,1.5,3.5,7.5 then every 4 s until 32 s


def test_ack_for_2xx_is_a_new_request_and_invite_retransmission_gets_the_2xx() -> None:
    table = ServerTransactions()
    invite = request("INVITE", "z9hG4bKok", 1)
    table.receive(invite, 0.0)
    table.respond(invite, b"100", SOURCE, 0.0, reliable=False, final=False)
    assert table.receive(invite, 0.2) == Retransmission(b"100", SOURCE)
    assert table.due(5.0) == []  # provisional responses are not retransmitted
    table.respond(invite, b"200", SOURCE, 1.0, reliable=False, final=True)
    assert table.receive(invite, 1.2) == Retransmission(b"200", SOURCE)
    # Over UDP the 2xx is resent (T1 doubling) until the ACK arrives.
    assert table.due(1.5) == [(b"200", SOURCE)]
    assert table.due(2.4) == []
    assert table.due(2.5) == [(b"200", SOURCE)]
    assert table.receive(request("ACK", "z9hG4bKnewbranch", 1), 3.0) == NewRequest()
    assert table.due(10.0) == []
    assert table.receive(invite, 10.0) == Retransmission(b"200", SOURCE)
    assert table.receive(request("ACK", "z9hG4bKok", 1), 10.0) == NewRequest()
    table.due(1.0 + 64 * T.t1)
    assert len(table) == 0


def test_reliable_2xx_is_not_retransmitted() -> None:
    table = ServerTransactions()
    invite = request("INVITE", "z9hG4bKtcp", 1)
    table.receive(invite, 0.0)
    table.respond(invite, b"200", SOURCE, 0.0, reliable=True, final=True)
    assert table.due(10.0) == []
    assert table.receive(invite, 10.0) == Retransmission(b"200", SOURCE)


def test_rfc2543_requests_without_magic_cookie_match_on_identifiers() -> None:
    table = ServerTransactions()
    old = request(branch="1234")
    assert table.receive(old, 0.0) == NewRequest()
    assert isinstance(table.receive(request(branch="1234"), 0.1), Retransmission)
    assert table.receive(request(branch="1234", cseq=21), 0.1) == NewRequest()


def test_table_is_bounded_oldest_dropped() -> None:
    table = ServerTransactions(max_entries=3)
    for index in range(5):
        table.receive(request(branch=f"z9hG4bK{index}"), float(index))
    assert len(table) == 3
    assert table.receive(request(branch="z9hG4bK0"), 5.0) == NewRequest()
    assert isinstance(table.receive(request(branch="z9hG4bK4"), 5.0), Retransmission)


def test_client_non_invite_timer_e_caps_at_t2_and_times_out_at_f() -> None:
    message = request()
    client = ClientTransaction(message, b"req", reliable=False, now=0.0)
    assert client.key == ("z9hG4bK100", "MESSAGE")
    fired = []
    now = 0.0
    while not client.timed_out(now):
        now = round(now + 0.25, 2)
        if client.retransmit_due(now):
            fired.append(now)
    assert fired[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]
    assert now == pytest.approx(64 * T.t1)


def test_client_non_invite_after_provisional_retransmits_every_t2() -> None:
    client = ClientTransaction(request(), b"req", reliable=False, now=0.0)
    assert client.retransmit_due(0.5) == b"req"  # next at 1.5
    provisional = make_response(request(), 100)
    assert client.matches(provisional)
    assert client.receive(provisional) is False
    assert client.retransmit_due(1.5) == b"req"
    assert client.retransmit_due(5.4) is None
    assert client.retransmit_due(5.5) == b"req"
    final = make_response(request(), 200, to_tag="x")
    assert client.receive(final) is True
    assert client.final is final
    assert client.retransmit_due(100.0) is None
    assert not client.timed_out(100.0)
    assert client.next_deadline() is None


def test_client_invite_timer_a_doubles_and_stops_after_provisional() -> None:
    invite = request("INVITE", "z9hG4bKc", 1)
    client = ClientTransaction(invite, b"inv", reliable=False, now=0.0)
    assert client.next_deadline() == 0.5
    assert client.retransmit_due(0.4) is None
    assert client.retransmit_due(0.5) == b"inv"
    assert client.retransmit_due(1.5) == b"inv"
    assert client.retransmit_due(3.4) is None
    assert client.retransmit_due(3.5) == b"inv"
    client.receive(make_response(invite, 180, to_tag="r"))
    assert client.retransmit_due(100.0) is None
    assert not client.timed_out(64 * T.t1 + 1)


def test_client_reliable_never_retransmits_but_times_out() -> None:
    client = ClientTransaction(request(), b"r", reliable=True, now=10.0)
    assert client.retransmit_due(20.0) is None
    assert client.next_deadline() == 10.0 + 64 * T.t1
    assert not client.timed_out(41.9)
    assert client.timed_out(42.0)


def test_client_matches_needs_branch_and_method() -> None:
    client = ClientTransaction(request("INVITE", "z9hG4bKm", 1), b"", reliable=True, now=0.0)
    response = make_response(request("INVITE", "z9hG4bKm", 1), 200)
    assert client.matches(response)
    response.headers.set("CSeq", "1 CANCEL")
    assert not client.matches(response)
    other = make_response(request("INVITE", "z9hG4bKother", 1), 200)
    assert not client.matches(other)
    with pytest.raises(SipParseError):
        no_branch = request()
        no_branch.headers.set("Via", "SIP/2.0/UDP h")
        ClientTransaction(no_branch, b"", reliable=True, now=0.0)


def ok_for(invite: SipRequest) -> SipResponse:
    response = make_response(invite, 200, to_tag="camtag")
    response.headers.add("Contact", "<sip:34020000001320000001@192.168.1.64:5060>")
    response.headers.add("Record-Route", "<sip:p1.example;lr>, <sip:p2.example;lr>")
    return response


def test_dialog_from_uac_and_in_dialog_bye() -> None:
    invite = request("INVITE", "z9hG4bKd", 7)
    dialog = Dialog.from_uac(invite, ok_for(invite))
    assert dialog.local_tag == "f1"
    assert dialog.remote_tag == "camtag"
    assert dialog.remote_target == "sip:34020000001320000001@192.168.1.64:5060"
    assert dialog.route_set == ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]
    via = parse_via("SIP/2.0/UDP 10.0.0.2:5060;rport;branch=z9hG4bKold")
    bye = dialog.request("BYE", via)
    assert bye.uri == dialog.remote_target
    assert bye.cseq == (8, "BYE")
    assert (
        bye.branch is not None and bye.branch.startswith("z9hG4bK") and bye.branch != "z9hG4bKold"
    )
    assert bye.top_via.params["rport"] is None
    assert bye.headers.get_all("Route") == dialog.route_set
    assert bye.headers.get("Max-Forwards") == "70"
    assert (bye.from_tag, bye.to_tag) == ("f1", "camtag")
    info = dialog.request("INFO", via, body=b"PLAY", content_type="Application/MANSRTSP")
    assert info.cseq == (9, "INFO")
    assert info.content_type == "application/mansrtsp"
    assert parse_message(encode(info)).body == b"PLAY"


def test_dialog_strict_route_puts_router_in_request_uri() -> None:
    dialog = Dialog(
        "c", "l", "r", "sip:a@x", "sip:b@y", "sip:b@1.2.3.4", 1, ["<sip:strict.example>"]
    )
    bye = dialog.request("BYE", parse_via("SIP/2.0/UDP h"))
    assert bye.uri == "sip:strict.example"
    assert bye.headers.get_all("Route") == ["<sip:b@1.2.3.4>"]


def test_dialog_from_uas() -> None:
    invite = request("INVITE", "z9hG4bKu", 3)
    dialog = Dialog.from_uas(invite, "hubtag", "sip:34020000002000000001@10.0.0.2:5060")
    assert dialog.remote_tag == "f1"
    assert dialog.local_tag == "hubtag"
    assert dialog.remote_cseq == 3
    assert dialog.local_uri == "sip:34020000002000000001@3402000000"
    bye = dialog.request("BYE", parse_via("SIP/2.0/UDP 10.0.0.2"))
    assert bye.cseq == (1, "BYE")
    assert bye.to_tag == "f1"
    assert bye.headers.get("Contact") == "<sip:34020000002000000001@10.0.0.2:5060>"


def test_dialog_needs_tags_and_contact() -> None:
    invite = request("INVITE", "z9hG4bKn", 1)
    untagged = make_response(invite, 200)
    untagged.headers.add("Contact", "<sip:a@b>")
    with pytest.raises(SipParseError):
        Dialog.from_uac(invite, untagged)
    with pytest.raises(SipParseError):
        Dialog.from_uac(invite, make_response(invite, 200, to_tag="t"))


def test_ack_for_2xx_is_a_new_transaction_to_the_contact() -> None:
    invite = request("INVITE", "z9hG4bKa2", 5)
    invite.headers.add("Authorization", 'Digest username="u"')
    ack = make_ack(invite, ok_for(invite))
    assert ack.method == "ACK"
    assert ack.uri == "sip:34020000001320000001@192.168.1.64:5060"
    assert ack.cseq == (5, "ACK")
    assert ack.branch != "z9hG4bKa2"
    assert ack.to_tag == "camtag"
    assert ack.headers.get("Authorization") == 'Digest username="u"'
    parsed = parse_message(encode(ack))
    assert isinstance(parsed, SipRequest)
    assert parsed.method == "ACK"


def test_ack_for_error_reuses_the_invite_branch_and_uri() -> None:
    invite = request("INVITE", "z9hG4bKe", 5)
    invite.headers.add("Route", "<sip:p.example;lr>")
    ack = make_ack(invite, make_response(invite, 486, to_tag="busy"))
    assert ack.uri == invite.uri
    assert ack.branch == "z9hG4bKe"
    assert ack.to_tag == "busy"
    assert ack.cseq == (5, "ACK")
    assert ack.headers.get_all("Route") == ["<sip:p.example;lr>"]
    assert ack.headers.get_all("Via") == [invite.headers.get("Via")]
