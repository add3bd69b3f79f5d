"""`sovd-sim loadtest`: drives a running server with open-loop command load (loadtest/)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import orjson

from cli.exits import EXIT_OK
from loadtest.run import LoadPlan, run_load

PASSWORD_VARIABLE = "SOVD_LOADTEST_PASSWORD"


def add_loadtest_command(commands: Any) -> None:
    parser = commands.add_parser(
        "loadtest",
        help="drive a running server with open-loop command load and report latency",
        description="Sends commands at a fixed rate to a running sovd-sim and reports "
        "throughput and POST-to-completed percentiles. The password is read from "
        f"{PASSWORD_VARIABLE} or standard input.",
    )
    parser.add_argument(
        "--url", default="http://127.0.0.1:8080", help="the server (default: %(default)s)"
    )
    parser.add_argument(
        "--username", default="admin", help="account to log in as (default: %(default)s)"
    )
    parser.add_argument(
        "--rate", type=_positive(float), default=500.0, help="commands/s (default: %(default)s)"
    )
    parser.add_argument(
        "--duration",
        type=_positive(float),
        default=10.0,
        help="seconds of sending (default: %(default)s)",
    )
    parser.add_argument(
        "--command",
        default="ReadDTC",
        dest="command_name",
        metavar="NAME",
        help="command to send (default: %(default)s)",
    )
    parser.add_argument(
        "--params",
        type=_json_object,
        default=None,
        help='command parameters as JSON (default: {"ecuAddress": <first ECU>})',
    )
    parser.add_argument(
        "--vehicles",
        type=_positive(int),
        default=1000,
        help="how many connected vehicles to spread the load over (default: %(default)s)",
    )
    parser.add_argument(
        "--connections",
        type=_positive(int),
        default=256,
        help="keep-alive connections; each carries one request at a time (default: %(default)s)",
    )


def _positive(kind: type[float] | type[int]) -> Any:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise argparse.ArgumentTypeError(f"not valid JSON: {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def run_loadtest(args: argparse.Namespace, password: str) -> int:
    plan = LoadPlan(
        url=args.url.rstrip("/"),
        username=args.username,
        password=password,
        rate=args.rate,
        duration_s=args.duration,
        command_name=args.command_name,
        command_params=args.params,
        vehicles=args.vehicles,
        connections=args.connections,
    )
    report = asyncio.run(run_load(plan))
    for line in report.lines():
        print(line)
    return EXIT_OK
