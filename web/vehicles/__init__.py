"""Vehicles and fleets: the vehicles API (SPEC §3), fleets from a fleet config (SPEC §5)."""
