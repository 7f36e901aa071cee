"""Real model host managers for tests: `python -m mlplatform.inference.manager`, exactly what
`make run` starts, on a socket under a var dir of the test's choosing. No mlplatform imports at
module level (conftest imports this before settings may be read)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 180
STOP_TIMEOUT_SECONDS = 30


@dataclass
class RunningManager:
    proc: subprocess.Popen
    var_dir: Path
    log: Path
    owns_var_dir: bool = False  # remove it on stop (a private manager's own temp dir)
    final_log: str | None = None

    @property
    def socket(self) -> Path:
        return self.var_dir / "hosts.sock"

    @property
    def models_dir(self) -> Path:
        return self.var_dir / "models"

    def client(self, load_timeout: float = 60, call_timeout: float = 30):
        from mlplatform.inference.client import HostClient

        return HostClient(self.socket, load_timeout=load_timeout, call_timeout=call_timeout)

    def log_text(self) -> str:
        if self.final_log is not None:
            return self.final_log
        return self.log.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.owns_var_dir:
            self.final_log = self.log_text()
            shutil.rmtree(self.var_dir, ignore_errors=True)


def manager_var_dir(label: str) -> Path:
    """A short path: unix socket paths are limited to 107 bytes."""
    return Path(tempfile.mkdtemp(prefix=f"mlp-{label}-"))


def start_private_manager(label: str, extra_env: dict[str, str] | None = None) -> RunningManager:
    """A manager on a var dir of its own, removed when it stops."""
    manager = start_manager(manager_var_dir(label), extra_env)
    manager.owns_var_dir = True
    return manager


def start_manager(var_dir: Path, extra_env: dict[str, str] | None = None) -> RunningManager:
    from mlplatform.runner import MODEL_HOSTS_ARGV, model_hosts_env

    var_dir.mkdir(parents=True, exist_ok=True)
    (var_dir / "models").mkdir(exist_ok=True)
    log = var_dir / "hosts.log"
    env = model_hosts_env({k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"})
    env.update({"MLPLATFORM_VAR_DIR": str(var_dir), "MLPLATFORM_LOG_LEVEL": "INFO", **(extra_env or {})})
    with open(log, "wb") as out:
        proc = subprocess.Popen(MODEL_HOSTS_ARGV, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    manager = RunningManager(proc, var_dir, log)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not _listening(manager.socket):
        if proc.poll() is not None or time.monotonic() > deadline:
            manager.stop()
            raise RuntimeError(f"host manager did not start ({proc.returncode}):\n{manager.log_text()}")
        time.sleep(0.05)
    return manager


def _listening(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def wait_until(condition, what: str, timeout: float = 60, interval: float = 0.02):
    """Poll `condition()` until it returns something truthy; fail (not a timing assertion: a
    generous cap on waiting for an event) when it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"never happened: {what}")
