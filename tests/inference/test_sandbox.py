"""The sandbox, in a real host process: started with the manager's command line pieces and
environment (plus planted secrets), prepared by host.prepare (preload + lock-down), then probed
with what a malicious model would try (sandbox_probe.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mlplatform.inference import hostproc, landlock, sandbox

PROBE = Path(__file__).with_name("sandbox_probe.py")
ROOT = Path(__file__).resolve().parents[2]
PLANTED = {"MLPLATFORM_SECRET_KEY": "planted-secret", "DATABASE_URL": "postgresql://u:pw@db/x",
           "REDIS_URL": "redis://r:6379/0", "AWS_SECRET_ACCESS_KEY": "planted"}
REFUSED = ["socket_inet", "socket_inet6_udp", "socket_unix", "socketpair", "write_new_tmp_file",
           "write_new_private_file", "write_existing_tmp_file", "append_existing_tmp_file", "unlink_tmp_file",
           "mkdir_tmp", "chmod_private_dir", "rename_tmp_file", "execv", "subprocess", "fork", "ptrace_parent",
           "memfd_create", "io_uring_setup", "unshare_mount_ns", "cpu_python_loop"]
UNREADABLE = ["read_existing_tmp_file", "read_model_file", "list_model_store", "read_database_file",
              "read_etc_passwd", "read_parent_environ", "read_init_cmdline"]


@pytest.fixture(scope="module")
def probed(settings_module):
    settings = settings_module
    scratch = Path(tempfile.mkdtemp(prefix="mlp-probe-"))
    os.chmod(scratch, 0o777)  # file permissions alone would let anyone in: the sandbox must refuse
    writable = scratch / "world-writable"
    writable.write_text("x")
    os.chmod(writable, 0o666)
    model_dir = settings.models_dir / "probe"
    model_dir.mkdir(parents=True, exist_ok=True)
    for d in (settings.var_dir, settings.models_dir, model_dir):
        os.chmod(d, 0o755)
    model = model_dir / "model"
    model.write_bytes(b"someone else's model")
    os.chmod(model, 0o644)
    database = Path(settings.database_url.removeprefix("sqlite:///")) if settings.database_url.startswith(
        "sqlite:///") else settings.var_dir / "stand-in.db"
    database.touch()
    os.chmod(database, 0o644)
    ctx = {"new_tmp_file": str(scratch / "new"), "writable_tmp_file": str(writable), "model_file": str(model),
           "models_dir": str(settings.models_dir), "database_file": str(database), "c_loop": True}
    private = hostproc.make_private_dir("probe")
    config = hostproc.host_config(settings, "probe", -1, private)
    done = subprocess.run([sys.executable, "-I", "-B", str(PROBE), str(ROOT), json.dumps(config), json.dumps(ctx)],
                          env={**hostproc.host_env(private), **PLANTED}, cwd=private, capture_output=True,
                          text=True, timeout=300)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, done.stderr[-4000:]
    yield {**lines[0], "returncode": done.returncode, "later": lines[1:], "stderr": done.stderr,
           "scratch": scratch, "private": private}
    for path in (scratch, model_dir, Path(private)):
        subprocess.run(["rm", "-rf", str(path)], check=False)


@pytest.fixture(scope="module")
def settings_module():
    from mlplatform.config import get_settings

    return get_settings()


def test_mandatory_layers_are_applied_and_every_layer_reports(probed):
    report = probed["sandbox"]
    assert set(report) == {"env", "workdir", "user", "userns", "rlimits", "landlock", "seccomp"}
    for name in ("env", "rlimits", "seccomp", "workdir"):
        assert report[name]["applied"], report[name]
    assert report["landlock"]["applied"] == (landlock.abi_version() > 0), report["landlock"]
    assert report["user"]["applied"] == (os.geteuid() == 0), report["user"]


@pytest.mark.parametrize("probe", REFUSED)
def test_what_a_model_might_try_is_refused(probed, probe):
    result = probed["results"][probe]
    assert result["refused"], result


@pytest.mark.parametrize("probe", UNREADABLE)
def test_files_outside_the_python_installation_are_unreadable(probed, probe):
    result = probed["results"][probe]
    assert result["refused"] and "Permission" in result["error"], result


def test_the_network_and_other_processes_are_out_of_reach(probed):
    results = probed["results"]
    assert "Operation not permitted" in results["socket_inet"]["error"]
    assert results["signal_parent"]["refused"], results["signal_parent"]


def test_threads_and_numpy_still_work(probed):
    assert not probed["results"]["thread_runs"]["refused"] and probed["results"]["thread_runs"]["value"] == "[10.0]"
    assert not probed["results"]["numpy_works"]["refused"]


def test_the_environment_holds_no_secret_and_the_process_runs_as_nobody(probed):
    identity = probed["identity"]
    assert set(identity["env"]) <= set(sandbox.KEPT_ENV)
    assert not set(PLANTED.values()) & set(identity["env"].values())
    assert identity["cwd"] == probed["private"] == identity["env"]["HOME"] == identity["env"]["TMPDIR"]
    if os.geteuid() == 0:
        assert identity["resuid"] == identity["resgid"] == [sandbox.NOBODY] * 3
        assert identity["groups"] == []
    assert "CpuLimitExceeded" in probed["results"]["cpu_python_loop"]["error"]


def test_the_manager_gives_hosts_a_minimal_environment():
    env = hostproc.host_env("/tmp/private")
    assert set(env) <= set(sandbox.KEPT_ENV)
    assert not any(marker in name for name in env for marker in ("MLPLATFORM", "DATABASE", "REDIS", "SECRET"))


def test_a_c_loop_over_its_cpu_budget_is_killed(probed):
    assert probed["later"] == []  # the loop never finished
    assert probed["returncode"] == -sandbox.KILL_SIGNAL, probed["stderr"][-2000:]
    assert hostproc.exit_reason(probed["returncode"]) == "killed by SIGPROF"
    assert -probed["returncode"] in hostproc.CPU_LIMIT_SIGNALS


def test_a_forbidden_path_inside_a_readable_tree_refuses_the_lock_down(tmp_path):
    config = sandbox.Config(private_dir=str(tmp_path), address_space_mb=4096, cpu_seconds=1,
                            forbidden_paths=[str(Path(sandbox.__file__).parent / "models")])
    with pytest.raises(sandbox.SandboxError, match="which model hosts may read"):
        sandbox.read_paths(config)


def test_lock_down_refuses_a_multithreaded_process():
    import threading

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        with pytest.raises(sandbox.SandboxError, match="single-threaded"):
            sandbox.lock_down(sandbox.Config(private_dir="/nonexistent", address_space_mb=4096, cpu_seconds=1))
    finally:
        stop.set()
        thread.join()


def test_exit_reasons_name_the_signal():
    assert hostproc.exit_reason(-signal.SIGSEGV) == "killed by SIGSEGV"
    assert hostproc.exit_reason(-signal.SIGKILL) == "killed by SIGKILL"
    assert hostproc.exit_reason(3) == "exited with status 3"


def test_a_host_is_always_kept_from_the_platforms_files_by_uid_or_landlock():
    assert set(sandbox.mandatory_layers(root=True)) >= {"env", "rlimits", "seccomp", "user"}
    assert set(sandbox.mandatory_layers(root=False)) >= {"env", "rlimits", "seccomp", "landlock"}
