import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

test('cube server with a malformed flag exits 2 naming it, before creating its data directory', () => {
  const root = mkdtempSync(join(tmpdir(), 'cube-server-flags-'));
  try {
    for (const [flags, named] of [
      [['--port', 'abc'], '--port'],
      [['--port', '70000'], '--port'],
      [['--heartbeat-timeout-s', 'soon'], '--heartbeat-timeout-s'],
      [['--rank-log-max-mib', '-1'], '--rank-log-max-mib'],
      [['--tls-cert', join(root, 'cert.pem')], '--tls-key'],
      [
        ['--tls-cert', join(root, 'missing.pem'), '--tls-key', join(root, 'missing.pem')],
        '--tls-cert',
      ],
    ] as const) {
      const dataDir = join(root, 'server');
      const r = run('server', '--data-dir', dataDir, ...flags);
      assert.equal(r.status, 2, `${flags.join(' ')}: ${r.stderr}`);
      assert.ok(r.stderr.includes(named), r.stderr);
      assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
      assert.equal(existsSync(dataDir), false, `${flags.join(' ')} created the data directory`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
