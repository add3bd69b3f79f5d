"""The runtime: one actor per simulated vehicle, and the system that routes to them."""

from actors.actor import ActorStatus, VehicleActor
from actors.latency import (
    DEFAULT_LATENCY,
    FixedLatency,
    LatencyModel,
    LogNormalLatency,
    NormalLatency,
    UniformLatency,
    latency_model,
)
from actors.sink import CommandSink, RecordingSink, TerminalStatus
from actors.system import ActorSystem

__all__ = [
    "DEFAULT_LATENCY",
    "ActorStatus",
    "ActorSystem",
    "CommandSink",
    "FixedLatency",
    "LatencyModel",
    "LogNormalLatency",
    "NormalLatency",
    "RecordingSink",
    "TerminalStatus",
    "UniformLatency",
    "VehicleActor",
    "latency_model",
]
