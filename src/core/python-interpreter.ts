import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CubeError } from './cube-error.ts';

/** The checkout this file belongs to: src/core/ is two levels down. */
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/**
 * CUBE_PYTHON, or undefined when unset. An empty one counts as unset, as in scripts/setup.sh
 * (`${CUBE_PYTHON:-}`), so that `CUBE_PYTHON= cmd` means "the project's .venv" in both places.
 * Plain code, not a Zod schema: an environment value is always a string, and core stays free of
 * zod so that `cube hardware` does not pay ~70 ms of CPU to load it (bench/cli).
 */
function cubePython(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

export interface PythonInterpreterOptions {
  /** The environment to read `CUBE_PYTHON` from; `process.env` by default. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The checkout whose `.venv` to use; this one by default. */
  readonly repoRoot?: string;
}

/**
 * The Python interpreter Cube runs its Python side with (the demo's ranks, the tests, the
 * benches): `CUBE_PYTHON` when set, else the project's `<repo>/.venv/bin/python` that
 * `scripts/setup.sh` builds. A `CUBE_PYTHON` holding a path is made absolute, so that a job
 * command naming it runs the same interpreter from any working directory; a bare name
 * (`python3`) is left to the PATH lookup. Throws a CubeError (INFEASIBLE) when neither exists.
 */
export function pythonInterpreter(options: PythonInterpreterOptions = {}): string {
  const root = options.repoRoot ?? repoRoot;
  const fromEnv = cubePython((options.env ?? process.env)['CUBE_PYTHON']);
  if (fromEnv !== undefined) return fromEnv.includes('/') ? resolve(fromEnv) : fromEnv;
  const venvPython = join(root, '.venv', 'bin', 'python');
  if (existsSync(venvPython)) return venvPython;
  throw new CubeError(
    'INFEASIBLE',
    `no Python environment: ${venvPython} does not exist and CUBE_PYTHON is not set`,
    {
      where: { file: venvPython, field: 'CUBE_PYTHON' },
      hint: 'run `bash scripts/setup.sh` (it builds .venv/ with PyTorch from python/requirements.txt), or set CUBE_PYTHON to an interpreter with torch >= 2.4, numpy, safetensors and xxhash',
    },
  );
}
