// The interpreter for the tests that need torch >= 2.4 (FSDP2, DTensor, torch.distributed.checkpoint):
// CUBE_PYTHON, or a reason to skip them.
import { spawnSync } from 'node:child_process';

/** CUBE_PYTHON when it imports torch >= 2.4; otherwise `python` is undefined and `skip` says why. */
export function torch2Python(): { python: string | undefined; skip: string | false } {
  const python = process.env.CUBE_PYTHON;
  if (python === undefined || python === '') {
    return {
      python: undefined,
      skip: 'CUBE_PYTHON is unset: name an interpreter with torch >= 2.4 (FSDP2, DTensor, DCP)',
    };
  }
  const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0) {
    return {
      python: undefined,
      skip: `CUBE_PYTHON=${python} cannot import torch: ${(r.stderr ?? '').slice(-300)}`,
    };
  }
  const version = r.stdout.trim();
  const [major = 0, minor = 0] = version.split(/[.+]/).map(Number);
  if (major < 2 || (major === 2 && minor < 4)) {
    return {
      python: undefined,
      skip: `CUBE_PYTHON=${python} has torch ${version}; these tests need torch >= 2.4`,
    };
  }
  return { python, skip: false };
}
