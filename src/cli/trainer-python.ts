import { spawnSync } from 'node:child_process';
import { CubeError, pythonInterpreter } from '../core/index.ts';

/**
 * The project's interpreter, checked to import what the example trainer needs; `who` names
 * the command in the error (`the demo`, `cube chaos`).
 */
export function trainerPython(who: string): string {
  const python = pythonInterpreter();
  const r = spawnSync(python, ['-c', 'import torch, numpy, xxhash'], { encoding: 'utf8' });
  if (r.status !== 0)
    throw new CubeError(
      'INFEASIBLE',
      `${who} trains a real PyTorch model, and ${python} cannot import torch, numpy and xxhash`,
      {
        hint: 'run `bash scripts/setup.sh` (it builds .venv/ with PyTorch from python/requirements.txt), or set CUBE_PYTHON to an interpreter with torch >= 2.4',
      },
    );
  return python;
}
