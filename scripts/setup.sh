#!/usr/bin/env bash
# Installs what Cube needs on a fresh Debian machine with Node 20: the npm packages from the
# lockfile; the project's Python environment (.venv/, PyTorch and the rest of
# python/requirements.txt from PyPI) unless CUBE_PYTHON names one to reuse; the Debian packages
# the tests use and the Chromium the dashboard's browser tests drive; and the test tools' Python
# venv (.venv-tools/, schemathesis), each only when missing or stale; then the compiled CLI
# (dist/) and the dashboard bundle when stale.
set -euo pipefail
cd "$(dirname "$0")/.."

# iproute2: `ip netns` for the partition test (test/control/partition.test.ts).
debian_packages=(iproute2)
missing=()
for pkg in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
# The venvs are built from the machine's python3; Debian's lacks ensurepip (so `python3 -m venv`
# fails) until python3-venv is installed. A python3 from elsewhere (pyenv) carries its own.
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
# The dashboard's browser tests drive Debian's Chromium (never a downloaded browser build).
[ -x /usr/bin/chromium ] || missing+=(chromium)
# The metrics tests check every /metrics Cube serves with Debian's promtool (package prometheus).
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The project's Python environment (.venv/, or the interpreter CUBE_PYTHON names).
bash scripts/setup-python.sh

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# The compiled CLI (dist/, gitignored): bin/cube.js runs it while it is as new as src/, and the
# TypeScript sources through tsx (slower, with a warning) when it is not. Rebuilt when stale.
if ! node scripts/build.mjs --check 2>/dev/null; then
  echo "setup: compiling src/ into dist/ (npm run build)"
  npm run build --silent
fi

# Test tools from PyPI in their own virtual environment (gitignored): schemathesis fuzzes the
# API from its OpenAPI document (test/fuzz/api-schemathesis.test.ts). Installed only when missing.
schemathesis_version=4.32.5
if ! .venv-tools/bin/schemathesis --version 2>/dev/null | grep -qF "$schemathesis_version"; then
  echo "setup: installing schemathesis $schemathesis_version into .venv-tools/"
  [ -x .venv-tools/bin/pip ] || python3 -m venv .venv-tools
  .venv-tools/bin/pip install --disable-pip-version-check --progress-bar on \
    "schemathesis==$schemathesis_version"
fi

# The dashboard's production bundle (served by the control plane at /), rebuilt when stale.
if [ ! -f web/dist/index.html ] ||
  [ -n "$(find web/src web/index.html web/vite.config.ts package-lock.json -newer web/dist/index.html -print -quit)" ]; then
  npm run build:web --silent
fi
