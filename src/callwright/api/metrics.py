"""Prometheus metrics. One registry per app so several apps (tests) never collide."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from callwright.store.db import Database
from callwright.store.models import ACTIVE_STATUSES, Call


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.calls_by_status = Gauge(
            "callwright_calls", "Calls in the store by status", ["status"], registry=self.registry
        )
        self.active_calls = Gauge(
            "callwright_active_calls",
            "Calls allocated, ringing or in progress",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "callwright_queue_depth", "Queued calls due now or scheduled", registry=self.registry
        )
        self.local_calls = Gauge(
            "callwright_process_running_calls",
            "Calls this process is running",
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "callwright_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )

    def watch_sip(self, source: Callable[[], SipSnapshot]) -> Callable[[], None]:
        """Export the SIP user agent's and RTP counters, read from ``source`` at each
        scrape; returns the function that stops it."""
        collector = SipCollector(source)
        self.registry.register(collector)
        return lambda: self.registry.unregister(collector)

    async def render(self, db: Database, running: int) -> bytes:
        async with db.session() as session:
            rows = await session.execute(select(Call.status, func.count()).group_by(Call.status))
            counts = {status: int(n) for status, n in rows.all()}
        for status in (
            "queued",
            "allocated",
            "ringing",
            "in-progress",
            "completed",
            "failed",
            "no-answer",
            "busy",
            "canceled",
        ):
            self.calls_by_status.labels(status).set(counts.get(status, 0))
        self.active_calls.set(sum(counts.get(s, 0) for s in ACTIVE_STATUSES))
        self.queue_depth.set(counts.get("queued", 0))
        self.local_calls.set(running)
        return generate_latest(self.registry)


@dataclass(frozen=True, slots=True)
class SipSnapshot:
    """The SIP side's counters at one moment (cumulative since the process started)."""

    ua: dict[str, int]  # telephony.sip_ua.UaStats
    rtp: dict[str, int]  # telephony.rtp_session.RtpStats, summed over calls
    inbound: dict[str, int]  # dispatch.inbound.InboundStats
    live_calls: int
    # telephony.registration.Registrations.snapshot: per AOR, registered (0/1),
    # registrations and failures.
    registrations: dict[str, dict[str, int]] = field(default_factory=dict)


# Dropped input, by kind: the SIP messages and RTP packets that never reach a call.
SIP_DROPPED = {"sip_malformed": "malformed", "sip_response": "dropped_responses"}
RTP_DROPPED = ("malformed", "unknown_payload", "wrong_size", "foreign_source")
INBOUND_REFUSED = ("unknown_number", "no_agent", "blocked", "org_limit")


class SipCollector(Collector):
    def __init__(self, source: Callable[[], SipSnapshot]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        snap = self.source()
        dropped = CounterMetricFamily(
            "callwright_malformed_dropped", "Malformed inputs dropped, by kind", labels=["kind"]
        )
        for kind, name in SIP_DROPPED.items():
            dropped.add_metric([kind], snap.ua.get(name, 0))
        dropped.add_metric(["rtp_packet"], sum(snap.rtp.get(name, 0) for name in RTP_DROPPED))
        yield dropped
        rejected = CounterMetricFamily(
            "callwright_sip_requests_refused",
            "SIP requests refused, by reason: invalid (400/405/...), unknown dialog (481), "
            "overload (503 with Retry-After), and the inbound lookup (404/480/403/486)",
            labels=["reason"],
        )
        rejected.add_metric(["invalid"], snap.ua.get("rejected", 0))
        rejected.add_metric(["unknown_dialog"], snap.ua.get("unknown_dialog", 0))
        rejected.add_metric(["overload"], snap.ua.get("overload", 0))
        for reason in INBOUND_REFUSED:
            rejected.add_metric([reason], snap.inbound.get(reason, 0))
        yield rejected
        calls = CounterMetricFamily(
            "callwright_sip_calls", "SIP calls offered, by direction", labels=["direction"]
        )
        calls.add_metric(["inbound"], snap.ua.get("calls_in", 0))
        calls.add_metric(["outbound"], snap.ua.get("calls_out", 0))
        yield calls
        yield GaugeMetricFamily(
            "callwright_sip_live_calls", "SIP calls ringing or up", value=snap.live_calls
        )
        packets = CounterMetricFamily(
            "callwright_rtp_packets", "RTP packets, by direction", labels=["direction"]
        )
        packets.add_metric(["received"], snap.rtp.get("received", 0))
        packets.add_metric(["sent"], snap.rtp.get("sent", 0))
        yield packets
        rtp_dropped = CounterMetricFamily(
            "callwright_rtp_packets_dropped", "RTP packets dropped, by reason", labels=["reason"]
        )
        for reason in RTP_DROPPED:
            rtp_dropped.add_metric([reason], snap.rtp.get(reason, 0))
        yield rtp_dropped
        digits = CounterMetricFamily(
            "callwright_rtp_digits", "DTMF keys (RFC 4733), by direction", labels=["direction"]
        )
        digits.add_metric(["received"], snap.rtp.get("digits_in", 0))
        digits.add_metric(["sent"], snap.rtp.get("digits_out", 0))
        yield digits
        if snap.registrations:
            yield from _registration_metrics(snap.registrations)


def _registration_metrics(found: dict[str, dict[str, int]]) -> Iterator[Metric]:
    registered = GaugeMetricFamily(
        "callwright_sip_registered",
        "Whether the registrar holds our binding (1) or not (0), by address of record",
        labels=["aor"],
    )
    accepted = CounterMetricFamily(
        "callwright_sip_registrations",
        "REGISTERs the registrar accepted (first ones and refreshes), by address of record",
        labels=["aor"],
    )
    failed = CounterMetricFamily(
        "callwright_sip_registration_failures",
        "Registration attempts that failed (refused, timed out), by address of record",
        labels=["aor"],
    )
    for aor, stats in found.items():
        registered.add_metric([aor], stats.get("registered", 0))
        accepted.add_metric([aor], stats.get("registrations", 0))
        failed.add_metric([aor], stats.get("failures", 0))
    yield registered
    yield accepted
    yield failed
