"""Every URL the server answers, in one table."""

from __future__ import annotations

from aiohttp import web

from web import health, openapi
from web.auth import views as auth
from web.commands import stream
from web.commands import views as commands
from web.vehicles import views as vehicles


def setup_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/healthz", health.live)
    router.add_get("/health/live", health.live)
    router.add_get("/readyz", health.ready)
    router.add_get("/health/ready", health.ready)
    router.add_get("/metrics", health.metrics)

    router.add_post("/api/v1/auth/login", auth.login)
    router.add_post("/api/v1/auth/refresh", auth.refresh)
    router.add_post("/api/v1/auth/logout", auth.logout)
    router.add_get("/api/v1/auth/me", auth.me)
    router.add_get("/api/v1/audit-logs", auth.list_audit_logs)

    router.add_post("/api/v1/commands", commands.submit_command)
    router.add_get("/api/v1/commands", commands.list_commands)
    router.add_get("/api/v1/commands/{command_id}", commands.get_command)
    router.add_get("/api/v1/commands/{command_id}/responses", commands.list_command_responses)
    router.add_get("/api/v1/command-types", commands.list_command_types)

    router.add_get("/api/v1/vehicles", vehicles.list_vehicles)
    router.add_get("/api/v1/vehicles/{vehicle_id}", vehicles.get_vehicle)
    router.add_get("/api/v1/vehicles/{vehicle_id}/status", vehicles.get_vehicle_status)
    router.add_get("/api/v1/fleets", vehicles.list_fleets)
    router.add_post("/api/v1/fleets", vehicles.spawn_fleets)
    router.add_delete("/api/v1/fleets/{name}", vehicles.delete_fleet)

    router.add_get("/ws/responses/{command_id}", stream.command_stream)
    router.add_get("/ws/vehicles/{vehicle_id}", stream.vehicle_feed)
    router.add_get("/ws/fleet", stream.fleet_feed)

    router.add_get("/api/v1/openapi.json", openapi.openapi_json)
    router.add_get("/api/v1/docs", openapi.docs_page)
