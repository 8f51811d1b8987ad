"""A hub SIGKILLed in the middle of its SMS queue, as a real subprocess against the test
SMSC: nothing is lost, and only submissions whose answer never got recorded are sent a
second time (the at-least-once window the service documents)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.db.engine import make_engine, make_sessionmaker
from hub.db.models import SmsMessage
from tests.conftest import Backend, backend_settings
from tests.support.hubs import hub_process, settings_env
from tests.support.smsc import TestSmsc

pytestmark = pytest.mark.timeout(120)

COUNT = 20
ANSWERED = 8
WINDOW = 4
POLL = 0.05
WAIT = 60.0


async def _states(database_url: str) -> dict[str, str]:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = await session.execute(select(SmsMessage.id, SmsMessage.state))
            return {message_id: state for message_id, state in rows.all()}
    finally:
        await engine.dispose()


async def _queue(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            for n in range(COUNT):
                session.add(SmsMessage(id=f"kill-{n:02d}", to=f"1380000{n:04d}",
                                       text=f"kill-{n:02d}", segments=1, coding=0,
                                       state="queued", attempts=0))  # fmt: skip
    finally:
        await engine.dispose()


async def _poll_states(database_url: str, done: object) -> dict[str, str]:
    """Poll the other process's database (a cross-process condition: polling is the way)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        states = await _states(database_url)
        if done(states):  # type: ignore[operator]
            return states
        await asyncio.sleep(POLL)
    raise TimeoutError(f"queue did not reach the expected state: {await _states(database_url)}")


async def test_sigkill_mid_queue_loses_nothing_and_resends_only_unrecorded_submissions(
    backend: Backend, smsc: TestSmsc, tmp_path: Path
) -> None:
    await _queue(backend.database_url)
    smsc.answer_limit = ANSWERED
    env = settings_env(backend_settings(backend))
    sms_env = {
        "HUB_SMS__PROVIDER": "smpp",
        "HUB_SMS__SMPP_PORT": str(smsc.port),
        "HUB_SMS__WINDOW": str(WINDOW),
        "HUB_SMS__BATCH_SIZE": str(WINDOW),
        "HUB_SMS__RATE_PER_SECOND": "1000",
        "HUB_SMS__POLL_INTERVAL": "0.05",
        "HUB_SMS__RESPONSE_TIMEOUT": "4",
        "HUB_SMS__SUBMIT_TIMEOUT": "4",
        "HUB_SMS__SENDING_TIMEOUT": "5",
        "HUB_SMS__RECONNECT_MAX_DELAY": "0.2",
    }
    with hub_process(env, tmp_path) as hub:
        hub.start(**sms_env)
        await hub.wait_ready()
        # The SMSC answers ANSWERED submissions, then holds the next ones unanswered.
        await smsc.wait_for(lambda: len(smsc.submitted) == ANSWERED and len(smsc.held) >= 1)
        before = await _poll_states(
            backend.database_url, lambda s: list(s.values()).count("sent") == ANSWERED
        )
        hub.kill()  # SIGKILL, with submissions outstanding at the SMSC

        sent_before = {k for k, v in before.items() if v == "sent"}
        held = {p.short_message.decode() for p in smsc.held}
        assert held and held.isdisjoint(sent_before)
        assert all(before[k] == "sending" for k in held)

        smsc.answer_limit = None
        hub.start(**sms_env)
        await hub.wait_ready()
        after = await _poll_states(backend.database_url, lambda s: set(s.values()) == {"sent"})
    assert len(after) == COUNT
    counts = Counter(s.pdu.short_message.decode() for s in smsc.submitted)
    counts.update(p.short_message.decode() for p in smsc.held)
    for n in range(COUNT):
        key = f"kill-{n:02d}"
        # Recorded or never submitted before the kill: exactly once. Submitted but not
        # recorded: the SMSC has it, the hub could not know, so it went again (twice).
        assert counts[key] == (2 if key in held else 1), (key, counts[key])
