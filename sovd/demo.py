"""Built-in vehicle profiles and the 10-vehicle demo fleet `sovd-sim serve` starts with.

Names, module roles and engines follow the real models; part numbers follow each maker's
format but are made up.
"""

from __future__ import annotations

from sovd import dids
from sovd.fleet import FleetSpec
from sovd.profiles import DtcPoolEntry, EcuProfile, SignalProfile, VehicleProfile

ODOMETER = SignalProfile(dids.ODOMETER, 8_000, 95_000, 0, 999_999, rate_per_hour=40.0)
COOLANT = SignalProfile(dids.COOLANT_TEMPERATURE, 84, 94, -20, 118, volatility=0.3)
ENGINE_SPEED = SignalProfile(dids.ENGINE_SPEED, 750, 2200, 0, 6500, volatility=25.0)
VEHICLE_SPEED = SignalProfile(dids.VEHICLE_SPEED, 0, 90, 0, 180, volatility=2.0)
VOLTAGE = SignalProfile(dids.MODULE_VOLTAGE, 13.9, 14.3, 11.5, 14.8, volatility=0.01)
FUEL_LEVEL = SignalProfile(dids.FUEL_LEVEL, 15, 95, 0, 100, volatility=0.05)
AMBIENT = SignalProfile(dids.AMBIENT_TEMPERATURE, 4, 28, -30, 50, volatility=0.01)
ALL_SIGNALS = (ODOMETER, COOLANT, ENGINE_SPEED, VEHICLE_SPEED, VOLTAGE, FUEL_LEVEL, AMBIENT)

ENGINE_SIGNALS = (
    dids.COOLANT_TEMPERATURE,
    dids.ENGINE_SPEED,
    dids.VEHICLE_SPEED,
    dids.MODULE_VOLTAGE,
    dids.AMBIENT_TEMPERATURE,
)
CLUSTER_SIGNALS = (dids.ODOMETER, dids.FUEL_LEVEL, dids.VEHICLE_SPEED, dids.MODULE_VOLTAGE)
BRAKE_SIGNALS = (dids.VEHICLE_SPEED, dids.MODULE_VOLTAGE)
BODY_SIGNALS = (dids.MODULE_VOLTAGE,)

VW_GOLF = VehicleProfile(
    name="vw-golf",
    make="Volkswagen",
    model="Golf",
    year_min=2018,
    year_max=2021,
    wmi="3VW",
    vds="W57AU",
    plant_code="M",
    ecus=(
        EcuProfile(
            address=0x01,
            name="Engine Control Module",
            part_number="04E906027JT",
            software_version="0004",
            hardware_number="04E907309C",
            supplier="Bosch",
            system_name="1.8l R4 TSI",
            signal_dids=ENGINE_SIGNALS,
            security_levels=(0x01, 0x11),
        ),
        EcuProfile(
            address=0x02,
            name="Transmission Control Module",
            part_number="09G927749E",
            software_version="0761",
            hardware_number="09G927749E",
            supplier="Aisin",
            system_name="AQ250 6F",
            signal_dids=BRAKE_SIGNALS,
        ),
        EcuProfile(
            address=0x03,
            name="Brake Electronics (ABS/ESC)",
            part_number="5Q0907379AA",
            software_version="0142",
            hardware_number="5Q0614517BS",
            supplier="Continental",
            system_name="ESC MK100",
            signal_dids=BRAKE_SIGNALS,
        ),
        EcuProfile(
            address=0x09,
            name="Central Electrics (BCM)",
            part_number="5Q0937084AN",
            software_version="0231",
            hardware_number="5Q0937084AN",
            supplier="Continental",
            system_name="BCM MQB",
            signal_dids=BODY_SIGNALS,
        ),
        EcuProfile(
            address=0x15,
            name="Airbag Control Module",
            part_number="5Q0959655BJ",
            software_version="0852",
            hardware_number="5Q0959655BJ",
            supplier="Autoliv",
            system_name="AB MQB",
            signal_dids=BODY_SIGNALS,
        ),
        EcuProfile(
            address=0x17,
            name="Instrument Cluster",
            part_number="5G1920750A",
            software_version="0410",
            hardware_number="5G1920750A",
            supplier="Visteon",
            system_name="KOMBI MQB",
            signal_dids=CLUSTER_SIGNALS,
        ),
        EcuProfile(
            address=0x19,
            name="Data Bus Gateway",
            part_number="5Q0907530AA",
            software_version="1124",
            hardware_number="5Q0907530AA",
            supplier="Continental",
            system_name="GW MQB",
            signal_dids=(dids.ODOMETER, dids.MODULE_VOLTAGE),
        ),
    ),
    dtc_pool=(
        DtcPoolEntry(0x01, "P0420", 0.15, 0x2F),
        DtcPoolEntry(0x01, "P0171", 0.10, 0x24),
        DtcPoolEntry(0x01, "P0300", 0.05, 0xAF, reappear_per_hour=0.5),
        DtcPoolEntry(0x01, "P0299", 0.05, 0x28),
        DtcPoolEntry(0x01, "P0456", 0.10, 0x28),
        DtcPoolEntry(0x02, "P0741", 0.04, 0x2F),
        DtcPoolEntry(0x03, "C0035", 0.05, 0x2F),
        DtcPoolEntry(0x15, "B0001", 0.02, 0xAF),
        DtcPoolEntry(0x19, "U0121", 0.05, 0x28),
        DtcPoolEntry(0x19, "U0155", 0.03, 0x28),
    ),
    signals=ALL_SIGNALS,
)

