"""The city-management adapter: owns the inbound applier, the delivery queue and its
sender, and (in polling mode) the feed poller.

Built when ``citymgmt.enabled``; its ``on_change`` hook is registered with the case
service at construction, so no change of a case it owns goes unqueued even while the
adapter is still starting. ``ready`` says the adapter runs; the remote system being down
does not take the hub out of service (its updates wait in the queue, visible in metrics).
"""

from __future__ import annotations

import asyncio

import structlog

from adapters.citymgmt.client import Open311Client
from adapters.citymgmt.feeds import CaseFeed
from adapters.citymgmt.inbound import RequestApplier
from adapters.citymgmt.metrics import CitymgmtCollector, CitymgmtCounters
from adapters.citymgmt.outbound import DeliveryQueue
from adapters.citymgmt.poller import FeedPoller
from hub.cases.service import CaseService
from hub.config import Settings
from hub.metrics import HubMetrics
from hub.tasks import TaskRegistry, cancel_and_wait

log = structlog.get_logger(__name__)


class CitymgmtAdapter:
    """Adapter protocol (hub/state.py) for the smart city-management system."""

    name = "citymgmt"

    def __init__(
        self,
        settings: Settings,
        cases: CaseService,
        tasks: TaskRegistry,
        metrics: HubMetrics,
        *,
        skip_locked: bool,
    ) -> None:
        self.settings = settings.citymgmt
        self.api_keys = settings.api_keys
        self.counters = CitymgmtCounters()
        self.cases = cases
        self.applier = RequestApplier(cases, self.settings, self.counters)
        self.queue = DeliveryQueue(
            cases.sessions, self.settings, self.counters, skip_locked=skip_locked
        )
        cases.on_change.append(self.queue.on_change)
        self.feeds = CaseFeed(cases.sessions)
        metrics.registry.register(CitymgmtCollector(self.counters))
        metrics.add_refresher(self.queue.refresh_counts)
        self._tasks = tasks
        self._running: list[asyncio.Task[None]] = []
        self.client: Open311Client | None = None
        self.poller: FeedPoller | None = None

    @property
    def ready(self) -> bool:
        """The sender (and poller) run."""
        return bool(self._running) and not any(t.done() for t in self._running)

    async def start(self) -> None:
        """Start the sender and, in polling mode, the poller (no remote call needed)."""
        if self._running:
            return
        s = self.settings
        if s.base_url:
            self.client = Open311Client(s.base_url, s.push_secret.get_secret_value(), s.timeout)
            self.queue.client = self.client
        self._running.append(self._tasks.spawn(self.queue.run(), name="citymgmt sender"))
        if s.poll and self.client is not None:
            self.poller = FeedPoller(
                self.cases.sessions, self.client, self.applier, self.counters, s.poll_interval
            )
            self._running.append(self._tasks.spawn(self.poller.run(), name="citymgmt poller"))
        log.info("city-management adapter started", push=bool(s.base_url), poll=s.poll)

    async def stop(self) -> None:
        """Stop the tasks and close the client; safe to call twice."""
        running, self._running = self._running, []
        await cancel_and_wait(running)
        self.queue.client = None
        if self.client is not None:
            await self.client.close()
            self.client = None
