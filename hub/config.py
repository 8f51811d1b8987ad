"""Typed settings: ``HUB_*`` environment variables over a TOML file, over embedded defaults.

Every knob the hub reads is declared here, with its default and a one-line description;
README.md's configuration reference is generated from this module (``hub config-doc``).
Nested groups are set from the environment with a double underscore, e.g.
``HUB_GATEWAY__PING_INTERVAL=10``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "config" / "hub.toml"
DEV_JWT_SECRET = "grid-hub-development-secret-change-me"


def _empty_is_none(value: Any) -> Any:
    return None if value == "" else value


OptionalPath = Annotated[Path | None, BeforeValidator(_empty_is_none)]
"""A file setting that may be switched off: an empty value (``HUB_USERS_FILE=``) is none,
not the current directory."""


class GatewaySettings(BaseModel):
    """WebSocket gateway limits and timers."""

    max_frame_bytes: int = Field(65536, description="Largest inbound WebSocket message (bytes).")
    ping_interval: float = Field(25.0, description="Seconds between server pings.")
    pong_timeout: float = Field(10.0, description="Seconds a client has to answer a ping.")
    stale_timeout: float = Field(10.0, description="Seconds to send connect before close.")
    queue_high_water: int = Field(
        256 * 1024, description="Outbound bytes above which a client counts as slow."
    )
    queue_max_bytes: int = Field(
        4 * 1024 * 1024, description="Outbound bytes at which a client is dropped at once."
    )
    slow_timeout: float = Field(
        5.0, description="Seconds a client may stay above the high-water mark."
    )
    max_channels: int = Field(128, description="Subscriptions allowed per connection.")
    max_connections: int = Field(20000, description="Connections allowed per hub process.")
    history_limit: int = Field(
        1000, description="Most publications returned by one history or recovery."
    )
    presence_ttl: float = Field(60.0, description="Seconds a presence entry lives unrefreshed.")


class BusSettings(BaseModel):
    """Channel history and Redis keys."""

    history_size: int = Field(1000, description="Publications kept per channel.")
    history_ttl: int = Field(3600, description="Seconds a channel's history is kept.")
    meta_ttl: int = Field(
        7 * 24 * 3600, description="Seconds a channel's epoch and offset outlive activity."
    )
    redis_prefix: str = Field("hub", description="Prefix of every Redis key the hub writes.")
    reconnect_max_delay: float = Field(
        5.0, description="Longest wait between Redis reconnect attempts."
    )


class ApiKey(BaseModel):
    """An external system allowed to push events."""

    id: str
    name: str
    secret: SecretStr
    org: str = Field(description="Org subtree this system may publish into.")


class IngestSettings(BaseModel):
    """External ingest (``POST /api/v1/events``)."""

    signature_window: int = Field(300, description="Seconds a signed request stays valid.")
    max_body_bytes: int = Field(65536, description="Largest accepted request body.")
    idempotency_ttl: int = Field(24 * 3600, description="Seconds an Idempotency-Key is kept.")


class OutboxSettings(BaseModel):
    """The transactional outbox relay."""

    poll_interval: float = Field(1.0, description="Seconds between relay sweeps when idle.")
    batch_size: int = Field(200, description="Outbox rows published per sweep.")
    enabled: bool = Field(True, description="Run the relay in this process.")
    retry_max_delay: float = Field(10.0, description="Longest back-off after a failed publish.")


class MqttSettings(BaseModel):
    """The grid phones' MQTT broker (adapters/mqtt)."""

    enabled: bool = Field(True, description="Take grid phones' pings over MQTT.")
    client_id: str = Field("grid-hub", description="MQTT client id (unique per hub process).")
    protocol: Literal["5", "3.1.1"] = Field("5", description="MQTT protocol version.")
    username: str | None = Field(None, description="Broker user name.")
    password: SecretStr | None = Field(None, description="Broker password.")
    tls_ca_file: OptionalPath = Field(None, description="CA bundle; set it to use TLS.")
    tls_cert_file: OptionalPath = Field(None, description="Client certificate (mutual TLS).")
    tls_key_file: OptionalPath = Field(None, description="Client key (mutual TLS).")
    keepalive: int = Field(30, description="MQTT keepalive (s).")
    session_expiry: int = Field(
        7 * 24 * 3600, description="Seconds the broker keeps our session while we are away."
    )
    shared_group: str | None = Field(
        None, description="Shared-subscription group ($share/<group>/...) for several hubs."
    )
    topic_prefix: str = Field("", description="Prefix before grid/... and owntracks/... topics.")
    receive_maximum: int = Field(
        8000, description="Unacknowledged QoS 1 messages the broker may send us at once."
    )
    batch_size: int = Field(4000, description="Messages persisted per batch.")
    batch_interval: float = Field(0.05, description="Longest wait (s) before a batch is flushed.")
    reconnect_max_delay: float = Field(10.0, description="Longest wait between reconnects.")
    embedded_host: str = Field("127.0.0.1", description="Embedded broker address.")
    embedded_port: int = Field(
        1883, description="Embedded broker port; 0 or a taken port: a free one is picked."
    )