FORD_F150 = VehicleProfile(
    name="ford-f150",
    make="Ford",
    model="F-150",
    year_min=2018,
    year_max=2023,
    wmi="1FT",
    vds="EW1EP",
    plant_code="F",
    ecus=(
        EcuProfile(
            address=0x10,
            name="Powertrain Control Module",
            part_number="JL3A-12A650-AXB",
            software_version="JL3A-14C204-ABC",
            hardware_number="JL3A-12B684-AB",
            supplier="Continental",
            system_name="5.0L V8 Ti-VCT",
            signal_dids=ENGINE_SIGNALS,
            security_levels=(0x01, 0x11),
        ),
        EcuProfile(
            address=0x18,
            name="Transmission Control Module",
            part_number="JL3P-7Z369-AB",
            software_version="JL3P-14C337-AD",
            hardware_number="JL3P-7Z369-AB",
            supplier="Continental",
            system_name="10R80 10-speed",
            signal_dids=BRAKE_SIGNALS,
        ),
        EcuProfile(
            address=0x28,
            name="Anti-Lock Brake System Module",
            part_number="JL34-2C219-AE",
            software_version="JL34-14C036-AC",
            hardware_number="JL34-2C219-AE",
            supplier="Bosch",
            system_name="ABS/ESC 9.3",
            signal_dids=BRAKE_SIGNALS,
        ),
        EcuProfile(
            address=0x30,
            name="Continuously Controlled Damping Module",
            part_number="JL34-3C187-AC",
            software_version="JL34-14C580-AA",
            hardware_number="JL34-3C187-AC",
            supplier="Tenneco",
            system_name="CCD",
            signal_dids=BODY_SIGNALS,
        ),
        EcuProfile(
            address=0x40,
            name="Body Control Module",
            part_number="JL3T-15604-CB",
            software_version="JL3T-14C184-AF",
            hardware_number="JL3T-15604-CB",
            supplier="Lear",
            system_name="BCM",
            signal_dids=BODY_SIGNALS,
        ),
        EcuProfile(
            address=0x58,
            name="Restraints Control Module",
            part_number="JL3T-14B321-AB",
            software_version="JL3T-14C028-AA",
            hardware_number="JL3T-14B321-AB",
            supplier="Autoliv",
            system_name="RCM",
            signal_dids=BODY_SIGNALS,
        ),
        EcuProfile(
            address=0x60,
            name="Instrument Panel Cluster",
            part_number="JL3T-10849-CHF",
            software_version="JL3T-14C026-AE",
            hardware_number="JL3T-10849-CHF",
            supplier="Visteon",
            system_name="IPC",
            signal_dids=CLUSTER_SIGNALS,
        ),
    ),
    dtc_pool=(
        DtcPoolEntry(0x10, "P0300", 0.06, 0xAF),
        DtcPoolEntry(0x10, "P0171", 0.08, 0x2F),
        DtcPoolEntry(0x10, "P0174", 0.08, 0x2F),
        DtcPoolEntry(0x10, "P0430", 0.10, 0x28),
        DtcPoolEntry(0x10, "P0562", 0.05, 0x24),
        DtcPoolEntry(0x18, "P0730", 0.04, 0x2F),
        DtcPoolEntry(0x28, "U0100", 0.04, 0x28),
        DtcPoolEntry(0x30, "C1418", 0.06, 0x2F, reappear_per_hour=0.2),
        DtcPoolEntry(0x58, "B0010", 0.02, 0xAF),
    ),
    signals=ALL_SIGNALS,
)

