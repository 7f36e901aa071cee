"""docker-compose.yml and the Dockerfile agree with Settings and with what `make run` starts.

No Docker engine is needed: the files are parsed, their environments are fed to the real Settings
class, and the commands are compared with the ones mlplatform/runner.py and
scripts/serve_prebuilt.py actually build.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy.engine import make_url

from mlplatform.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SECRET = "compose-test-secret-0123456789abcdef0123456789"
PLATFORM_SERVICES = ("migrate", "app", "worker")  # the services that run platform code


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


settings_table = _load_script("settings_table")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def interpolate(value, required: dict[str, str] | None = None) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?message}`, with the host environment empty
    except for `required`; a missing required variable fails like `docker compose` does."""
    required = required or {}

    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2) or "", match.group(3) or ""
        if name in required:
            return required[name]
        if op in (":?", "?"):
            raise LookupError(f"{name} is required: {arg}")
        return arg if op in (":-", "-") else ""

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}", one, str(value)).replace("$$", "$")


def service_env(service: dict, required: dict[str, str] | None = None) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "write environment: as a mapping"
    return {k: interpolate(v, required) for k, v in env.items()}


def settings_from(env: dict[str, str], monkeypatch, **extra: str) -> Settings:
    """Settings exactly as a container with this environment (and no .env file) would build them."""
    for name in list(os.environ):
        if name.startswith(settings_table.ENV_PREFIX) or name in settings_table.all_env_names():
            monkeypatch.delenv(name)
    for name, value in {**env, **extra}.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


def test_expected_services_exist(services):
    assert set(services) == {"postgres", "redis", "migrate", "app", "worker", "hosts"}
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["postgres"]["volumes"])
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])


def test_platform_environment_uses_only_names_something_reads(services):
    known = settings_table.all_env_names()
    for name in PLATFORM_SERVICES:
        for var in services[name]["environment"]:
            if var.startswith(settings_table.ENV_PREFIX):
                assert var in known, f"{name}: {var} is not a Settings field ({sorted(known)})"
            else:
                assert var in known or var.startswith(("REFLEX_", "GRANIAN_")), f"{name}: nothing reads {var}"


def test_every_platform_service_gets_valid_production_settings(services, monkeypatch):
    for name in PLATFORM_SERVICES:
        settings = settings_from(service_env(services[name], {"MLPLATFORM_SECRET_KEY": SECRET}), monkeypatch)
        assert settings.env == "production"
        assert settings.secret_key == SECRET
        db = make_url(settings.database_url)
        assert (db.drivername, db.host) == ("postgresql+psycopg", "postgres"), name
        redis = urlsplit(settings.redis_url)
        assert (redis.scheme, redis.hostname, redis.port) == ("redis", "redis", 6379), name


def test_secret_key_is_required_not_defaulted(services):
    for name in PLATFORM_SERVICES:
        raw = services[name]["environment"]["MLPLATFORM_SECRET_KEY"]
        assert re.fullmatch(r"\$\{MLPLATFORM_SECRET_KEY:\?[^}]+\}", raw), f"{name}: {raw}"
        with pytest.raises(LookupError):
            service_env(services[name])


def test_database_and_redis_point_at_their_services(services):
    postgres_env = services["postgres"]["environment"]
    for name in PLATFORM_SERVICES:
        env = service_env(services[name], {"MLPLATFORM_SECRET_KEY": SECRET})
        db = make_url(env["DATABASE_URL"])
        assert db.drivername == "postgresql+psycopg"
        assert (db.host, db.port, db.username, db.database) == (
            "postgres", 5432, postgres_env["POSTGRES_USER"], postgres_env["POSTGRES_DB"])
        assert db.password == interpolate(postgres_env["POSTGRES_PASSWORD"])
        assert env["REDIS_URL"] == "redis://redis:6379/0"
    app_env = service_env(services["app"], {"MLPLATFORM_SECRET_KEY": SECRET})
    assert app_env["REFLEX_REDIS_URL"] == app_env["REDIS_URL"]
    assert app_env["PROMETHEUS_MULTIPROC_DIR"].startswith("/")