class LocationSettings(BaseModel):
    """The grid workers' position pipeline."""

    grids_file: Path = Field(
        PROJECT_ROOT / "config" / "grids.geojson", description="Org-node polygons (GeoJSON)."
    )
    live_interval: float = Field(
        1.0, description="Seconds between live worker.position pushes per worker."
    )
    max_skew: float = Field(300.0, description="Seconds a fix may lie in the future.")
    max_age: float = Field(7 * 24 * 3600.0, description="Oldest fix accepted (s).")
    max_payload_bytes: int = Field(4096, description="Largest accepted phone message.")
    boundary_max_accuracy_m: float = Field(
        50.0, description="Fixes less accurate than this (m) are ignored at grid boundaries."
    )
    boundary_margin_m: float = Field(
        40.0, description="Distance (m) past a grid boundary that counts as clearly across."
    )
    boundary_confirm_count: int = Field(
        3, description="Consecutive clear fixes needed for worker.left_grid/entered_grid."
    )
    boundary_confirm_s: float = Field(10.0, description="Seconds those confirming fixes must span.")
    offline_after: float = Field(
        300.0, description="Seconds of silence after which a worker on duty is offline."
    )
    offline_check_interval: float = Field(
        5.0, description="Seconds between checks for silent workers."
    )
    unknown_worker_recheck: float = Field(
        30.0, description="Seconds before an unknown worker id is looked up in the DB again."
    )
    track_default_simplify_m: float = Field(
        5.0, description="Track simplification tolerance (m) when the request gives none."
    )
    track_max_points: int = Field(
        200_000, description="Most unsimplified points one track request may return."
    )
    track_max_gap_s: float = Field(
        600.0, description="Silences longer than this (s) count neither inside nor outside."
    )


class SmsSettings(BaseModel):
    """Outbound and inbound SMS (hub/sms, adapters/sms)."""

    provider: Literal["console", "http", "smpp"] = Field(
        "console", description="console (log and store), http (Jasmin-compatible) or smpp."
    )
    sender: str = Field("10690000", description="Our service number (source address).")
    max_segments: int = Field(10, description="Longest text accepted, in segments.")
    rate_per_second: float = Field(20.0, description="Segments submitted per second, at most.")
    batch_size: int = Field(50, description="Messages claimed per sender sweep.")
    poll_interval: float = Field(1.0, description="Seconds between sender sweeps when idle.")
    retry_min_delay: float = Field(2.0, description="First back-off after a temporary error (s).")
    retry_max_delay: float = Field(300.0, description="Longest back-off between attempts (s).")
    max_attempts: int = Field(20, description="Attempts before a message is failed for good.")
    sending_timeout: float = Field(
        120.0,
        description="Seconds after which a claimed message with no provider id is sent again.",
    )
    submit_timeout: float = Field(30.0, description="Seconds one submission may take.")
    event_org: str = Field("d01", description="Org node whose channels get sms.* events.")
    gateway_url: str = Field(
        "http://127.0.0.1:1401", description="Jasmin-compatible HTTP API base URL (http)."
    )
    username: str = Field("hub", description="HTTP gateway user name.")
    password: SecretStr = Field(SecretStr(""), description="HTTP gateway password.")
    callback_base_url: str = Field(
        "http://127.0.0.1:8000",
        description="This hub's URL as the gateway reaches it, for delivery reports (http).",
    )
    callback_token: SecretStr | None = Field(
        None, description="If set, gateway callbacks must carry ?token=<it>."
    )
    smpp_host: str = Field("127.0.0.1", description="SMSC host (smpp).")
    smpp_port: int = Field(2775, description="SMSC port (smpp).")
    system_id: str = Field("hub", description="SMPP system_id.")
    smpp_password: SecretStr = Field(SecretStr(""), description="SMPP password.")
    system_type: str = Field("", description="SMPP system_type.")
    window: int = Field(10, description="Outstanding submit_sm PDUs allowed (smpp).")
    enquire_link_interval: float = Field(30.0, description="Seconds between enquire_link.")
    response_timeout: float = Field(10.0, description="Seconds the SMSC has to answer a PDU.")
    reconnect_max_delay: float = Field(30.0, description="Longest wait between SMPP reconnects.")
    citizen_cases: bool = Field(
        True, description="An SMS from a citizen to the service number becomes a case."
    )
    citizen_case_org: str = Field("d01", description="Org node citizens' SMS cases belong to.")
    case_sms: bool = Field(
        True, description="Text a case's assignee on assignment, supervision and overdue."
    )

    @model_validator(mode="after")
    def _sending_outlives_submit(self) -> SmsSettings:
        # A claim must outlive any submission, or a slow one would be resent while running.
        if self.sending_timeout <= self.submit_timeout:
            raise ValueError("sms.sending_timeout must exceed sms.submit_timeout")
        return self


