"""Typed application keys: `app[store_key]` is checked by mypy."""

from __future__ import annotations

from aiohttp import web
from attrs import define
from prometheus_client import CollectorRegistry

from db.events import EventBus
from db.repositories import Store
from web.config import Config
from web.metrics import Metrics


@define
class Lifecycle:
    draining: bool = False


config_key = web.AppKey("config", Config)
store_key = web.AppKey("store", Store)
bus_key = web.AppKey("bus", EventBus)
lifecycle_key = web.AppKey("lifecycle", Lifecycle)
metrics_key = web.AppKey("metrics", Metrics)
registry_key = web.AppKey("prometheus_registry", CollectorRegistry)
