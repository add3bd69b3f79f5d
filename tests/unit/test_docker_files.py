"""docker/compose.yaml and docker/Dockerfile agree with the code (no Docker engine runs
here, so the files are read, not built)."""

from __future__ import annotations

import json
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.loadtest import PASSWORD_VARIABLE
from web.config import ENVIRONMENT

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
# What the program reads from the environment: the configuration's variables, and the
# load test's password.
VARIABLES_READ = set(ENVIRONMENT) | {PASSWORD_VARIABLE}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    found: dict[str, Any] = document["services"]
    return found


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            found.append((keyword.upper(), arguments.strip()))
    return found


def command_words(arguments: str) -> list[str]:
    """The words of an exec-form (JSON array) or shell-form CMD / ENTRYPOINT."""
    if arguments.startswith("["):
        words: list[str] = json.loads(arguments)
        return words
    return shlex.split(arguments)


def last(keyword: str) -> list[str]:
    found = [arguments for name, arguments in instructions() if name == keyword]
    assert found, f"the Dockerfile has no {keyword}"
    return command_words(found[-1])


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):  # the KEY=VALUE list form
        return dict(item.partition("=")[::2] for item in environment)
    return dict(environment)


def test_the_four_services_exist(services: dict[str, Any]) -> None:
    assert {"postgres", "redis", "migrate", "app"} <= set(services)


@pytest.mark.parametrize("name", ["postgres", "redis"])
def test_the_data_services_have_healthchecks(services: dict[str, Any], name: str) -> None:
    healthcheck = services[name]["healthcheck"]
    assert healthcheck["test"][0] in ("CMD", "CMD-SHELL")
    assert len(healthcheck["test"]) > 1


def test_migrate_waits_for_a_healthy_postgres(services: dict[str, Any]) -> None:
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}


def test_the_app_starts_after_healthy_services_and_a_finished_migration(
    services: dict[str, Any],
) -> None:
    assert services["app"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }


@pytest.mark.parametrize("name", ["app", "migrate"])
def test_every_variable_given_is_one_the_program_reads(services: dict[str, Any], name: str) -> None:
    given = set(environment_of(services[name]))

    assert given, f"{name} gets no environment"
    assert given <= VARIABLES_READ, f"{name}: not read: {sorted(given - VARIABLES_READ)}"
    assert {"DATABASE_URL", "REDIS_URL", "JWT_SECRET"} <= given


def test_the_image_holds_every_package_the_project_ships() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {
        pattern.rstrip("*")
        for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = set()
    for name, arguments in instructions():
        if name == "COPY" and not arguments.startswith("--from"):
            *sources, _ = arguments.split()
            copied.update(source.rstrip("/") for source in sources)

    assert packages <= copied, f"not copied: {sorted(packages - copied)}"
    assert {"pyproject.toml", "README.md"} <= copied


def test_the_image_serves_on_all_interfaces_on_the_published_port(
    services: dict[str, Any],
) -> None:
    command = last("ENTRYPOINT") + last("CMD")

    assert command[:2] == ["sovd-sim", "serve"]
    options = dict(zip(command[2::2], command[3::2], strict=True))
    assert options["--host"] == "0.0.0.0"
    published = {str(port).split(":")[-1] for port in services["app"]["ports"]}
    assert published == {options["--port"]}


def test_migrate_runs_the_migrations_with_the_same_image(services: dict[str, Any]) -> None:
    migrate, app = services["migrate"], services["app"]

    assert migrate["build"] == app["build"]
    assert last("ENTRYPOINT") + migrate["command"] == ["sovd-sim", "db", "migrate"]
