"""Checks that this interpreter can run Cube's Python side: torch >= 2.4, numpy, safetensors, xxhash.

Prints one line naming the interpreter and torch's version and exits 0, or prints what is missing
and exits 1. scripts/setup.sh runs it on CUBE_PYTHON and on the .venv it builds; it imports each
package for real, so a broken install (a wheel without its shared libraries) counts as missing.
"""

import importlib
import re
import sys

MIN_TORCH = (2, 4)
PACKAGES = ("torch", "numpy", "safetensors", "xxhash")


def torch_version(version: str) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", version)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def main() -> int:
    problems = []
    versions = {}
    for name in PACKAGES:
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # ImportError, or OSError from a missing shared library
            problems.append(f"{name} does not import ({type(exc).__name__}: {exc})")
            continue
        versions[name] = getattr(module, "__version__", None) or getattr(module, "VERSION", "?")
    if "torch" in versions and torch_version(versions["torch"]) < MIN_TORCH:
        problems.append(f"torch {versions['torch']} is older than {MIN_TORCH[0]}.{MIN_TORCH[1]}")
    if sys.version_info < (3, 10):
        problems.append(f"Python {sys.version.split()[0]} is older than 3.10")
    if problems:
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(
        f"{sys.executable}: Python {sys.version.split()[0]}, "
        + ", ".join(f"{n} {versions[n]}" for n in PACKAGES)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
