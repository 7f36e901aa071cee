"""Make sure Debian's Chromium is there before the suite runs (`make test` calls this).

Installs it with apt when we can (root with apt-get, as on CI); otherwise stops with the exact
command. The browser tests are never skipped for a missing browser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]


def main() -> int:
    if CHROMIUM.exists():
        return 0
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("[make test] installing Debian's chromium for the browser tests", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(INSTALL, check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        return 0 if CHROMIUM.exists() else 1
    print(f"Chromium is missing. Install it, then run make test again:\n  sudo {' '.join(INSTALL)}",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
