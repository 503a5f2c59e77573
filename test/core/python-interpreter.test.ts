import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { CubeError, pythonInterpreter } from '../../src/core/index.ts';

/** A checkout-like directory, with a `.venv/bin/python` when `venv` is true. */
function checkout(venv: boolean): { root: string; venvPython: string; cleanup(): void } {
  const root = mkdtempSync(join(tmpdir(), 'cube-python-interpreter-'));
  const venvPython = join(root, '.venv', 'bin', 'python');
  if (venv) {
    mkdirSync(join(root, '.venv', 'bin'), { recursive: true });
    writeFileSync(venvPython, '#!/bin/sh\n');
    chmodSync(venvPython, 0o755);
  }
  return { root, venvPython, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

test("without CUBE_PYTHON the checkout's .venv/bin/python is the interpreter", () => {
  const c = checkout(true);
  try {
    assert.equal(pythonInterpreter({ env: {}, repoRoot: c.root }), c.venvPython);
  } finally {
    c.cleanup();
  }
});

test('CUBE_PYTHON wins over the .venv, a path in it is made absolute and a bare name is kept', () => {
  const c = checkout(true);
  try {
    const env = (value: string): Record<string, string> => ({ CUBE_PYTHON: value });
    assert.equal(
      pythonInterpreter({ env: env('/opt/gpu/bin/python'), repoRoot: c.root }),
      '/opt/gpu/bin/python',
    );
    // A job's command runs in its working directory, so a relative path is pinned here.
    assert.equal(
      pythonInterpreter({ env: env('envs/t/bin/python'), repoRoot: c.root }),
      resolve('envs/t/bin/python'),
    );
    assert.equal(pythonInterpreter({ env: env('python3.12'), repoRoot: c.root }), 'python3.12');
  } finally {
    c.cleanup();
  }
});

test('an empty CUBE_PYTHON counts as unset, as in scripts/setup.sh', () => {
  const c = checkout(true);
  try {
    assert.equal(pythonInterpreter({ env: { CUBE_PYTHON: ' ' }, repoRoot: c.root }), c.venvPython);
  } finally {
    c.cleanup();
  }
});

test('with neither CUBE_PYTHON nor a .venv the error names the missing path and says to run setup', () => {
  const c = checkout(false);
  try {
    assert.throws(
      () => pythonInterpreter({ env: {}, repoRoot: c.root }),
      (e: unknown) =>
        e instanceof CubeError &&
        e.code === 'INFEASIBLE' &&
        e.message.includes(c.venvPython) &&
        e.where.field === 'CUBE_PYTHON' &&
        (e.hint ?? '').includes('bash scripts/setup.sh'),
    );
  } finally {
    c.cleanup();
  }
});
