"""Vehicles and fleets: the vehicles API (SPEC §3), fleets from a fleet config (SPEC §5)."""

from web.vehicles.fleets import FleetService, fleet_service_key, read_fleet_file
from web.vehicles.views import setup_vehicle_routes

__all__ = ["FleetService", "fleet_service_key", "read_fleet_file", "setup_vehicle_routes"]
