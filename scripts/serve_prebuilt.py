"""The container's web process: `reflex run --env prod` minus the frontend rebuild.

`reflex run --env prod` (what `make run` starts) compiles the app and runs `vite build` on
every start: 5-16 s, node and a writable `.web/` at run time. The Docker image instead builds the
frontend once, at image build time, with `reflex export --frontend-only --no-zip`; this script
then does the rest of what `reflex run --env prod` does (reflex 0.10.1, `reflex.reflex._run_prod`):
mark the app as compiled, mount the built `.web/build/client` in the backend and serve UI,
websocket and REST on one port with granian. Host, port and worker count come from Settings,
exactly as `mlplatform/runner.py` passes them to `reflex run`.

It relies on reflex internals (`run_backend_prod`, `REFLEX_SKIP_COMPILE`), so it is pinned to the
reflex version in requirements.txt: re-check `reflex.reflex._run_prod` when upgrading reflex.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mlplatform.config import get_settings  # noqa: E402

BUILT_FRONTEND = ROOT / ".web" / "build" / "client" / "index.html"


def main() -> int:
    os.chdir(ROOT)  # reflex finds rxconfig.py and .web/ in the working directory
    settings = get_settings()
    if not BUILT_FRONTEND.exists():
        print(f"[mlplatform] {BUILT_FRONTEND} is missing: run `reflex export --frontend-only --no-zip` "
              "first (the Docker image does it at build time)", file=sys.stderr)
        return 1
    if settings.prometheus_multiproc_dir:  # stale files from a previous start would skew /metrics
        metrics_dir = Path(settings.prometheus_multiproc_dir)
        metrics_dir.mkdir(parents=True, exist_ok=True)
        for stale in metrics_dir.glob("*.db"):
            stale.unlink()
    os.environ["GRANIAN_WORKERS"] = str(settings.web_workers)  # as runner.child_env does
    os.environ["REFLEX_REDIS_URL"] = settings.redis_url

    from reflex.utils import exec as reflex_exec
    from reflex_base import constants
    from reflex_base.config import get_config
    from reflex_base.environment import environment

    environment.REFLEX_ENV_MODE.set(constants.Env.PROD)
    get_config()._set_persistent(frontend_port=settings.port, backend_port=settings.port)
    environment.REFLEX_SKIP_COMPILE.set(True)  # the frontend in .web/ is already built
    print(f"[mlplatform] serving on {settings.host}:{settings.port} with {settings.web_workers} "
          f"worker(s); public URL {settings.public_url}", flush=True)
    reflex_exec.run_backend_prod(
        settings.host, settings.port, constants.LogLevel.WARNING, mount_frontend_compiled_app=True
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
