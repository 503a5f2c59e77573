import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const depcruise = fileURLToPath(new URL('../node_modules/.bin/depcruise', import.meta.url));

function cruise(cwd: string): { status: number | null; output: string } {
  const r = spawnSync(depcruise, ['src', '--config', `${root}.dependency-cruiser.cjs`], {
    cwd,
    encoding: 'utf8',
  });
  return { status: r.status, output: r.stdout + r.stderr };
}

test('the dependency check rejects hardware importing cli and a circular import', () => {
  const r = cruise(fileURLToPath(new URL('./fixtures/depcheck/', import.meta.url)));
  assert.notEqual(r.status, 0);
  assert.match(r.output, /core-libraries-stay-below-the-run-path/);
  assert.match(r.output, /no-circular/);
});

test('the real source tree passes the dependency check', () => {
  const r = cruise(root);
  assert.equal(r.status, 0, r.output);
});