def test_dependencies_are_healthy_or_completed(services):
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            condition = spec["condition"]
            target = services[dep]
            if condition == "service_healthy":
                check = target.get("healthcheck") or {}
                assert check.get("test") and not check.get("disable"), f"{name} waits for {dep}'s healthcheck"
            else:
                assert condition == "service_completed_successfully", f"{name} -> {dep}: {condition}"
                assert target.get("restart") == "no", f"{dep} is one-shot"
    app_deps = services["app"]["depends_on"]
    assert app_deps["migrate"]["condition"] == "service_completed_successfully"
    assert app_deps["redis"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]


def _runner_argv(services, monkeypatch, tmp_path) -> dict[str, list[str]]:
    """The argv lists `make run` starts, from runner.main() with the worker service's Settings."""
    from mlplatform import runner

    settings = settings_from(service_env(services["worker"], {"MLPLATFORM_SECRET_KEY": SECRET}), monkeypatch,
                             MLPLATFORM_VAR_DIR=str(tmp_path))
    started: dict[str, list[str]] = {}

    def stop_after_start(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "get_settings", lambda: settings)
    monkeypatch.setattr(runner, "migrate", lambda: None)
    monkeypatch.setattr(runner, "start_embedded_redis", lambda *a: None)
    monkeypatch.setattr(runner.jobs, "enqueue", lambda *a, **k: None)
    monkeypatch.setattr(runner.signal, "signal", lambda *a: None)
    monkeypatch.setattr(runner.Supervisor, "start", lambda self, name, argv, env, log=None: started.update({name: argv}))
    monkeypatch.setattr(runner, "wait_until_up", stop_after_start)
    monkeypatch.setattr(runner, "wait_for_model_hosts", lambda *a: None)
    assert runner.main() == 0
    return {name: [Path(argv[0]).name, *argv[1:]] for name, argv in started.items()}


def test_worker_command_is_the_one_make_run_starts(services, monkeypatch, tmp_path):
    worker = services["worker"]
    argv = _runner_argv(services, monkeypatch, tmp_path)["worker"]
    assert worker["command"] == argv
    assert argv[argv.index("--url") + 1] == service_env(worker, {"MLPLATFORM_SECRET_KEY": SECRET})["REDIS_URL"]
    assert argv[-1] == Settings.model_fields["queue_name"].default
    assert argv[argv.index("--worker-ttl") + 1] == str(Settings.model_fields["worker_ttl_seconds"].default)


def test_hosts_command_is_the_one_make_run_starts(services, monkeypatch, tmp_path):
    argv = _runner_argv(services, monkeypatch, tmp_path)["model hosts"]
    assert services["hosts"]["command"] == ["python", *argv[1:]]
    assert argv[1:] == ["-m", "mlplatform.inference.manager"]


def test_hosts_get_no_secret_and_no_database_or_redis(services, monkeypatch):
    hosts = services["hosts"]
    env = service_env(hosts)  # needs no MLPLATFORM_SECRET_KEY: interpolation would fail otherwise
    assert not {"DATABASE_URL", "REDIS_URL", "REFLEX_REDIS_URL", "MLPLATFORM_SECRET_KEY"} & set(env)
    assert not any(k.startswith("POSTGRES") or "PASSWORD" in k for k in env)
    assert all(k in settings_table.all_env_names() for k in env), sorted(env)
    assert "<<" not in (hosts.get("environment") or {})
    settings_from(env, monkeypatch)  # valid Settings without a secret


def _in_container(path: Path) -> str:
    """Where a path under the project lies in the image (the runtime stage's WORKDIR holds the code)."""
    (workdir,) = _all(dockerfile_stages()["runtime"], "WORKDIR")
    return str(Path(workdir) / path.relative_to(ROOT))


def _mounts(service: dict) -> dict[str, tuple[str, str]]:
    """container path -> (volume, mode)"""
    found = {}
    for spec in service.get("volumes") or []:
        volume, target, *mode = str(spec).split(":")
        found[target] = (volume, mode[0] if mode else "rw")
    return found


