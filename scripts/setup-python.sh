#!/usr/bin/env bash
# The Python half of scripts/setup.sh (which runs it), on its own so that it can be run and
# tested alone.
set -euo pipefail
cd "$(dirname "$0")/.."

# The project's Python environment: the interpreter the demo, the tests, the examples and the
# benches run (src/core/python-interpreter.ts resolves it the same way: CUBE_PYTHON, else
# .venv/bin/python). CUBE_PYTHON may name an interpreter that already has torch >= 2.4 with
# numpy, safetensors and xxhash (a GPU node's image, a user's env); it is then checked, not
# changed. Otherwise .venv/ is (re)built from python/requirements.txt when missing or when the
# file changed since the last build (its sha256 is kept in the stamp below).
requirements=python/requirements.txt
stamp=.venv/.cube-requirements.sha256
if [ -n "${CUBE_PYTHON:-}" ]; then
  if ! report=$("$CUBE_PYTHON" scripts/check-python-env.py); then
    echo "setup: CUBE_PYTHON=$CUBE_PYTHON cannot run Cube's Python side (it needs torch >= 2.4," \
      "numpy, safetensors and xxhash; see above). Install them there, or unset CUBE_PYTHON" \
      "to let setup build .venv/ from $requirements." >&2
    exit 1
  fi
  echo "setup: using CUBE_PYTHON ($report); .venv/ is not created"
else
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [ ! -x .venv/bin/python ]; then
    why="missing"
  elif ! .venv/bin/python -c '' 2>/dev/null; then
    why="broken (its base interpreter is gone)"
  elif [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    why="stale ($requirements changed since it was built)"
  else
    why=""
  fi
  if [ -n "$why" ]; then
    # torch 2.x wheels need Python >= 3.10; say so rather than let pip report "no matching
    # distribution".
    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
      echo "setup: .venv/ is built from the machine's python3, and $(command -v python3) is" \
        "$(python3 -V 2>&1); PyTorch 2.x needs 3.10 or newer. Install one, or set CUBE_PYTHON." >&2
      exit 1
    fi
    echo "setup: .venv/ is $why: installing $requirements into it with $(command -v python3)" \
      "($(python3 -V 2>&1)); PyTorch and its CUDA wheels are ~5 GB, so this takes minutes" \
      "(pip shows each download, then is silent while it unpacks them)"
    rm -f "$stamp"
    # --clear only when the venv cannot run: a stale one keeps its packages and pip changes
    # just the pins that moved.
    if [ "$why" = "missing" ] || [ "${why#broken}" != "$why" ]; then python3 -m venv --clear .venv; fi
    .venv/bin/python -m pip install --disable-pip-version-check --progress-bar on \
      -r "$requirements"
    if ! report=$(.venv/bin/python scripts/check-python-env.py); then
      echo "setup: pip installed $requirements into .venv/, but it does not import (see above)" >&2
      exit 1
    fi
    # The stamp is written last, and atomically, so an interrupted install is redone next time.
    echo "$want" >"$stamp.tmp" && mv "$stamp.tmp" "$stamp"
    echo "setup: .venv/ ready ($report)"
  else
    echo "setup: .venv/ is up to date with $requirements"
  fi
fi
