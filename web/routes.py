"""Every URL the server answers, in one table."""

from __future__ import annotations

from aiohttp import web

from web import health, openapi
from web.auth import views as auth
from web.cluster import views as cluster
from web.commands import stream
from web.commands import views as commands
from web.dashboard import views as dashboard
from web.sovd_api import data, discovery, faults, locks, modes, operations, subscriptions
from web.sovd_api.common import COMPONENT_PATH as COMPONENT
from web.sovd_api.common import SOVD_PATH as SOVD
from web.sovd_api.common import V1_PATH as V1
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
    router.add_get("/api/v1/cluster", cluster.get_cluster)
    router.add_get("/api/v1/fleets", vehicles.list_fleets)
    router.add_post("/api/v1/fleets", vehicles.spawn_fleets)
    router.add_delete("/api/v1/fleets/{name}", vehicles.delete_fleet)

    router.add_get("/ws/responses/{command_id}", stream.command_stream)
    router.add_get("/ws/vehicles/{vehicle_id}", stream.vehicle_feed)
    router.add_get("/ws/fleet", stream.fleet_feed)

    router.add_get("/", dashboard.index)
    router.add_get("/dashboard", dashboard.to_index)
    router.add_get("/dashboard/", dashboard.index)
    router.add_get("/dashboard/static/{name}", dashboard.static_file)
    router.add_get("/dashboard/static/js/{name}", dashboard.script_file)
    router.add_get("/api/v1/stats", dashboard.fleet_stats)

    router.add_get("/api/v1/openapi.json", openapi.openapi_json)
    router.add_get("/api/v1/docs", openapi.docs_page)

    setup_sovd_routes(router)


def setup_sovd_routes(router: web.UrlDispatcher) -> None:
    """Every vehicle's standard SOVD server."""
    router.add_get(SOVD + "/version-info", discovery.version_info)
    router.add_get(V1, discovery.root)
    router.add_get(V1 + "/", discovery.root)
    router.add_get(V1 + "/components", discovery.list_components)
    router.add_get(COMPONENT, discovery.get_component)
    router.add_get(COMPONENT + "/subcomponents", discovery.empty_relation)
    router.add_get(COMPONENT + "/hosts", discovery.empty_relation)
    router.add_get(COMPONENT + "/belongs-to", discovery.component_belongs_to)
    router.add_get(V1 + "/areas", discovery.list_areas)
    router.add_get(V1 + "/areas/{area_id}", discovery.get_area)
    router.add_get(V1 + "/areas/{area_id}/contains", discovery.area_contains)
    router.add_get(V1 + "/areas/{area_id}/related-components", discovery.area_contains)
    router.add_get(V1 + "/areas/{area_id}/subareas", discovery.area_subareas)
    router.add_get(V1 + "/apps", discovery.list_empty_collection)
    router.add_get(V1 + "/functions", discovery.list_empty_collection)

    router.add_get(COMPONENT + "/faults", faults.list_faults)
    router.add_delete(COMPONENT + "/faults", faults.clear_faults)
    router.add_get(COMPONENT + "/faults/{fault_code}", faults.get_fault)
    router.add_delete(COMPONENT + "/faults/{fault_code}", faults.clear_fault)

    router.add_get(COMPONENT + "/data", data.list_data)
    router.add_get(COMPONENT + "/data-categories", data.list_categories)
    router.add_get(COMPONENT + "/data-groups", data.list_groups)
    router.add_get(COMPONENT + "/data/{data_id}", data.read_data)
    router.add_put(COMPONENT + "/data/{data_id}", data.write_data)
    router.add_get(COMPONENT + "/configurations", data.list_configurations)
    router.add_get(COMPONENT + "/configurations/{data_id}", data.read_configuration)
    router.add_put(COMPONENT + "/configurations/{data_id}", data.write_configuration)

    # operations and modes
    operation = COMPONENT + "/operations/{operation_id}"
    execution = operation + "/executions/{execution_id}"
    router.add_get(COMPONENT + "/operations", operations.list_operations)
    router.add_get(operation, operations.get_operation)
    router.add_post(operation + "/executions", operations.start_execution)
    router.add_get(operation + "/executions", operations.list_executions)
    router.add_get(execution, operations.get_execution)
    router.add_put(execution, operations.control_execution)
    router.add_delete(execution, operations.delete_execution)
    router.add_get(COMPONENT + "/modes", modes.list_modes)
    router.add_get(COMPONENT + "/modes/session", modes.get_session)
    router.add_put(COMPONENT + "/modes/session", modes.set_session)
    router.add_get(COMPONENT + "/modes/security", modes.get_security)
    router.add_put(COMPONENT + "/modes/security", modes.set_security)

    # locks and cyclic subscriptions
    for entity in (V1, COMPONENT):
        router.add_get(entity + "/locks", locks.list_locks)
        router.add_post(entity + "/locks", locks.acquire_lock)
        router.add_get(entity + "/locks/{lock_id}", locks.get_lock)
        router.add_put(entity + "/locks/{lock_id}", locks.extend_lock)
        router.add_delete(entity + "/locks/{lock_id}", locks.release_lock)
    subscription = COMPONENT + "/cyclic-subscriptions/{subscription_id}"
    router.add_get(COMPONENT + "/cyclic-subscriptions", subscriptions.list_subscriptions)
    router.add_post(COMPONENT + "/cyclic-subscriptions", subscriptions.create_subscription)
    router.add_get(subscription, subscriptions.get_subscription)
    router.add_delete(subscription, subscriptions.delete_subscription)
    router.add_get(subscription + "/events", subscriptions.stream_events)
