"""Prometheus metrics, one registry per application so several apps can live in one process."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.request_seconds = Histogram(
            "sovd_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route", "status"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.commands = Counter(
            "sovd_commands_total",
            "Commands that reached a status, by status and command type",
            ["status", "command_name"],
            registry=registry,
        )
        self.active_actors = Gauge(
            "sovd_active_actors", "Vehicle actors with work in their mailbox", registry=registry
        )
        self.mailbox_depth = Gauge(
            "sovd_mailbox_depth", "Commands waiting in all vehicle mailboxes", registry=registry
        )
        self.write_batch_rows = Histogram(
            "sovd_write_batch_rows",
            "Rows per group-commit batch",
            registry=registry,
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500),
        )
        self.websocket_connections = Gauge(
            "sovd_websocket_connections", "Open WebSocket connections", registry=registry
        )
        self.cluster_partitions_owned = Gauge(
            "sovd_cluster_partitions_owned", "Partitions this node owns", registry=registry
        )
        self.cluster_nodes_live = Gauge(
            "sovd_cluster_nodes_live", "Nodes with a recent heartbeat", registry=registry
        )
        self.cluster_stream_lag = Gauge(
            "sovd_cluster_stream_lag",
            "Entries of an owned partition's stream not yet read or not yet acknowledged",
            ["partition"],
            registry=registry,
        )
        self._request_series: dict[tuple[str, str, int], Any] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Records one request; label lookups are cached, they cost more than the sample."""
        key = (method, route, status)
        series = self._request_series.get(key)
        if series is None:
            series = self.request_seconds.labels(method, route, str(status))
            self._request_series[key] = series
        series.observe(seconds)
