"""Composition root: config -> store -> dispatch -> api, and their lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import FastAPI

from callwright import netguard
from callwright.api.app import create_app
from callwright.api.auth import Authenticator
from callwright.api.metrics import Metrics, SipSnapshot
from callwright.api.services import Services
from callwright.clock import Clock, SystemClock
from callwright.config import Settings
from callwright.conversation.agents import AgentFactory
from callwright.conversation.runner import ConversationRunner, SpeechLoader
from callwright.dispatch.dispatcher import Dispatcher
from callwright.dispatch.inbound import InboundCalls
from callwright.dispatch.sandbox import SandboxTransport
from callwright.dispatch.sip import RtpTotals, SipTransport
from callwright.dispatch.transport import Transport
from callwright.dispatch.trunk_registrations import TrunkRegistrations
from callwright.media.answering import AnsweringConfig
from callwright.providers.openai_llm import llm_from_settings
from callwright.providers.speech.registry import speech_from_settings
from callwright.store import crypto, keys, pathways, recordings
from callwright.store.call_cache import CallCache
from callwright.store.db import Database
from callwright.store.migrate import upgrade_async
from callwright.telephony.registration import Registrations, Target
from callwright.telephony.sip_ua import UserAgent
from callwright.webhooks.worker import DeliveryWorker

log = logging.getLogger("callwright.server")

INITIAL_KEY_FILE = "initial-api-key"
LAST_USED_FLUSH_SECONDS = 30.0


def transports_for(settings: Settings) -> list[Transport]:
    found: list[Transport] = []
    if settings.sandbox_numbers:
        found.append(SandboxTransport(settings.sandbox_call_seconds))
    return found


async def bootstrap(db: Database, clock: Clock, data_dir: Path) -> str | None:
    """On an empty store: org ``default`` and one key, written to a 0600 file.
    Returns the new key (to show once) or None."""
    demo = await asyncio.to_thread(DEMO_PATHWAY.read_text)
    async with db.transaction() as session:
        if await keys.any_org(session):
            return None
        org = await keys.get_or_create_org(session, "default", clock.now())
        raw, _ = await keys.create_key(session, org, clock.now())
        # An agent that works with no keys and no LLM: the embedded-mode demo.
        await pathways.create_pathway(
            session,
            org.id,
            "Demo: appointment booking",
            "Runs in the embedded mode (no LLM): try `callwright chat --pathway <id>`.",
            json.loads(demo),
            clock.now(),
        )
    await asyncio.to_thread(write_secret_file, data_dir / INITIAL_KEY_FILE, raw)
    return raw


def tune_gc() -> None:
    """Garbage collection for a call server: what exists at start (modules, models,
    routes) leaves the collector's view, and young-generation passes run less often.
    Every SIP message and audio frame allocates short-lived objects; with thousands of
    live transactions the default thresholds spent about 14% of SIP handling in the
    collector (bench/sip_parse.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


DEMO_PATHWAY = Path(__file__).parent / "pathways" / "library" / "demo_appointment.json"


def write_secret_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    os.chmod(path, 0o600)


@contextlib.asynccontextmanager
async def running_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    migrate: bool = True,
    start_dispatcher: bool = True,
    transports: list[Transport] | None = None,
    metrics: Metrics | None = None,
    warm: bool = False,
) -> AsyncIterator[tuple[Services, str | None]]:
    """The services, started; ``warm`` loads and runs the models in the background at
    start (``serve`` asks for it; tests that never place a call do not)."""
    clock = clock or SystemClock()
    await asyncio.to_thread(settings.data_dir.mkdir, parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    try:
        if migrate:
            await upgrade_async(db.url)
        initial_key = await bootstrap(db, clock, settings.data_dir)
        dispatcher = Dispatcher(
            db,
            clock,
            transports if transports is not None else transports_for(settings),
            worker_id=settings.effective_worker_id,
            max_concurrent=settings.max_concurrent_calls,
            per_org_limit=settings.max_calls_per_org,
            poll_seconds=settings.dispatch_poll_seconds,
            lease_seconds=settings.lease_seconds,
        )
        box = await asyncio.to_thread(crypto.box_for, settings)
        services = Services(
            settings,
            db,
            clock,
            Authenticator(db, clock),
            dispatcher,
            metrics or Metrics(),
            box,
            recordings.local_store(settings.data_dir),
            llm_from_settings(settings),
            CallCache(
                ttl_seconds=settings.call_cache_seconds,
                live_ttl_seconds=settings.call_cache_live_seconds,
            ),
        )
        services.agents = AgentFactory(
            db, clock, box, netguard.OutboundPolicy.parse(settings.outbound_allow), services.llm
        )
        services.runner = ConversationRunner(
            db,
            clock,
            services.agents,
            SpeechLoader(lambda: speech_from_settings(settings)),
            services.recordings,
            services.llm,
            public_url=settings.effective_public_url,
            answering=AnsweringConfig(
                machine_greeting_ms=settings.answering_machine_greeting_ms,
                max_ms=settings.answering_max_ms,
            ),
        )
        unwatch = services.call_cache.watch(db.session_class)
        deliveries = DeliveryWorker.from_settings(settings, db, clock, box)
        sip = SipSide(settings, services) if settings.sip_enabled else None
        if sip is not None:
            dispatcher.transports.append(sip.transport)
            await sip.start()
        if start_dispatcher:  # tests that drive the dispatcher drive deliveries too
            dispatcher.start()
            deliveries.start()
        flusher = asyncio.create_task(_flush_loop(services.auth), name="keys-last-used")
        warmer = asyncio.create_task(warm_models(services), name="models-warm") if warm else None
        try:
            yield services, initial_key
        finally:
            if warmer is not None:
                warmer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await warmer
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            await dispatcher.close()
            if sip is not None:
                await sip.close()
            await services.runner.speech.aclose()
            await deliveries.close()
            if services.llm is not None:
                await services.llm.aclose()
            with contextlib.suppress(Exception):
                await services.auth.flush_last_used()
            unwatch()
    finally:
        await db.close()


async def warm_models(services: Services) -> None:
    """Load the speech back-ends and the embedded brain and run each once, so a burst
    of calls on a fresh server does not queue behind model loading. Never fatal: a
    model that fails here fails again, and is reported, on the call that needs it."""
    started = asyncio.get_running_loop().time()
    parts = [("speech", services.runner.speech.warm)] if services.runner is not None else []
    if services.agents is not None:
        parts.append(("brain", services.agents.warm))
    for name, warm in parts:
        try:
            await warm()
        except Exception:
            log.exception("models.warm_failed", extra={"model": name})
    seconds = asyncio.get_running_loop().time() - started
    log.info("models.ready", extra={"seconds": round(seconds, 2)})


class SipSide:
    """The SIP user agent with its two roles: answering inbound numbers and placing the
    dispatcher's outbound calls through trunks; its counters go to ``/metrics``."""

    def __init__(self, settings: Settings, services: Services) -> None:
        assert services.runner is not None
        self.metrics = services.metrics
        self.rtp = RtpTotals()
        self.inbound = InboundCalls(
            services.db,
            services.clock,
            services.runner.run_call,
            worker_id=settings.effective_worker_id,
            lease_seconds=settings.lease_seconds,
            per_org_limit=settings.max_calls_per_org,
            rtp=self.rtp,
        )
        listen = settings.sip_listen_addresses
        self.ua = UserAgent(
            listen=settings.sip_listen,
            advertise=settings.effective_sip_advertise,
            rtp_ports=settings.rtp_port_range,
            # Media on the interface SIP listens on (all of them for a wildcard).
            rtp_host=listen[0][1] if len(listen) == 1 else None,
            on_call=self.inbound.on_call,
            admit=self.inbound.admit,
            max_calls=settings.sip_max_calls or settings.max_concurrent_calls,
            retry_after=settings.sip_retry_after,
            ring_seconds=settings.sip_ring_seconds,
        )
        self.transport = SipTransport(
            self.ua, services.db, services.box, services.runner.run_call, rtp=self.rtp
        )
        self.registrations = Registrations(
            self.ua,
            [
                Target(
                    user=r.user,
                    host=r.host,
                    port=r.port,
                    transport=r.transport,
                    password=r.password.get_secret_value() if r.password else None,
                    auth_user=r.auth_user,
                    expires=r.expires,
                    contact_user=r.contact_user,
                )
                for r in settings.sip_registrations
            ],
        )
        # The API's auth_mode register trunks: one registration each, kept in step.
        self.trunk_registrations = TrunkRegistrations(
            services.db,
            services.box,
            lambda target: Registrations(self.ua, [target]),
            interval=settings.sip_trunk_sync_seconds,
        )
        self._unwatch: Callable[[], None] | None = None

    def snapshot(self) -> SipSnapshot:
        live = list(self.ua.calls.values())
        return SipSnapshot(
            ua=self.ua.stats.as_dict(),
            rtp=self.rtp.snapshot(live),
            inbound=self.inbound.stats.as_dict(),
            live_calls=len(live),
            registrations=self.registrations.snapshot() | self.trunk_registrations.snapshot(),
        )

    async def start(self) -> None:
        await self.ua.start()
        self.inbound.start()
        self._unwatch = self.metrics.watch_sip(self.snapshot)
        log.info(
            "sip.listening",
            extra={"listen": self.ua.sockets.udp_address or self.ua.sockets.tcp_address},
        )
        self.registrations.start()
        self.trunk_registrations.start()

    async def close(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
        # un-REGISTER while the UA still runs
        await asyncio.gather(self.registrations.close(), self.trunk_registrations.close())
        await self.ua.close()
        await self.inbound.close()


async def _flush_loop(auth: Authenticator) -> None:
    while True:
        await asyncio.sleep(LAST_USED_FLUSH_SECONDS)
        try:
            await auth.flush_last_used()
        except Exception:
            log.exception("could not record key use; will retry")


def build_app(settings: Settings) -> FastAPI:
    """The served app: its lifespan starts and stops the services."""
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running_services(settings, metrics=metrics, warm=True) as (
            services,
            initial_key,
        ):
            app.state.services = services
            if initial_key:
                announce_initial_key(initial_key, settings.data_dir / INITIAL_KEY_FILE)
            yield

    return create_app(settings, metrics, lifespan)


def announce_initial_key(raw: str, path: Path) -> None:
    # Printed, not logged: logs are shipped elsewhere and must never hold a key.
    print(
        "\n  First start: created org 'default' and its API key (shown once):\n\n"
        f"    {raw}\n\n  Also saved to {path} (mode 0600).\n"
        "  A demo agent is ready: `callwright pathways list`, then\n"
        "  `callwright chat --pathway <id>`.\n",
        file=sys.stderr,
        flush=True,
    )


def build_test_app(services: Services) -> FastAPI:
    """An app over already-running services (tests drive the lifecycle themselves)."""
    app = create_app(services.settings, services.metrics)
    app.state.services = services
    return app