class NoticeSettings(BaseModel):
    """Notices (通知公告)."""

    sms_fallback_after: float = Field(
        1800.0,
        description="Seconds an urgent notice may stay unread before it goes by SMS (0: never).",
    )
    sms_fallback_interval: float = Field(
        30.0, gt=0, description="Seconds between SMS fallback sweeps."
    )


class CaseSettings(BaseModel):
    """Cases: categories and time limits, supervision sweeps, attachments."""

    categories_file: Path = Field(
        PROJECT_ROOT / "config" / "case_categories.json",
        description="Category tree and time limits per category and priority (JSON).",
    )
    due_soon_fraction: float = Field(
        0.8, gt=0, lt=1, description="Share of the time limit after which a case is due soon."
    )
    sweep_interval: float = Field(
        30.0, gt=0, description="Seconds between deadline sweeps (due soon / overdue)."
    )
    attachments_dir: Path = Field(
        PROJECT_ROOT / "var" / "attachments", description="Where case attachments are stored."
    )
    max_attachment_bytes: int = Field(
        20 * 1024 * 1024, description="Largest accepted attachment (bytes)."
    )
    max_attachments: int = Field(50, description="Most attachments per case.")


class CitymgmtSettings(BaseModel):
    """The smart city-management system (Open311 GeoReport v2 interchange)."""

    enabled: bool = Field(False, description="Exchange cases with the city-management system.")
    api_key: str = Field(
        "demo-citymgmt", description="Id of the api_keys entry its webhook signs with."
    )
    base_url: str | None = Field(
        None, description="Its Open311 endpoint (updates are POSTed there); empty: no pushes."
    )
    push_secret: SecretStr = Field(
        SecretStr(""), description="HMAC secret we sign our pushes with (empty: unsigned)."
    )
    org: str = Field("d01", description="Org subtree its cases belong to.")
    poll: bool = Field(False, description="Poll its feeds instead of waiting for pushes.")
    poll_interval: float = Field(60.0, description="Seconds between polls.")
    timeout: float = Field(10.0, description="Seconds one request to it may take.")
    max_attempts: int = Field(12, description="Tries before an update is dead-lettered.")
    retry_min_delay: float = Field(1.0, description="First retry delay (s).")
    retry_max_delay: float = Field(300.0, description="Longest retry delay (s).")


class CameraSettings(BaseModel):
    """Public-security cameras: the registry (hub/cameras) and the media plane (streams/)."""

    cameras_file: OptionalPath = Field(
        PROJECT_ROOT / "config" / "cameras.json",
        description="Cameras created at start if missing (JSON); empty: none.",
    )
    alarm_case_rules: dict[str, str] = Field(
        default_factory=dict,
        description="Camera alarm kind → case category: such alarms also report a case"
        ' (e.g. {"fire": "safety.fire"}).',
    )
    ptz_timeout: float = Field(5.0, description="Seconds one ONVIF PTZ request may take.")
    ptz_connect_timeout: float = Field(
        10.0, description="Seconds signing in to a camera's ONVIF services may take."
    )
    ptz_session_ttl: float = Field(
        300.0, description="Seconds an idle ONVIF PTZ connection is kept for reuse."
    )
    ptz_max_moves_per_second: float = Field(
        10.0, description="PTZ moves accepted per camera and second (more: 429)."
    )


