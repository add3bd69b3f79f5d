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
from web.config import ENVIRONMENT, NODE_ID

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
# What the program reads from the environment: the configuration's variables, and the
# load test's password.
VARIABLES_READ = set(ENVIRONMENT) | {PASSWORD_VARIABLE}


def compose_services() -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    return found


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return compose_services()


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


# The cluster profile: `serve --cluster` nodes on the same PostgreSQL and Redis, behind nginx.

NGINX_CONF = ROOT / "docker" / "nginx.conf"
Directive = tuple[str, list[str], list[Any] | None]  # name, arguments, block (None: no block)


def in_cluster_profile(service: dict[str, Any]) -> bool:
    return "cluster" in (service.get("profiles") or [])


NODES = sorted(
    name
    for name, service in compose_services().items()
    if in_cluster_profile(service) and "--cluster" in (service.get("command") or [])
)


def nginx_directives(text: str) -> list[Directive]:
    """nginx.conf as nested directives: `name args;` or `name args { ... }`."""
    words: list[str] = []
    for line in text.splitlines():
        words += shlex.split(
            line.replace("{", " { ").replace("}", " } ").replace(";", " ; "), comments=True
        )
    stack: list[list[Directive]] = [[]]
    current: list[str] = []
    for word in words:
        if word == ";":
            stack[-1].append((current[0], current[1:], None))
            current = []
        elif word == "{":
            block: list[Directive] = []
            stack[-1].append((current[0], current[1:], block))
            stack.append(block)
            current = []
        elif word == "}":
            stack.pop()
        else:
            current.append(word)
    assert len(stack) == 1 and not current, "unbalanced nginx.conf"
    return stack[0]


def blocks(directives: list[Directive], name: str) -> dict[str, list[Directive]]:
    """The blocks called `name`, by their first argument (upstream NAME, location PATH)."""
    return {args[0] if args else "": block or [] for n, args, block in directives if n == name}


def values(directives: list[Directive], name: str) -> list[list[str]]:
    return [args for n, args, block in directives if n == name and block is None]


@pytest.fixture(scope="module")
def nginx() -> list[Directive]:
    return nginx_directives(NGINX_CONF.read_text(encoding="utf-8"))


def node_options(service: dict[str, Any]) -> dict[str, str]:
    command = last("ENTRYPOINT") + service["command"]
    assert command[:2] == ["sovd-sim", "serve"]
    flags = [word for word in command[2:] if word == "--cluster"]
    pairs = [word for word in command[2:] if word != "--cluster"]
    assert flags == ["--cluster"]
    return dict(zip(pairs[::2], pairs[1::2], strict=True))


def node_port() -> str:
    ports = {node_options(compose_services()[name])["--port"] for name in NODES}
    assert len(ports) == 1, f"the nodes listen on different ports: {ports}"
    return ports.pop()


def test_the_cluster_profile_has_several_nodes_and_nginx_and_nothing_else(
    services: dict[str, Any],
) -> None:
    profiled = {name for name, service in services.items() if in_cluster_profile(service)}

    assert len(NODES) >= 2
    assert profiled == {*NODES, "nginx"}
    assert not any(in_cluster_profile(services[name]) for name in ("app", "migrate"))


@pytest.mark.parametrize("name", NODES)
def test_a_node_serves_in_cluster_mode_on_all_interfaces_unpublished(
    services: dict[str, Any], name: str
) -> None:
    node = services[name]
    options = node_options(node)

    assert options["--host"] == "0.0.0.0"
    assert "ports" not in node, "only nginx is published"
    # The image's health check asks this port; nginx waits for healthy nodes.
    healthcheck = next(arguments for kind, arguments in instructions() if kind == "HEALTHCHECK")
    assert f"127.0.0.1:{options['--port']}/healthz" in healthcheck
    assert node["build"] == services["app"]["build"]


@pytest.mark.parametrize("name", NODES)
def test_every_variable_a_node_gets_is_one_the_program_reads(
    services: dict[str, Any], name: str
) -> None:
    given = environment_of(services[name])

    assert set(given) <= VARIABLES_READ, f"not read: {sorted(set(given) - VARIABLES_READ)}"
    assert {"DATABASE_URL", "REDIS_URL", "JWT_SECRET", "SOVD_NODE_ID"} <= set(given)


