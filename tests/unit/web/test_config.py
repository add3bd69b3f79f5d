from pathlib import Path

import pytest

from web.config import ConfigError, build_config, load_config

SECRET = "s" * 40


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sovd.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_embedded_mode() -> None:
    config = load_config(environ={})
    assert config.database.url is None
    assert config.redis.url is None
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8080)
    assert config.simulation.latency_ms == (500, 1500)


def test_file_overrides_defaults_env_overrides_file_flags_override_env(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[server]\nport = 9001\nhost = "0.0.0.0"\n[simulation]\nlatency_ms = [5, 10]\n',
    )
    from_file = load_config(path, environ={})
    assert (from_file.server.port, from_file.server.host) == (9001, "0.0.0.0")
    assert from_file.simulation.latency_ms == (5, 10)

    from_env = load_config(path, environ={"SOVD_PORT": "9002", "SOVD_LATENCY_MS": "0,0"})
    assert from_env.server.port == 9002
    assert from_env.server.host == "0.0.0.0"
    assert from_env.simulation.latency_ms == (0, 0)

    from_flags = load_config(path, environ={"SOVD_PORT": "9002"}, flags={"server.port": 9003})
    assert from_flags.server.port == 9003


def test_standard_variables_set_the_services() -> None:
    config = load_config(
        environ={
            "DATABASE_URL": "postgresql://u@h/db",
            "REDIS_URL": "redis://h:6379/0",
            "JWT_SECRET": SECRET,
            "SOVD_CORS_ORIGINS": "http://a.example, http://b.example",
        }
    )
    assert config.database.url == "postgresql://u@h/db"
    assert config.redis.url == "redis://h:6379/0"
    assert config.auth.jwt_secret == SECRET
    assert config.server.cors_origins == ("http://a.example", "http://b.example")


@pytest.mark.parametrize(
    ("toml", "key", "problem"),
    [
        ('[server]\nport = "80"\n', "server.port", "expected integer"),
        ("[server]\nport = 70000\n", "server.port", "between 1 and 65535"),
        ("[server]\nport = true\n", "server.port", "expected integer"),
        ("[server]\nportt = 1\n", "server.portt", "unknown key"),
        ("[serverr]\nport = 1\n", "serverr", "unknown section"),
        ('[logging]\nlevel = "loud"\n', "logging.level", "one of"),
        ("[simulation]\nlatency_ms = [10, 5]\n", "simulation.latency_ms", "MIN <= MAX"),
        ("[simulation]\nlatency_ms = [10]\n", "simulation.latency_ms", "2 values"),
        ("[simulation]\nmailbox_size = 0\n", "simulation.mailbox_size", ">= 1"),
        (
            "[database]\npool_min_size = 5\npool_max_size = 2\n",
            "database.pool_max_size",
            ">= database.pool_min_size",
        ),
        ('[database]\nurl = "mysql://x"\n', "database.url", "postgresql://"),
        ('[auth]\njwt_secret = "short"\n', "auth.jwt_secret", "at least 32 bytes"),
    ],
)
def test_file_errors_name_file_key_and_problem(
    tmp_path: Path, toml: str, key: str, problem: str
) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.source == str(path)
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_env_error_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ={"SOVD_PORT": "eighty"})
    assert caught.value.source == "environment SOVD_PORT"
    assert caught.value.key == "server.port"
    assert "'eighty'" in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "text", "key", "problem"),
    [
        ("SOVD_LATENCY_MS", "5,x", "simulation.latency_ms[1]", "expected integer, got 'x'"),
        ("SOVD_LATENCY_MS", "5", "simulation.latency_ms", "expected list of 2 values, got 1"),
        ("SOVD_TIME_SCALE", "fast", "simulation.time_scale", "expected number, got 'fast'"),
        ("SOVD_LOG_LEVEL", "loud", "logging.level", "must be one of 'debug', 'info', "),
    ],
)
def test_env_errors_name_the_key_and_the_text(
    variable: str, text: str, key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ={variable: text})
    assert caught.value.source == f"environment {variable}"
    assert caught.value.key == key
    assert caught.value.problem.startswith(problem)


def test_empty_env_text_clears_an_optional_setting() -> None:
    assert load_config(environ={"DATABASE_URL": ""}).database.url is None


def test_invalid_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(write(tmp_path, "[server\n"), environ={})
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config(tmp_path / "absent.toml", environ={})


def test_embedded_mode_generates_a_secret_per_process() -> None:
    first, second = build_config(None, {}), build_config(None, {})
    assert first.jwt_secret_generated
    assert first.auth.jwt_secret and len(first.auth.jwt_secret) >= 32
    assert first.auth.jwt_secret != second.auth.jwt_secret


def test_postgresql_mode_refuses_to_start_without_a_strong_secret() -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        build_config(None, {"DATABASE_URL": "postgresql://u@h/db"})
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        build_config(None, {"DATABASE_URL": "postgresql://u@h/db", "JWT_SECRET": "too-short"})
    config = build_config(None, {"DATABASE_URL": "postgresql://u@h/db", "JWT_SECRET": SECRET})
    assert not config.jwt_secret_generated
