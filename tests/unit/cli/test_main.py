"""The `sovd-sim` parser: every option says what it defaults to."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from cli.main import build_parser


def subcommands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    choices = [
        action.choices
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    if not choices:
        yield path, parser
    for found in choices:
        for name, child in found.items():
            yield from subcommands(child, (*path, name))


def test_every_subcommand_is_reached() -> None:
    names = {" ".join(path) for path, _ in subcommands(build_parser())}
    assert names == {"serve", "db migrate", "user add", "fleet validate", "fleet spawn", "loadtest"}


def test_every_option_shows_its_default() -> None:
    for path, parser in subcommands(build_parser()):
        for action in parser._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            shown = parser._get_formatter()._expand_help(action) if action.help else ""
            assert "(default: " in shown or (action.required and "(required)" in shown), (
                " ".join(path),
                action.option_strings,
            )


def test_a_setting_shows_the_configured_default_and_its_variable() -> None:
    serve = dict(subcommands(build_parser()))[("serve",)]
    help_of = {a.option_strings[-1]: a.help for a in serve._actions if a.option_strings}
    assert help_of["--port"] == "port to listen on (default: 8080; env SOVD_PORT)"
    assert help_of["--latency-ms"] is not None
    assert "(default: 500,1500; env SOVD_LATENCY_MS)" in help_of["--latency-ms"]