def test_hosts_share_the_socket_and_read_the_model_store_read_only(services, monkeypatch):
    app_settings = settings_from(service_env(services["app"], {"MLPLATFORM_SECRET_KEY": SECRET}), monkeypatch)
    hosts_settings = settings_from(service_env(services["hosts"]), monkeypatch)
    assert hosts_settings.host_socket == app_settings.host_socket
    assert hosts_settings.models_dir == app_settings.models_dir
    app, hosts = _mounts(services["app"]), _mounts(services["hosts"])
    socket_dir, models_dir = _in_container(app_settings.host_socket.parent), _in_container(app_settings.models_dir)
    assert app[socket_dir][0] == hosts[socket_dir][0] and hosts[socket_dir][1] == "rw"
    assert app[models_dir] == (hosts[models_dir][0], "rw")
    assert hosts[models_dir][1] == "ro"
    assert {app[socket_dir][0], app[models_dir][0]} <= set(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["volumes"])
    assert services["app"]["depends_on"]["hosts"]["condition"] == "service_healthy"
    check = " ".join(services["hosts"]["healthcheck"]["test"])
    assert "get_host_client" in check and ".status()" in check
    assert "ports" not in services["hosts"]


def test_the_hosts_container_has_no_network_no_capabilities_and_a_read_only_root(services):
    hosts = services["hosts"]
    assert hosts["network_mode"] == "none"
    assert hosts["read_only"] is True and "/tmp" in hosts["tmpfs"]  # the hosts' private temp dirs
    assert hosts["cap_drop"] == ["ALL"] and "no-new-privileges:true" in hosts["security_opt"]


def _published_container_port(app: dict) -> int:
    (mapping,) = app["ports"]
    return int(str(mapping).split(":")[-1].split("/")[0])


def test_app_serves_on_the_port_its_healthcheck_probes(services, monkeypatch, tmp_path):
    app = services["app"]
    env = service_env(app, {"MLPLATFORM_SECRET_KEY": SECRET})
    settings = settings_from(env, monkeypatch)
    assert settings.host == "0.0.0.0"
    probe = urlsplit(re.search(r"https?://[^'\"\s]+", " ".join(app["healthcheck"]["test"])).group(0))
    assert probe.path == "/health/ready"
    assert probe.port == settings.port == _published_container_port(app)
    assert app["command"] == ["python", "scripts/serve_prebuilt.py"]

    web = _runner_argv(services, monkeypatch, tmp_path)["web"]
    assert web[:4] == ["reflex", "run", "--env", "prod"]
    served = _serve_prebuilt_call({**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}, tmp_path)
    assert served["host"] == settings.host and served["port"] == settings.port
    assert served["loglevel"] == web[web.index("--loglevel") + 1]
    assert served["mount_frontend_compiled_app"] is True
    assert served["env"]["GRANIAN_WORKERS"] == str(settings.web_workers)
    assert served["env"]["REFLEX_ENV_MODE"] == "prod"


def _serve_prebuilt_call(env: dict[str, str], tmp_path: Path) -> dict:
    """Run scripts/serve_prebuilt.py in a child process with reflex's run_backend_prod replaced by a
    recorder that checks the call against the real signature: what would it serve, and how?"""
    built = tmp_path / "index.html"
    built.write_text("<html></html>")
    probe = textwrap.dedent(f"""
        import importlib.util, inspect, json, os, sys
        from reflex.utils import exec as reflex_exec
        real = reflex_exec.run_backend_prod
        def record(*args, **kwargs):
            bound = inspect.signature(real).bind(*args, **kwargs)
            bound.apply_defaults()
            call = dict(bound.arguments)
            call["loglevel"] = call["loglevel"].value
            call["env"] = {{k: os.environ.get(k) for k in ("GRANIAN_WORKERS", "REFLEX_ENV_MODE")}}
            print("CALL " + json.dumps(call))
        reflex_exec.run_backend_prod = record
        spec = importlib.util.spec_from_file_location("serve_prebuilt", {str(ROOT / "scripts" / "serve_prebuilt.py")!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.BUILT_FRONTEND = __import__("pathlib").Path({str(built)!r})
        sys.exit(module.main())
    """)
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("MLPLATFORM_", "REFLEX_", "GRANIAN_", "__REFLEX_"))
            and k not in ("DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR", "PYTEST_CURRENT_TEST")}
    done = subprocess.run([sys.executable, "-c", probe], env={**keep, **env}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("CALL ")]
    return json.loads(line.removeprefix("CALL "))


