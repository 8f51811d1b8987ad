"""MANSCDP XML parsing, building and Catalog assembly."""

import pytest

from protocols.gb28181.manscdp import (
    CatalogAssembler,
    CatalogItem,
    ManscdpError,
    build_alarm_notify,
    build_catalog_response,
    build_keepalive,
    build_ptz_control,
    build_query,
    build_response,
    catalog_items,
    parse_manscdp,
    split_catalog,
)

PLATFORM = "34020000002000000001"
DEVICE = "34020000001320000001"

CATALOG_GB2312 = """<?xml version="1.0" encoding="GB2312"?>
<Response>
<CmdType>Catalog</CmdType>
<SN>17430</SN>
<DeviceID>34020000001320000001</DeviceID>
<SumNum>2</SumNum>
<DeviceList Num="2">
<Item>
<DeviceID>34020000001310000001</DeviceID>
<Name>东门广场球机</Name>
<Manufacturer>Hikvision</Manufacturer>
<Model>DS-2DE4</Model>
<Owner>Owner</Owner>
<CivilCode>3402000000</CivilCode>
<Address>网格三号路口</Address>
<Parental>0</Parental>
<ParentID>34020000001320000001</ParentID>
<RegisterWay>1</RegisterWay>
<Secrecy>0</Secrecy>
<Status>on</Status>
<Longitude>117.2272</Longitude>
<Latitude>31.8206</Latitude>
<Info>
<PTZType>1</PTZType>
</Info>
</Item>
<Item>
<DeviceID>34020000001310000002</DeviceID>
<Name>西门枪机</Name>
<Status>OFF</Status>
<Longitude>abc</Longitude>
<Info><PTZType>x</PTZType></Info>
</Item>
</DeviceList>
</Response>
"""


def test_gb2312_catalog_with_chinese_names_decodes() -> None:
    message = parse_manscdp(CATALOG_GB2312.encode("gb2312") + b"\x00")
    assert (message.root, message.cmd_type, message.sn) == ("Response", "Catalog", 17430)
    assert message.device_id == DEVICE and message.sum_num == 2
    assert message.encoding == "GB2312"
    assert message.items[0]["Info.PTZType"] == "1"
    first, second = catalog_items(message)
    assert first.name == "东门广场球机" and first.address == "网格三号路口"
    assert first.status == "ON" and first.ptz_type == 1
    assert first.longitude == pytest.approx(117.2272) and first.latitude == pytest.approx(31.8206)
    assert second.name == "西门枪机" and second.longitude is None and second.ptz_type is None


def test_missing_or_wrong_declaration_over_gb2312_bytes_is_tolerated() -> None:
    body = CATALOG_GB2312.replace(' encoding="GB2312"', "").encode("gb2312")
    assert catalog_items(parse_manscdp(body))[0].name == "东门广场球机"
    no_decl = CATALOG_GB2312.split("\n", 1)[1].encode("gb2312") + b"\r\n  "
    assert catalog_items(parse_manscdp(no_decl))[1].name == "西门枪机"


def test_utf8_body_parses() -> None:
    body = build_keepalive(5, DEVICE, encoding="UTF-8")
    message = parse_manscdp(body)
    assert message.root == "Notify" and message.fields == {"Status": "OK"}
    assert message.encoding == "UTF-8"


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><Query><CmdType>a</CmdType></Query>',
        b"<Foo><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>1</DeviceID></Foo>",
        b"<Query><SN>1</SN><DeviceID>1</DeviceID></Query>",
        b"<Query><CmdType>Catalog</CmdType><DeviceID>1</DeviceID></Query>",
        b"<Query><CmdType>Catalog</CmdType><SN>x1</SN><DeviceID>1</DeviceID></Query>",
        b"<Query><CmdType>Catalog</CmdType><SN>1</SN></Query>",
        b"<Query><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>a b</DeviceID></Query>",
        b"<Query><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>"
        + b"1" * 65
        + b"</DeviceID></Query>",
        b"<Query><CmdType>Catalog",
        b'<?xml version="1.0" encoding="KOI8-R"?><Query/>',
    ],
)
def test_strict_about_unsafe_or_incomplete_bodies(body: bytes) -> None:
    with pytest.raises(ManscdpError):
        parse_manscdp(body)


def test_size_limit_is_enforced() -> None:
    with pytest.raises(ManscdpError, match="exceeds"):
        parse_manscdp(build_query("Catalog", 1, DEVICE), max_size=10)


def test_build_query_matches_the_standard_layout() -> None:
    assert build_query("Catalog", 17430, DEVICE) == (
        b'<?xml version="1.0" encoding="GB2312"?>\r\n<Query>\r\n<CmdType>Catalog</CmdType>\r\n'
        b"<SN>17430</SN>\r\n<DeviceID>34020000001320000001</DeviceID>\r\n</Query>\r\n"
    )


def test_ptz_control_round_trips() -> None:
    message = parse_manscdp(build_ptz_control(9, DEVICE, "A50F0100000000B5"))
    assert (message.root, message.cmd_type) == ("Control", "DeviceControl")
    assert message.fields["PTZCmd"] == "A50F0100000000B5"
    assert message.fields["Info.ControlPriority"] == "5"


def test_text_is_escaped_and_rare_characters_survive_gb_encoding() -> None:
    body = build_alarm_notify(
        3, DEVICE, 1, 5, "2024-05-01T10:00:00", "<烟火> & 𠀀", 117.5, 31.25, alarm_type=2
    )
    message = parse_manscdp(body)
    assert message.fields["AlarmDescription"] == "<烟火> & 𠀀"
    assert message.fields["Info.AlarmType"] == "2"
    assert float(message.fields["Longitude"]) == 117.5
    response = parse_manscdp(build_response("DeviceControl", 9, DEVICE))
    assert response.fields["Result"] == "OK"


def _items(count: int) -> list[CatalogItem]:
    return [
        CatalogItem(f"3402000000131{i:07d}", name=f"摄像头{i}", status="ON", parental=False)
        for i in range(count)
    ]


def test_multi_message_catalog_of_300_with_duplicates_assembles() -> None:
    items = _items(300)
    groups = split_catalog(items, 40)
    assert len(groups) == 8
    bodies = [build_catalog_response(77, DEVICE, 300, group) for group in groups]
    # a retransmitted message must not complete the catalog early
    bodies.insert(3, bodies[2])
    assembler = CatalogAssembler(DEVICE, 77)
    results = [assembler.add(parse_manscdp(body)) for body in bodies]
    assert all(result is None for result in results[:-1])
    final = results[-1]
    assert final is not None and len(final) == 300
    assert {item.device_id for item in final} == {item.device_id for item in items}
    assert final[5].name == "摄像头5"
    assert assembler.missing == 0


def test_assembler_refuses_foreign_and_huge_catalogs() -> None:
    body = build_catalog_response(1, DEVICE, 2, _items(1))
    assert CatalogAssembler(DEVICE, 1).add(parse_manscdp(body)) is None
    with pytest.raises(ManscdpError):
        CatalogAssembler(DEVICE, 2).add(parse_manscdp(body))
    huge = build_catalog_response(1, DEVICE, 100_001, _items(1))
    with pytest.raises(ManscdpError, match="exceeds"):
        CatalogAssembler(DEVICE, 1).add(parse_manscdp(huge))


def test_split_catalog_keeps_one_message_for_an_empty_catalog() -> None:
    assert split_catalog([], 10) == [[]]
    with pytest.raises(ValueError):
        split_catalog(_items(1), 0)
