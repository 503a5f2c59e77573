// The interpreter for the tests that need torch >= 2.4 (FSDP2, DTensor, torch.distributed.checkpoint):
// the project's (CUBE_PYTHON, else .venv/bin/python, which setup builds with torch 2.15), or a
// reason to skip them when CUBE_PYTHON names an older torch.
import { spawnSync } from 'node:child_process';
import { pythonInterpreter } from '../../src/core/index.ts';

/** The project's interpreter when it imports torch >= 2.4; otherwise `python` is undefined and `skip` says why. */
export function torch2Python(): { python: string | undefined; skip: string | false } {
  const python = pythonInterpreter();
  const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0) {
    return {
      python: undefined,
      skip: `${python} cannot import torch: ${(r.stderr ?? '').slice(-300)}`,
    };
  }
  const version = r.stdout.trim();
  const [major = 0, minor = 0] = version.split(/[.+]/).map(Number);
  if (major < 2 || (major === 2 && minor < 4)) {
    return {
      python: undefined,
      skip: `${python} has torch ${version}; these tests need torch >= 2.4`,
    };
  }
  return { python, skip: false };
}