def test_reflex_prod_run_still_builds_then_serves_as_serve_prebuilt_assumes():
    """serve_prebuilt.py is `reflex run --env prod` minus the build; re-check it on a reflex upgrade."""
    import inspect

    from reflex import reflex as reflex_cli

    source = inspect.getsource(reflex_cli._run_prod)
    assert "build.setup_frontend_prod(" in source  # every `reflex run --env prod` rebuilds
    assert "_skip_compile()" in source
    assert "exec.run_backend_prod(" in source


# ---- Dockerfile -------------------------------------------------------------------------------

def dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    """{stage name: [(INSTRUCTION, arguments)]}, continuation lines joined, comments dropped.
    A stage built FROM an earlier stage starts with that stage's instructions, as its image does."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            parent, _, name = args.partition(" AS ")
            current = stages.setdefault(name.strip() or f"stage{len(stages)}", list(stages.get(parent.strip(), [])))
        if current is not None:
            current.append((instruction.upper(), args.strip()))
    return stages


def _all(stage, instruction: str) -> list[str]:
    return [args for ins, args in stage if ins == instruction]


def _env_names(stage) -> dict[str, str]:
    env = {}
    for args in _all(stage, "ENV"):
        for item in shlex.split(args):
            name, _, value = item.partition("=")
            env[name] = value
    return env


def test_dockerfile_is_multi_stage_and_builds_the_frontend():
    stages = dockerfile_stages()
    assert len(stages) >= 2
    build = stages["build"]
    assert re.search(r"python:3\.11-slim", (ROOT / "Dockerfile").read_text())
    assert _env_names(build)["REFLEX_USE_NPM"] == "1"
    assert any("pip install -r requirements.txt" in run for run in _all(build, "RUN"))
    assert any("reflex export --frontend-only --no-zip" in run for run in _all(build, "RUN"))
    runtime = stages["runtime"]
    assert any("--from=build" in copy for copy in _all(runtime, "COPY"))


def test_dockerfile_runtime_is_non_root_with_a_healthcheck():
    runtime = dockerfile_stages()["runtime"]
    (user,) = _all(runtime, "USER")
    assert user.split(":")[0] not in ("root", "0")
    (check,) = _all(runtime, "HEALTHCHECK")
    assert "/health" in check and "CMD" in check
    assert _all(runtime, "EXPOSE") == [str(Settings.model_fields["port"].default)]
    env = _env_names(runtime)
    assert env["MLPLATFORM_HOST"] == "0.0.0.0"
    known = settings_table.all_env_names()
    assert all(name in known for name in env if name.startswith(settings_table.ENV_PREFIX))
    (cmd,) = _all(runtime, "CMD")
    assert json.loads(cmd) == ["python", "scripts/serve_prebuilt.py"]


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".env", ".venv", ".web", "var", ".git"} <= ignored


def test_make_run_gives_the_model_hosts_no_secret_database_or_redis():
    from mlplatform import runner

    env = runner.model_hosts_env({"PATH": "/bin", "MLPLATFORM_SECRET_KEY": "s" * 40, "DATABASE_URL": "sqlite://",
                                  "REDIS_URL": "redis://x", "REFLEX_REDIS_URL": "redis://x",
                                  "MLPLATFORM_ENV": "production", "MLPLATFORM_HOST_PROCESSES": "3"})
    assert env == {"PATH": "/bin", "MLPLATFORM_HOST_PROCESSES": "3"}


def test_app_and_hosts_read_the_same_model_host_limits(services, monkeypatch):
    app = settings_from(service_env(services["app"], {"MLPLATFORM_SECRET_KEY": SECRET}), monkeypatch)
    hosts = settings_from(service_env(services["hosts"]), monkeypatch)
    limits = [name for name in Settings.model_fields if name.startswith(("host_", "max_model_"))]
    assert len(limits) == 8
    for name in limits:
        assert f"MLPLATFORM_{name.upper()}" in service_env(services["hosts"]), name
        assert getattr(app, name) == getattr(hosts, name), name