class MediaSettings(BaseModel):
    """The media plane (streams/): camera pulls, WHEP live view, snapshots, recordings."""

    idle_timeout: float = Field(
        10.0, description="Seconds a camera pull keeps running after its last viewer left."
    )
    open_timeout: float = Field(10.0, description="Seconds to open a camera's RTSP session.")
    read_timeout: float = Field(
        5.0, description="Seconds without data before a camera counts as offline."
    )
    rtsp_transport: Literal["tcp", "udp"] = Field("tcp", description="RTSP transport.")
    reconnect_min_delay: float = Field(0.5, description="First wait (s) before reconnecting.")
    reconnect_max_delay: float = Field(30.0, description="Longest wait (s) between reconnects.")
    stable_after: float = Field(
        30.0, description="Seconds a camera session must last to reset the reconnect backoff."
    )
    max_viewers_per_camera: int = Field(50, description="Live viewers allowed per camera.")
    viewer_queue: int = Field(
        150, description="Packets queued per viewer before it is skipped to the next keyframe."
    )
    ready_timeout: float = Field(
        10.0, description="Seconds a viewer request waits for the camera to deliver."
    )
    connect_timeout: float = Field(
        15.0, description="Seconds a WHEP viewer has to connect before it is closed."
    )
    max_sdp_bytes: int = Field(32768, description="Largest accepted WHEP SDP offer (bytes).")
    snapshot_cache_seconds: float = Field(2.0, description="Seconds a snapshot is reused.")
    recordings_dir: Path = Field(
        PROJECT_ROOT / "var" / "recordings", description="Where camera recordings (MP4) are kept."
    )
    max_record_seconds: float = Field(300.0, description="Longest recording one request may ask.")
    alarm_record_seconds: float = Field(
        30.0, description="Seconds recorded when an alarm names a camera (0: none)."
    )
    max_active_recordings: int = Field(8, description="Recordings running at once, hub-wide.")
    retention_days: float = Field(30.0, description="Recordings older than this are deleted.")
    retention_max_bytes: int = Field(
        20 * 1024**3, description="Total size of the recordings; the oldest go beyond it."
    )
    retention_interval: float = Field(
        600.0, description="Seconds between two sweeps of the recording retention."
    )
    force_transcode: bool = Field(
        False,
        description="Transcode every live viewer's stream, even H.264 cameras (benchmarks,"
        " tests); otherwise only cameras browsers cannot play (e.g. H.265) are transcoded.",
    )
    transcode_bitrate: int = Field(
        2_000_000, description="Bitrate (bit/s) of a transcoded camera stream (H.264)."
    )
    transcode_gop: int = Field(50, description="Frames between keyframes of a transcoded stream.")
    transcode_preset: str = Field("ultrafast", description="libx264 preset of transcoding.")


class ConsultationSettings(BaseModel):
    """Remote video consultations (远程会商): room limits, invitations, recordings."""

    max_participants: int = Field(
        9, ge=2, description="Participants allowed per room (host and cameras included)."
    )
    max_rooms: int = Field(20, ge=1, description="Open consultation rooms allowed per hub.")
    max_sdp_bytes: int = Field(65536, description="Largest accepted SDP offer of a participant.")
    participant_timeout: float = Field(
        10.0, description="Seconds without media after which a participant is removed as lost."
    )
    invite_sms: bool = Field(True, description="Allow SMS invitations to offline invitees.")
    recordings_dir: Path = Field(
        PROJECT_ROOT / "var" / "consultations", description="Where room recordings are kept."
    )
    record: bool = Field(True, description="Record each room's audio and video.")
    retention_days: float = Field(30.0, description="Room recordings older than this are deleted.")
    connect_timeout: float = Field(
        15.0, description="Seconds a participant's connection has to come up before it is dropped."
    )
    force_transcode: bool = Field(
        False,
        description="Decode and re-encode every participant's video instead of forwarding it"
        " (benchmarks); cameras in other profiles are transcoded regardless.",
    )


class Gb28181Device(BaseModel):
    """A device or lower platform allowed its own password (others use the default)."""

    id: str = Field(pattern=r"^[0-9A-Za-z_-]{1,64}$", description="Its 20-digit SIP id.")
    password: SecretStr
    org: str | None = Field(None, description="Org node of its channels (else by CivilCode).")


