"""Catalog of diagnostic trouble codes with their SAE J2012 descriptions.

Codes with a 0 in second place are SAE-defined and mean the same on every vehicle; the few
manufacturer-controlled ones (second character 1-3) name the maker whose meaning we use.
"""

from __future__ import annotations

from types import MappingProxyType

from attrs import frozen

SAE = "SAE J2012"


@frozen
class DtcInfo:
    code: str
    description: str
    defined_by: str = SAE


_ENTRIES = (
    # Powertrain
    DtcInfo("P0010", '"A" Camshaft Position Actuator Circuit (Bank 1)'),
    DtcInfo("P0011", '"A" Camshaft Position - Timing Over-Advanced or System Performance (Bank 1)'),
    DtcInfo("P0016", "Crankshaft Position - Camshaft Position Correlation (Bank 1 Sensor A)"),
    DtcInfo("P0087", "Fuel Rail/System Pressure - Too Low"),
    DtcInfo("P0101", 'Mass or Volume Air Flow "A" Circuit Range/Performance'),
    DtcInfo("P0113", "Intake Air Temperature Sensor 1 Circuit High"),
    DtcInfo("P0117", "Engine Coolant Temperature Sensor 1 Circuit Low"),
    DtcInfo(
        "P0128", "Coolant Thermostat (Coolant Temperature Below Thermostat Regulating Temperature)"
    ),
    DtcInfo("P0133", "O2 Sensor Circuit Slow Response (Bank 1 Sensor 1)"),
    DtcInfo("P0135", "O2 Sensor Heater Circuit (Bank 1 Sensor 1)"),
    DtcInfo("P0171", "System Too Lean (Bank 1)"),
    DtcInfo("P0172", "System Too Rich (Bank 1)"),
    DtcInfo("P0174", "System Too Lean (Bank 2)"),
    DtcInfo("P0234", 'Turbocharger/Supercharger "A" Overboost Condition'),
    DtcInfo("P0299", 'Turbocharger/Supercharger "A" Underboost Condition'),
    DtcInfo("P0300", "Random/Multiple Cylinder Misfire Detected"),
    DtcInfo("P0301", "Cylinder 1 Misfire Detected"),
    DtcInfo("P0302", "Cylinder 2 Misfire Detected"),
    DtcInfo("P0303", "Cylinder 3 Misfire Detected"),
    DtcInfo("P0304", "Cylinder 4 Misfire Detected"),
    DtcInfo("P0325", "Knock Sensor 1 Circuit (Bank 1 or Single Sensor)"),
    DtcInfo("P0335", 'Crankshaft Position Sensor "A" Circuit'),
    DtcInfo("P0340", 'Camshaft Position Sensor "A" Circuit (Bank 1 or Single Sensor)'),
    DtcInfo("P0401", 'Exhaust Gas Recirculation "A" Flow Insufficient Detected'),
    DtcInfo("P0420", "Catalyst System Efficiency Below Threshold (Bank 1)"),
    DtcInfo("P0430", "Catalyst System Efficiency Below Threshold (Bank 2)"),
    DtcInfo("P0442", "Evaporative Emission System Leak Detected (Small Leak)"),
    DtcInfo("P0455", "Evaporative Emission System Leak Detected (Large Leak)"),
    DtcInfo("P0456", "Evaporative Emission System Leak Detected (Very Small Leak)"),
    DtcInfo("P0500", 'Vehicle Speed Sensor "A"'),
    DtcInfo("P0506", "Idle Control System RPM Lower Than Expected"),
    DtcInfo("P0507", "Idle Control System RPM Higher Than Expected"),
    DtcInfo("P0562", "System Voltage Low"),
    DtcInfo("P0563", "System Voltage High"),
    DtcInfo("P0606", "Control Module Processor"),
    DtcInfo("P0700", "Transmission Control System (MIL Request)"),
    DtcInfo("P0715", 'Input/Turbine Speed Sensor "A" Circuit'),
    DtcInfo("P0730", "Incorrect Gear Ratio"),
    DtcInfo("P0741", "Torque Converter Clutch Solenoid Circuit Performance/Stuck Off"),
    DtcInfo("P0841", 'Transmission Fluid Pressure Sensor/Switch "A" Circuit Range/Performance'),
    DtcInfo("P2002", "Diesel Particulate Filter Efficiency Below Threshold (Bank 1)"),
    DtcInfo("P2096", "Post Catalyst Fuel Trim System Too Lean (Bank 1)"),
    DtcInfo("P2187", "System Too Lean at Idle (Bank 1)"),
    DtcInfo("P0A80", "Replace Hybrid/EV Battery Pack"),
    # Chassis
    DtcInfo("C0035", "Left Front Wheel Speed Sensor Circuit"),
    DtcInfo("C0040", "Right Front Wheel Speed Sensor Circuit"),
    DtcInfo("C0045", "Left Rear Wheel Speed Sensor Circuit"),
    DtcInfo("C0050", "Right Rear Wheel Speed Sensor Circuit"),
    DtcInfo("C1418", "Damper RF Circuit Failure", defined_by="Ford"),
    # Body
    DtcInfo("B0001", "Driver Frontal Stage 1 Deployment Control"),
    DtcInfo("B0002", "Driver Frontal Stage 2 Deployment Control"),
    DtcInfo("B0010", "Passenger Frontal Stage 1 Deployment Control"),
    DtcInfo("B1000", "Electronic Control Unit (ECU) Performance", defined_by="General Motors"),
    # Network
    DtcInfo("U0001", "High Speed CAN Communication Bus"),
    DtcInfo("U0073", 'Control Module Communication Bus "A" Off'),
    DtcInfo("U0100", 'Lost Communication With ECM/PCM "A"'),
    DtcInfo("U0101", "Lost Communication With TCM"),
    DtcInfo("U0121", "Lost Communication With Anti-Lock Brake System (ABS) Control Module"),
    DtcInfo("U0140", "Lost Communication With Body Control Module"),
    DtcInfo("U0151", "Lost Communication With Restraints Control Module"),
    DtcInfo("U0155", "Lost Communication With Instrument Panel Cluster (IPC) Control Module"),
    DtcInfo("U0401", 'Invalid Data Received From ECM/PCM "A"'),
    DtcInfo("U0415", "Invalid Data Received From Anti-Lock Brake System (ABS) Control Module"),
)

DTC_CATALOG = MappingProxyType({entry.code: entry for entry in _ENTRIES})

_UNKNOWN_DESCRIPTION = "Manufacturer-specific fault (no description in the catalog)"


def describe_dtc(code: str) -> str:
    entry = DTC_CATALOG.get(code)
    return entry.description if entry else _UNKNOWN_DESCRIPTION


# SOVD severities: 1 fatal, 2 error, 3 warning, 4 information.
SEVERITY_LAMP = 1
_SEVERITY_BY_SYSTEM = {"P": 2, "C": 2, "B": 3, "U": 3}
_WARNING_INDICATOR = 0x80


def severity_of(code: str, status: int) -> int:
    """How severe a stored fault is: fatal when it asks for the warning lamp, otherwise an
    error for powertrain and chassis faults and a warning for body and network ones."""
    if status & _WARNING_INDICATOR:
        return SEVERITY_LAMP
    return _SEVERITY_BY_SYSTEM.get(code[:1], 3)
