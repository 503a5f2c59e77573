// scripts/setup-python.sh (the Python half of scripts/setup.sh), run for real on a copy of its
// files: it reuses a CUBE_PYTHON that can run Cube's Python side, refuses one that cannot (naming
// what is missing) and leaves an up-to-date .venv alone, creating nothing in any of these cases.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { python, repoRoot } from './launcher.ts';

/** A directory holding setup-python.sh, check-python-env.py and requirements.txt, as a checkout. */
function setupCopy(): { root: string; cleanup(): void } {
  const root = mkdtempSync(join(tmpdir(), 'cube-setup-python-'));
  for (const file of [
    'scripts/setup-python.sh',
    'scripts/check-python-env.py',
    'python/requirements.txt',
  ]) {
    mkdirSync(join(root, file, '..'), { recursive: true });
    copyFileSync(join(repoRoot, file), join(root, file));
  }
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

function runSetup(root: string, env: Record<string, string>): ReturnType<typeof spawnSync> {
  // Only what the test names: the caller's CUBE_PYTHON or PYTHONPATH must not leak in.
  const base = { ...process.env };
  delete base['CUBE_PYTHON'];
  delete base['PYTHONPATH'];
  return spawnSync('bash', [join(root, 'scripts/setup-python.sh')], {
    encoding: 'utf8',
    env: { ...base, ...env },
    timeout: 120_000,
  });
}

test('setup reuses a CUBE_PYTHON that imports torch >= 2.4, numpy, safetensors and xxhash, and creates no .venv', () => {
  const c = setupCopy();
  try {
    const r = runSetup(c.root, { CUBE_PYTHON: python });
    assert.equal(r.status, 0, `${String(r.stdout)}\n${String(r.stderr)}`);
    assert.match(
      String(r.stdout),
      /setup: using CUBE_PYTHON \(.*torch 2\.\d+.*\); \.venv\/ is not created/,
    );
    assert.equal(existsSync(join(c.root, '.venv')), false);
  } finally {
    c.cleanup();
  }
});

test('setup refuses a CUBE_PYTHON with an old torch and a safetensors that does not import, naming both, and creates no .venv', () => {
  const c = setupCopy();
  try {
    // An interpreter whose torch is 1.13 (Debian's python3-torch) and whose safetensors fails
    // to import (as a wheel without its shared library does): stand-in packages on PYTHONPATH,
    // imported for real by the check.
    const site = join(c.root, 'site');
    for (const [name, version] of [
      ['torch', '1.13.0a0'],
      ['numpy', '1.24.2'],
      ['xxhash', '3.2.0'],
    ] as const) {
      mkdirSync(join(site, name), { recursive: true });
      writeFileSync(join(site, name, '__init__.py'), `__version__ = ${JSON.stringify(version)}\n`);
    }
    mkdirSync(join(site, 'safetensors'));
    writeFileSync(
      join(site, 'safetensors', '__init__.py'),
      'raise ImportError("libsafetensors.so: cannot open shared object file")\n',
    );
    const r = runSetup(c.root, { CUBE_PYTHON: python, PYTHONPATH: site });
    assert.equal(r.status, 1, String(r.stdout));
    const err = String(r.stderr);
    assert.match(err, /torch 1\.13\.0a0 is older than 2\.4/);
    assert.match(err, /safetensors does not import \(ImportError: libsafetensors\.so/);
    assert.match(err, /CUBE_PYTHON=.* cannot run Cube's Python side/);
    assert.equal(existsSync(join(c.root, '.venv')), false);
  } finally {
    c.cleanup();
  }
});

test('setup leaves a .venv alone while its stamp matches requirements.txt', () => {
  const c = setupCopy();
  try {
    const venvBin = join(c.root, '.venv', 'bin');
    mkdirSync(venvBin, { recursive: true });
    symlinkSync(python, join(venvBin, 'python'));
    const requirements = readFileSync(join(c.root, 'python/requirements.txt'));
    const sha = createHash('sha256').update(requirements).digest('hex');
    writeFileSync(join(c.root, '.venv/.cube-requirements.sha256'), `${sha}\n`);
    const r = runSetup(c.root, {});
    assert.equal(r.status, 0, `${String(r.stdout)}\n${String(r.stderr)}`);
    assert.equal(
      String(r.stdout).trim(),
      'setup: .venv/ is up to date with python/requirements.txt',
    );
  } finally {
    c.cleanup();
  }
});