class Gb28181Settings(BaseModel):
    """GB/T 28181 (adapters/gb28181): the hub as the upper platform that cameras, NVRs and
    lower platforms register to; their channels become cameras."""

    enabled: bool = Field(False, description="Run the GB/T 28181 SIP server.")
    sip_id: str = Field(
        "34020000002000000001",
        pattern=r"^[0-9]{20}$",
        description="The hub's 20-digit SIP id (the platform id devices register to).",
    )
    domain: str = Field(
        "3402000000", pattern=r"^[0-9]{10}$", description="The SIP domain (digest realm)."
    )
    host: str = Field("0.0.0.0", description="Address the SIP server binds (UDP and TCP).")
    port: int = Field(5060, ge=0, le=65535, description="SIP port (UDP and TCP; 0: any).")
    sip_address: str = Field(
        "",
        description="Address devices reach the hub's SIP at (Contact, Via); empty: the bound"
        " address, or this host's outward address when bound to 0.0.0.0.",
    )
    password: SecretStr = Field(
        SecretStr("12345678"), description="Default device password (digest)."
    )
    devices: list[Gb28181Device] = Field(
        default_factory=list, description="Per-device passwords and orgs."
    )
    default_org: str = Field("d01", description="Org of channels no mapping places.")
    civil_code_orgs: dict[str, str] = Field(
        default_factory=dict,
        description="CivilCode prefix → org path (longest prefix wins), e.g."
        ' {"340201": "d01.s01"}.',
    )
    register_expires_max: int = Field(
        3600, description="Longest registration accepted (s); longer requests are cut to it."
    )
    nonce_lifetime: float = Field(300.0, description="Seconds a digest nonce stays valid.")
    keepalive_interval: float = Field(
        60.0, description="Keepalive interval devices are expected to use (s)."
    )
    keepalive_misses: int = Field(
        3, ge=1, description="Missed keepalives after which a device is marked offline."
    )
    catalog_interval: float = Field(
        3600.0, description="Seconds between catalog syncs of an online device."
    )
    catalog_timeout: float = Field(
        30.0, description="Seconds a catalog sync may take before it is given up."
    )
    max_channels_per_device: int = Field(
        20000, description="Largest catalog accepted from one device or platform."
    )
    media_ip: str = Field(
        "",
        description="IP devices send media to (written into the INVITE's SDP); empty: the"
        " SIP address.",
    )
    media_port_min: int = Field(30000, description="Lowest media (RTP) port.")
    media_port_max: int = Field(30499, description="Highest media (RTP) port.")
    media_transport: Literal["tcp_passive", "tcp_active", "udp"] = Field(
        "tcp_passive",
        description="How devices send live media: TCP to the hub (passive), TCP from the"
        " hub (active) or UDP.",
    )
    invite_timeout: float = Field(10.0, description="Seconds a device has to answer an INVITE.")
    media_timeout: float = Field(
        10.0, description="Seconds after the INVITE within which media must arrive (收流超时)."
    )
    request_timeout: float = Field(
        8.0, description="Seconds a request to a device may take (retransmissions included)."
    )
    max_message_bytes: int = Field(65535, description="Largest SIP message accepted.")
    max_tcp_connections: int = Field(2000, description="SIP TCP connections allowed at once.")
    auth_failure_log_interval: float = Field(
        60.0, description="Seconds between two logs of failed registrations of one address."
    )


