"""`sovd-sim loadtest`: drives a running server with open-loop command load (loadtest/).

Exit codes: 0 done (and every --slo objective met), 1 an objective failed or the run could
not happen (server unreachable, login refused), 2 misuse (bad flags, a command the server
lacks, --plot without matplotlib)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import orjson

from cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from loadtest.mix import MixError, parse_mix, single_command
from loadtest.plot import PlotUnavailable, plot_report, require_matplotlib
from loadtest.report import LoadReport
from loadtest.run import LoadPlan, LoadtestError, describe_plan, run_load
from loadtest.slo import SloError, judge, parse_slo

PASSWORD_VARIABLE = "SOVD_LOADTEST_PASSWORD"
DEFAULT_COMMAND = "ReadDTC"


def add_loadtest_command(commands: Any) -> None:
    parser = commands.add_parser(
        "loadtest",
        help="drive a running server with open-loop command load and report latency",
        description="Sends commands at a fixed rate to a running sovd-sim and reports "
        "throughput and POST-to-completed percentiles. The password is read from "
        f"{PASSWORD_VARIABLE} or standard input. Exit code 1 when an --slo objective fails.",
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
    what = parser.add_mutually_exclusive_group()
    what.add_argument(
        "--command",
        dest="command_name",
        metavar="NAME",
        help=f"one command to send (default: {DEFAULT_COMMAND} when there is no --mix)",
    )
    what.add_argument(
        "--mix",
        type=_parsed(parse_mix, MixError),
        metavar="NAME:WEIGHT,...",
        help="commands in proportion, each with default parameters on the vehicle's first "
        "ECU, e.g. ReadDTC:5,ReadDataByID:4,ClearDTC:1 (default: none)",
    )
    parser.add_argument(
        "--params",
        type=_json_object,
        default=None,
        help='parameters of --command as JSON (default: {"ecuAddress": <first ECU>} and the '
        "command's usual extras)",
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
    parser.add_argument(
        "--ws-fraction",
        type=_fraction,
        default=0.0,
        metavar="F",
        help="share of accepted commands also followed on their own /ws/responses stream "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress line on standard error each second (default: progress shown)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="write every figure as JSON: totals, per command and HTTP status, percentiles, "
        "a per-second time series (default: none)",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="FILE",
        help="draw throughput and latency percentiles over time as PNG; needs matplotlib, "
        "pip install 'sovd-sim[plot]' (default: none)",
    )
    parser.add_argument(
        "--slo",
        type=_parsed(parse_slo, SloError),
        metavar="NAME=VALUE,...",
        help="objectives; exit 1 when one fails: p50_ms, p90_ms, p95_ms, p99_ms, max_ms "
        "(POST-to-completed), post_p99_ms, error_rate (0.01 = 1 %%), min_rate (completed/s) "
        "(default: none)",
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


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _parsed(parse: Any, error: type[Exception]) -> Any:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except error as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise argparse.ArgumentTypeError(f"not valid JSON: {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def _usage(message: str) -> int:
    print(f"sovd-sim loadtest: {message}", file=sys.stderr)
    return EXIT_USAGE


def run_loadtest(args: argparse.Namespace, password: str, out: TextIO = sys.stdout) -> int:
    try:
        plan = _plan(args, password)
    except _Misuse as exc:
        return _usage(str(exc))
    try:
        report = asyncio.run(run_load(plan, progress=None if args.quiet else sys.stderr))
    except MixError as exc:
        return _usage(str(exc))
    except LoadtestError as exc:
        print(f"sovd-sim loadtest: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (aiohttp.ClientError, OSError) as exc:
        print(f"sovd-sim loadtest: cannot load {plan.url}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return _conclude(report, plan, args, out)


class _Misuse(Exception):
    """Flags that do not go together, or name what cannot be used."""


def _plan(args: argparse.Namespace, password: str) -> LoadPlan:
    if args.mix is not None and args.params is not None:
        raise _Misuse("--params goes with --command; a --mix sends default parameters")
    try:
        mix = args.mix or single_command(args.command_name or DEFAULT_COMMAND, args.params)
    except MixError as exc:
        raise _Misuse(str(exc)) from None
    for flag, path in (("--report", args.report), ("--plot", args.plot)):
        if path is not None and not path.parent.is_dir():
            raise _Misuse(f"{flag}: the directory {path.parent} does not exist")
    if args.plot is not None:
        try:
            require_matplotlib()
        except PlotUnavailable as exc:
            raise _Misuse(str(exc)) from None
    return LoadPlan(
        url=args.url.rstrip("/"),
        username=args.username,
        password=password,
        rate=args.rate,
        duration_s=args.duration,
        mix=mix,
        vehicles=args.vehicles,
        connections=args.connections,
        ws_fraction=args.ws_fraction,
    )


def _conclude(report: LoadReport, plan: LoadPlan, args: argparse.Namespace, out: TextIO) -> int:
    """Prints the report and the SLO verdicts, writes the JSON report and the plot if asked;
    exit 1 when an SLO failed."""
    for line in report.lines():
        print(line, file=out)
    verdicts = judge(report, args.slo or ())
    for verdict in verdicts:
        print(verdict.line(), file=out)
    document = {"plan": describe_plan(plan)} | report.as_json()
    document["slo"] = {
        v.objective.name: {"limit": v.objective.limit, "value": _finite(v.value), "met": v.met}
        for v in verdicts
    }
    if args.report is not None:
        args.report.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    if args.plot is not None:
        plot_report(document, args.plot)
    failed = [v.objective.name for v in verdicts if not v.met]
    if failed:
        print(f"sovd-sim loadtest: SLO failed: {', '.join(failed)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _finite(value: float) -> float | None:
    return value if value == value else None  # NaN (nothing measured) is not JSON
