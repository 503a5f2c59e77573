// Runs the Python client's unittests (python/tests) with the project's interpreter (CUBE_PYTHON,
// else .venv/bin/python) and reports failures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { python, repoRoot } from './launcher.ts';

test('python/tests: the checkpoint client unittests pass', () => {
  const r = spawnSync(python, ['-m', 'unittest', 'discover', '-s', 'python/tests', '-v'], {
    cwd: repoRoot,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    timeout: 240_000,
    env: {
      ...process.env,
      PYTHONPATH: join(repoRoot, 'python'),
      PYTHONDONTWRITEBYTECODE: '1',
      OMP_NUM_THREADS: '1',
    },
  });
  const failures = r.stderr
    .split('\n')
    .filter((line) => /^(FAIL|ERROR): /.test(line))
    .join('\n');
  assert.equal(
    r.status,
    0,
    `unittest exited ${r.status ?? r.signal}:\n${failures}\n\n${r.stderr.slice(-6000)}`,
  );
  assert.match(r.stderr, /\nOK/);
});