class CascadeSettings(BaseModel):
    """The hub as a lower platform (下级平台) of the video network's GB/T 28181 gateway: it
    registers, keeps alive, and shares its cameras (catalog, live streams, PTZ, alarms)."""

    enabled: bool = Field(False, description="Register to the upper platform and share cameras.")
    sip_id: str = Field(
        "34020000002000000002",
        pattern=r"^[0-9]{20}$",
        description="The hub's 20-digit SIP id as a lower platform.",
    )
    host: str = Field("0.0.0.0", description="Address the cascade's SIP binds (UDP and TCP).")
    port: int = Field(5062, ge=0, le=65535, description="The cascade's SIP port (0: any).")
    sip_address: str = Field(
        "",
        description="Address the upper platform reaches the hub at (Contact, Via); empty: the"
        " bound address, or this host's outward address when bound to 0.0.0.0.",
    )
    upper_id: str = Field(
        "34020000002000000001", pattern=r"^[0-9]{20}$", description="The upper platform's id."
    )
    upper_domain: str = Field(
        "3402000000", pattern=r"^[0-9]{10}$", description="The upper platform's SIP domain."
    )
    upper_host: str = Field("127.0.0.1", description="The upper platform's SIP address.")
    upper_port: int = Field(5060, ge=1, le=65535, description="The upper platform's SIP port.")
    transport: Literal["udp", "tcp"] = Field("udp", description="SIP transport to the upper.")
    username: str = Field("", description="Digest username; empty: the sip_id.")
    password: SecretStr = Field(SecretStr("12345678"), description="Digest password.")
    register_expires: int = Field(
        3600, ge=2, description="Registration lifetime asked for (s); renewed at three quarters."
    )
    keepalive_interval: float = Field(60.0, gt=0, description="Seconds between keepalives.")
    keepalive_misses: int = Field(
        3, ge=1, description="Unanswered keepalives after which the hub registers again."
    )
    retry_min_delay: float = Field(1.0, gt=0, description="First retry delay when down (s).")
    retry_max_delay: float = Field(60.0, gt=0, description="Longest retry delay (s).")
    request_timeout: float = Field(
        8.0, gt=0, description="Seconds a request to the upper may take (with retransmissions)."
    )
    civil_codes: dict[str, str] = Field(
        default_factory=dict,
        description="Org path prefix → CivilCode of its cameras (longest prefix wins), e.g."
        ' {"d01": "340201"}.',
    )
    default_civil_code: str = Field(
        "", description="CivilCode of cameras no mapping places; empty: the domain's first 6."
    )
    channel_ids: dict[str, str] = Field(
        default_factory=dict,
        description="Camera id → 20-digit channel id shown upward; GB/T 28181 cameras keep"
        " their own; others get <domain>131<7 digits from their id> unless listed.",
    )
    catalog_batch: int = Field(
        20, ge=1, le=200, description="Catalog items per Response message (SumNum split)."
    )
    media_ip: str = Field(
        "", description="IP written into our SDP answers; empty: the SIP address."
    )
    media_port_min: int = Field(30500, description="Lowest port of cascaded streams.")
    media_port_max: int = Field(30999, description="Highest port of cascaded streams.")
    max_streams: int = Field(64, ge=1, description="Cascaded live streams at once.")
    connect_timeout: float = Field(
        10.0, gt=0, description="Seconds a TCP media connection may take to open."
    )
    max_message_bytes: int = Field(65535, description="Largest SIP message accepted.")


class VideonetTerminal(BaseModel):
    """A video network terminal the console offers in its invite dialog."""

    uri: str = Field(description="Its SIP URI, e.g. sip:1001@gateway.")
    name: str = Field("", description="What the console shows.")
    org: str = Field("", description="Where it stands (org path), for grouping.")


class CallSettings(BaseModel):
    """Video calls between consultation rooms and video network terminals through the
    network's SIP gateway."""

    enabled: bool = Field(False, description="Accept and place calls through the gateway.")
    host: str = Field("0.0.0.0", description="Address the calls' SIP binds (UDP and TCP).")
    port: int = Field(5064, ge=0, le=65535, description="The calls' SIP port (0: any).")
    sip_address: str = Field(
        "",
        description="Address the gateway reaches the hub at (Contact, Via, SDP); empty: the"
        " bound address, or this host's outward address when bound to 0.0.0.0.",
    )
    gateway_host: str = Field("127.0.0.1", description="The SIP gateway's address.")
    gateway_port: int = Field(5060, ge=1, le=65535, description="The SIP gateway's port.")
    username: str = Field(
        "gridhub",
        description="Digest username: ours towards the gateway, and the one its"
        " calls in must authenticate with.",
    )
    password: SecretStr = Field(SecretStr("12345678"), description="Digest password.")
    realm: str = Field("gridhub", description="Realm of the challenges we send.")
    local_user: str = Field("gridhub", description="User part of our From and Contact.")
    dial_domain: str = Field(
        "",
        description="Host part added to a terminal number dialled without one; empty: the"
        " gateway address.",
    )
    terminals: list[VideonetTerminal] = Field(
        default_factory=list, description="Terminals listed in the console's invite dialog."
    )
    media_port_min: int = Field(31000, description="Lowest RTP port of calls (even).")
    media_port_max: int = Field(31499, description="Highest RTP port of calls.")
    rtp_timeout: float = Field(
        10.0, gt=0, description="Seconds without RTP from a terminal before its call is dropped."
    )
    ring_timeout: float = Field(
        45.0, gt=0, description="Seconds a called terminal may ring before we give up."
    )
    gateway_check_interval: float = Field(
        10.0, gt=0, description="Seconds between OPTIONS pings of the gateway during calls."
    )
    gateway_misses: int = Field(
        3, ge=1, description="Unanswered pings after which the gateway counts as lost."
    )
    request_timeout: float = Field(8.0, gt=0, description="Seconds a SIP request may take.")
    keyframe_interval: float = Field(
        1.0, gt=0, description="Fewest seconds between two keyframe requests to a terminal."
    )
    max_calls: int = Field(16, ge=1, description="Terminal calls at once.")
    max_message_bytes: int = Field(65535, description="Largest SIP message accepted.")


