"""Prometheus metrics. Counts come from the database at scrape time, so every web and worker
process reports the same truth without a multiprocess registry."""

from __future__ import annotations

from collections.abc import Iterator

from flask import current_app
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from connector import delivery_audit
from connector.db import session
from connector.models import AICall, Escalation, Handoff, WebhookDelivery


class DatabaseCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        delivery_audit.flush_quietly(current_app.extensions["baton"].redis)  # rows still queued
        try:
            escalations = session.scalar(select(func.count(Escalation.id))) or 0
            states = session.execute(select(Handoff.state, func.count()).group_by(Handoff.state))
            deliveries = session.execute(
                select(WebhookDelivery.outcome, func.count()).group_by(WebhookDelivery.outcome)
            )
            tokens = session.execute(
                select(
                    AICall.purpose, func.sum(AICall.input_tokens), func.sum(AICall.output_tokens)
                ).group_by(AICall.purpose)
            )
        except Exception:
            session.rollback()
            return
        yield CounterMetricFamily("baton_escalations", "Escalations recorded", value=escalations)
        handoffs = GaugeMetricFamily("baton_handoffs", "Handoffs by state", labels=["state"])
        for state, count in states:
            handoffs.add_metric([state], count)
        yield handoffs
        webhooks = CounterMetricFamily(
            "baton_webhook_deliveries", "Webhook requests by outcome", labels=["outcome"]
        )
        for outcome, count in deliveries:
            webhooks.add_metric([outcome], count)
        yield webhooks
        ai = CounterMetricFamily(
            "baton_ai_tokens",
            "Model tokens by purpose and direction",
            labels=["purpose", "direction"],
        )
        for purpose, tokens_in, tokens_out in tokens:
            ai.add_metric([purpose, "input"], tokens_in or 0)
            ai.add_metric([purpose, "output"], tokens_out or 0)
        yield ai


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(DatabaseCollector())
        self.requests = Counter(
            "baton_http_requests",
            "HTTP requests served by this process",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.webhook_seconds = Histogram(
            "baton_webhook_seconds",
            "Time to answer a webhook (this process)",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