def test_the_nodes_have_distinct_valid_ids_and_agree_on_the_rest(services: dict[str, Any]) -> None:
    environments = [environment_of(services[name]) for name in NODES]
    ids = [env["SOVD_NODE_ID"] for env in environments]

    assert len(set(ids)) == len(ids), f"node ids repeat: {ids}"
    assert all(NODE_ID.fullmatch(node_id) for node_id in ids)
    app = environment_of(services["app"])
    for env in environments:
        # One database and one Redis for all (the app's); one partition count.
        assert env["DATABASE_URL"] == app["DATABASE_URL"]
        assert env["REDIS_URL"] == app["REDIS_URL"]
        assert env["JWT_SECRET"] == app["JWT_SECRET"]
        rest = {k: v for k, v in env.items() if k != "SOVD_NODE_ID"}
        assert rest == {k: v for k, v in environments[0].items() if k != "SOVD_NODE_ID"}


@pytest.mark.parametrize("name", NODES)
def test_a_node_starts_after_the_one_migration(services: dict[str, Any], name: str) -> None:
    assert services[name]["depends_on"] == services["app"]["depends_on"]
    assert "migrate" not in services[name]["command"]


def test_nginx_is_the_one_published_port_and_waits_for_healthy_nodes(
    services: dict[str, Any], nginx: list[Directive]
) -> None:
    proxy = services["nginx"]
    (published,) = proxy["ports"]
    host_port, _, container_port = str(published).rpartition(":")
    (server,) = blocks(nginx, "server").values()

    assert values(server, "listen") == [[container_port]]
    # The same host port as the single app: the two cannot run at once by mistake.
    assert {str(p).rpartition(":")[0] for p in services["app"]["ports"]} == {host_port}
    assert proxy["depends_on"] == {name: {"condition": "service_healthy"} for name in NODES}
    assert any(volume.startswith("./nginx.conf:/etc/nginx/conf.d/") for volume in proxy["volumes"])


def test_every_nginx_upstream_lists_exactly_the_nodes(nginx: list[Directive]) -> None:
    upstreams = blocks(nginx, "upstream")
    expected = sorted(f"{name}:{node_port()}" for name in NODES)

    assert upstreams
    for name, upstream in upstreams.items():
        servers = sorted(args[0] for args in values(upstream, "server"))
        assert servers == expected, f"upstream {name}"


def test_nginx_proxies_the_api_the_sovd_api_the_dashboard_and_the_websockets(
    nginx: list[Directive],
) -> None:
    (server,) = blocks(nginx, "server").values()
    locations = blocks(server, "location")
    upstreams = {f"http://{name}" for name in blocks(nginx, "upstream")}

    for path in ("/api/", "/vehicles/", "/dashboard/", "/ws/", "/"):
        assert path in locations, f"no location {path}"
        (target,) = values(locations[path], "proxy_pass")
        assert target[0] in upstreams, f"{path} goes to {target}"


def test_websockets_pass_the_upgrade_through(nginx: list[Directive]) -> None:
    (server,) = blocks(nginx, "server").values()
    websocket = blocks(server, "location")["/ws/"]
    headers = {args[0].lower(): args[1] for args in values(websocket, "proxy_set_header")}
    maps = {args[0]: (args[1], block or []) for n, args, block in nginx if n == "map"}

    assert [["1.1"]] in (
        values(server, "proxy_http_version"),
        values(websocket, "proxy_http_version"),
    )
    assert headers["upgrade"] == "$http_upgrade"
    # Connection: "upgrade" for a handshake (through a map of $http_upgrade), or the word.
    connection = headers["connection"]
    if connection.startswith("$"):
        source, mapping = next(
            (source, block) for source, (target, block) in maps.items() if target == connection
        )
        assert source == "$http_upgrade"
        assert ["default", "upgrade"] in [[n, *args] for n, args, _ in mapping]
    else:
        assert connection.lower() == "upgrade"
    # Headers set in a location replace the server's: the host must be passed again.
    assert headers["host"] == "$http_host"


def test_the_sovd_api_keeps_each_vehicle_on_one_node(nginx: list[Directive]) -> None:
    """A cyclic subscription lives in the node that took it; its event stream, under the
    same vehicle's path, must be read there."""
    (server,) = blocks(nginx, "server").values()
    (target,) = values(blocks(server, "location")["/vehicles/"], "proxy_pass")
    upstream = blocks(nginx, "upstream")[target[0].removeprefix("http://")]
    (hashed,) = values(upstream, "hash")
    vehicle_of = next(
        block or [] for n, args, block in nginx if n == "map" and args[1] == hashed[0]
    )

    assert hashed[1:] == ["consistent"]
    assert any(n.startswith("~^/vehicles/") for n, _, _ in vehicle_of)