CHEVROLET_MALIBU = VehicleProfile(
    name="chevrolet-malibu",
    make="Chevrolet",
    model="Malibu",
    year_min=2019,
    year_max=2024,
    wmi="1G1",
    vds="ZD5ST",
    plant_code="F",
    ecus=(
        EcuProfile(
            address=0x10,
            name="Engine Control Module",
            part_number="12698643",
            software_version="12712377",
            hardware_number="12698643",
            supplier="Continental",
            system_name="1.5L LFV Turbo",
            signal_dids=ENGINE_SIGNALS,
            security_levels=(0x01, 0x11),
        ),
        EcuProfile(
            address=0x18,
            name="Transmission Control Module",
            part_number="24293652",
            software_version="24293660",
            hardware_number="24293652",
            supplier="Continental",
            system_name="CVT250",
            signal_dids=BRAKE_SIGNALS,
        ),
        EcuProfile(
            address=0x28,
            name="Electronic Brake Control Module",
            part_number="84598520",
            software_version="84598531",
            hardware_number="84598520",
            supplier="Bosch",
            system_name="EBCM",
            signal_dids=BRAKE_SIGNALS,
        ),
        EcuProfile(
            address=0x40,
            name="Body Control Module",
            part_number="84461435",
            software_version="84461440",
            hardware_number="84461435",
            supplier="Continental",
            system_name="BCM",
            signal_dids=BODY_SIGNALS,
        ),
        EcuProfile(
            address=0x58,
            name="Sensing and Diagnostic Module",
            part_number="13590773",
            software_version="13590780",
            hardware_number="13590773",
            supplier="Autoliv",
            system_name="SDM",
            signal_dids=BODY_SIGNALS,
        ),
        EcuProfile(
            address=0x60,
            name="Instrument Panel Cluster",
            part_number="84537658",
            software_version="84537660",
            hardware_number="84537658",
            supplier="Visteon",
            system_name="IPC",
            signal_dids=CLUSTER_SIGNALS,
        ),
    ),
    dtc_pool=(
        DtcPoolEntry(0x10, "P0171", 0.10, 0x2F),
        DtcPoolEntry(0x10, "P0101", 0.05, 0x2F),
        DtcPoolEntry(0x10, "P0506", 0.05, 0x24),
        DtcPoolEntry(0x10, "P0128", 0.08, 0x2F, reappear_per_hour=0.1),
        DtcPoolEntry(0x10, "P0442", 0.08, 0x28),
        DtcPoolEntry(0x10, "P0299", 0.03, 0x28),
        DtcPoolEntry(0x28, "C0035", 0.04, 0x2F),
        DtcPoolEntry(0x40, "B1000", 0.05, 0x28),
        DtcPoolEntry(0x60, "U0140", 0.04, 0x28),
    ),
    signals=ALL_SIGNALS,
)

DEMO_PROFILES = (VW_GOLF, FORD_F150, CHEVROLET_MALIBU)


def demo_fleets(seed: int = 0) -> tuple[FleetSpec, ...]:
    """Ten vehicles: four Golfs, three F-150s, three Malibus."""
    return (
        FleetSpec("demo-golf", VW_GOLF, 4, seed=seed),
        FleetSpec("demo-f150", FORD_F150, 3, seed=seed),
        FleetSpec("demo-malibu", CHEVROLET_MALIBU, 3, seed=seed),
    )
