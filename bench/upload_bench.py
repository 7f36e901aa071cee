"""Upload-to-ready time and model-host memory per loaded model, measured on the real platform.

    make bench-upload        # or: .venv/bin/python bench/upload_bench.py [--runs 5]

Starts the platform the way `make run` does (embedded Redis and SQLite in a throwaway var dir,
unless DATABASE_URL / REDIS_URL are set), then for a ~1 MB and a ~50 MB RandomForest file:
  * uploads it --runs times through `POST /api/v1/models/{name}/versions` and times each request
    from the first byte sent to the 201 (store + hash + fresh sandboxed host load + probe predict);
  * loads it into a pool model host through the host manager and reads that host's memory.
Prints a Markdown table; `--write` also replaces the registry section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import joblib  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402

from mlplatform.artifacts import path_for  # noqa: E402
from mlplatform.config import Settings  # noqa: E402
from mlplatform.inference.batch import Batch  # noqa: E402
from mlplatform.inference.client import HostClient  # noqa: E402
from mlplatform.runner import poll_http  # noqa: E402

EMAIL, PASSWORD = "bench@example.com", "upload timing passphrase 1"
RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Model registry: upload to ready, host memory"


@dataclass
class ModelFile:
    label: str
    payload: bytes
    n_features: int


def forest_file(target_bytes: int, label: str) -> ModelFile:
    """A RandomForest whose compressed-free joblib file is close to target_bytes."""
    X, y = make_classification(n_samples=2000, n_features=20, n_informative=10, random_state=0)
    probe = RandomForestClassifier(n_estimators=4, random_state=0).fit(X, y)
    per_tree = len(_dump(probe)) / 4
    trees = max(1, round(target_bytes / per_tree))
    model = RandomForestClassifier(n_estimators=trees, random_state=0, n_jobs=1).fit(X, y)
    return ModelFile(label, _dump(model), X.shape[1])


def _dump(model) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def start_platform(var_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "MLPLATFORM_VAR_DIR": str(var_dir), "MLPLATFORM_PORT": str(port)}
    log = (var_dir / "bench-platform.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "mlplatform.runner"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    poll_http(f"http://127.0.0.1:{port}/health/ready", lambda: process.poll() is None, timeout=300)
    return process


def sign_in(client: httpx.Client) -> None:
    client.post("/api/v1/auth/register", json={"email": EMAIL, "password": PASSWORD})
    answer = client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
    answer.raise_for_status()
    client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"


def time_uploads(client: httpx.Client, model: ModelFile, runs: int) -> tuple[list[float], dict]:
    seconds, version = [], {}
    for _ in range(runs):
        started = time.perf_counter()
        answer = client.post(
            f"/api/v1/models/bench-{model.label.lower().replace(' ', '-')}/versions",
            files={"file": (f"{model.label}.joblib", model.payload, "application/octet-stream")},
        )
        seconds.append(time.perf_counter() - started)
        if answer.status_code != 201:
            raise SystemExit(f"upload of {model.label} failed: {answer.status_code} {answer.text}")
        version = answer.json()
    return seconds, version


def host_memory(settings: Settings, version: dict, model: ModelFile) -> dict:
    """Load the version into a pool host (first predict) and read what the host reports for it."""
    hosts = HostClient(settings.host_socket, load_timeout=settings.host_load_timeout_seconds, call_timeout=settings.host_call_timeout_seconds)
    path = path_for(version["sha256"], settings)
    batch = Batch.from_input(np.zeros((1, model.n_features)))
    hosts.predict(version["sha256"], path, batch)
    return hosts.status()


def model_memory(status: dict, sha256: str) -> tuple[int, int]:
    """(memory charged to the model, RSS of the host holding it), from the manager's status."""
    for host in status["hosts"]:
        for loaded in host.get("models", []):
            if loaded["sha256"] == sha256:
                return loaded["memory_bytes"], host["rss_bytes"]
    raise SystemExit(f"model {sha256[:12]} is not loaded in any host: {status}")


def table(rows: list[dict]) -> str:
    lines = [
        "| model | file size | upload to ready p50 | min | max | load in sandbox | host memory for the model | host RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['label']} | {row['size'] / 1e6:.1f} MB | {statistics.median(row['seconds']):.2f} s | "
            f"{min(row['seconds']):.2f} s | {max(row['seconds']):.2f} s | {row['load_seconds']:.2f} s | "
            f"{row['memory'] / 1e6:.1f} MB | {row['rss'] / 1e6:.0f} MB |"
        )
    return "\n".join(lines)


def write_results(text: str, runs: int) -> None:
    header = f"{SECTION}\n\nMeasured {time.strftime('%Y-%m-%d')} with `make bench-upload` ({runs} uploads each, 2-core machine).\n\n"
    existing = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    before, _, rest = existing.partition(SECTION)
    after = rest[rest.find("\n## "):] if "\n## " in rest else ""
    RESULTS.write_text(before.rstrip() + "\n\n" + header + text + "\n" + after)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    models = [forest_file(1_000_000, "1 MB"), forest_file(50_000_000, "50 MB")]
    with tempfile.TemporaryDirectory(prefix="mlp-bench-") as tmp:
        var_dir = Path(tmp)
        platform = start_platform(var_dir, args.port)
        try:
            settings = Settings(var_dir=var_dir, port=args.port)
            rows = []
            with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=600) as client:
                sign_in(client)
                for model in models:
                    seconds, version = time_uploads(client, model, args.runs)
                    memory, rss = model_memory(host_memory(settings, version, model), version["sha256"])
                    rows.append({"label": model.label, "size": len(model.payload), "seconds": seconds, "load_seconds": version["load_seconds"], "memory": memory, "rss": rss})
        finally:
            platform.terminate()
            platform.wait(timeout=60)
    text = table(rows)
    print(text)
    if args.write:
        write_results(text, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