class VideonetSettings(BaseModel):
    """The governance video network (综治视联网, adapters/videonet)."""

    cascade: CascadeSettings = Field(default_factory=CascadeSettings)
    calls: CallSettings = Field(default_factory=CallSettings)


class Settings(BaseSettings):
    """All hub settings."""

    model_config = SettingsConfigDict(
        env_prefix="HUB_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    host: str = Field("127.0.0.1", description="Address the HTTP/WebSocket server binds.")
    port: int = Field(8000, description="Port of the HTTP/WebSocket server.")
    node_name: str = Field("", description="Name of this hub process (default: host:pid).")
    database_url: str = Field(
        "sqlite+aiosqlite:///var/hub.db",
        description="SQLAlchemy async URL (sqlite+aiosqlite or postgresql+asyncpg).",
    )
    redis_url: str | None = Field(
        None, description="Redis URL for the bus; empty: in-process memory bus."
    )
    jwt_secret: SecretStr = Field(
        SecretStr(DEV_JWT_SECRET), description="HS256 secret for user tokens."
    )
    jwt_algorithm: Literal["HS256", "RS256"] = Field("HS256", description="Token algorithm.")
    jwt_public_key_file: OptionalPath = Field(None, description="PEM public key for RS256 tokens.")
    jwt_ttl: int = Field(12 * 3600, description="Lifetime of tokens minted by the hub (s).")
    org_tree_file: Path = Field(
        PROJECT_ROOT / "config" / "org_tree.json", description="Org tree loaded at start."
    )
    users_file: OptionalPath = Field(
        PROJECT_ROOT / "config" / "demo_users.json",
        description="Users seeded at start (demo data); empty: none.",
    )
    demo_data: bool = Field(True, description="Seed the demo org tree and users.")
    log_format: Literal["console", "json"] = Field("console", description="Log renderer.")
    log_level: str = Field("INFO", description="Log level.")
    shutdown_timeout: float = Field(10.0, description="Seconds each shutdown stage may take.")
    mqtt_url: str | None = Field(
        None,
        description="Broker for grid phones (mqtt:// or mqtts://); empty: embedded broker.",
    )
    api_keys: list[ApiKey] = Field(default_factory=list, description="External systems.")
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    bus: BusSettings = Field(default_factory=BusSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    locations: LocationSettings = Field(default_factory=LocationSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    notices: NoticeSettings = Field(default_factory=NoticeSettings)
    cases: CaseSettings = Field(default_factory=CaseSettings)
    citymgmt: CitymgmtSettings = Field(default_factory=CitymgmtSettings)
    cameras: CameraSettings = Field(default_factory=CameraSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    consultations: ConsultationSettings = Field(default_factory=ConsultationSettings)
    gb28181: Gb28181Settings = Field(default_factory=Gb28181Settings)
    videonet: VideonetSettings = Field(default_factory=VideonetSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = Path(os.environ.get("HUB_CONFIG", str(DEFAULT_CONFIG_FILE)))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @property
    def using_dev_secret(self) -> bool:
        """True while the shipped development JWT secret is in use."""
        return self.jwt_secret.get_secret_value() == DEV_JWT_SECRET

    def resolved_database_url(self) -> str:
        """The database URL with a relative SQLite path anchored at the project root."""
        url = self.database_url
        prefix = "sqlite+aiosqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            rel = url[len(prefix) :]
            if rel and rel != ":memory:":
                path = PROJECT_ROOT / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                return prefix + str(path)
        return url


def load_settings(**overrides: Any) -> Settings:
    """Load settings; keyword overrides win over environment and file (used by tests)."""
    return Settings(**overrides)
