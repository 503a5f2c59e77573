import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cube = fileURLToPath(new URL('../../bin/cube.js', import.meta.url));

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cube, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('an unknown command exits 2 and suggests the closest one', () => {
  const r = run('hardwre');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command 'hardwre'/);
  assert.match(r.stderr, /hardware/);
});

test('an unknown flag exits 2 naming the flag', () => {
  const r = run('hardware', '--jsn');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--jsn/);
});

test('an unknown accelerator id exits 2 with the nearest id', () => {
  const r = run('hardware', 'show', 'h100');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /UNKNOWN_ID/);
  assert.match(r.stderr, /h100-sxm/);
});

test('--help exits 0 and lists the commands', () => {
  const r = run('--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /hardware/);
});

test('a subcommand flag after its arguments belongs to the subcommand', () => {
  const r = run('hardware', 'show', 'h100-sxm', '--json');
  assert.equal(r.status, 0);
  const parsed = JSON.parse(r.stdout) as { id: string };
  assert.equal(parsed.id, 'h100-sxm');
});
