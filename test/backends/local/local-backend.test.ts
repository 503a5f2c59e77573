import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBackend, RotatingLog, type LaunchSpec } from '../../../src/backends/index.ts';
import { CubeError } from '../../../src/core/index.ts';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cube-local-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function spec(dir: string, script: string, extra: Partial<LaunchSpec> = {}): LaunchSpec {
  return {
    name: 'job/0/rank-0',
    command: ['/bin/sh', '-c', script],
    workingDir: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    log: { path: join(dir, 'logs', 'rank-0.log'), maxBytes: 1 << 20, keepFiles: 2 },
    ...extra,
  };
}

/** True while `pid` runs (a zombie nobody reaped yet counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

test('a rank runs with exactly its env and working dir; its output reaches the log and onOutput', async (t) => {
  const dir = tempDir(t);
  const backend = new LocalBackend();
  t.after(() => backend.close());
  const seen: string[] = [];
  const handle = await backend.launch(
    spec(dir, 'echo "rank=$RANK home=${HOME:-none}"; pwd; echo oops >&2; exit 3', {
      env: { PATH: '/usr/bin:/bin', RANK: '5' },
      onOutput: (stream, text) => seen.push(`${stream}:${text}`),
    }),
  );
  assert.ok(handle.pid > 0);
  const exit = await new Promise((resolve) => backend.onExit(handle, resolve));
  assert.deepEqual(exit, { exitCode: 3, signal: null });
  const log = readFileSync(join(dir, 'logs', 'rank-0.log'), 'utf8');
  assert.match(log, /rank=5 home=none/);
  assert.match(log, new RegExp(`^${dir}$`, 'm'));
  assert.match(log, /oops/);
  assert.ok(seen.includes('stderr:oops\n'));
  assert.ok(seen.some((s) => s.startsWith('stdout:rank=5')));
  // Listeners added after the exit still hear it.
  assert.deepEqual(await new Promise((resolve) => backend.onExit(handle, resolve)), exit);
});

test('a rank ended by a signal reports the signal', async (t) => {
  const dir = tempDir(t);
  const backend = new LocalBackend();
  t.after(() => backend.close());
  const handle = await backend.launch(spec(dir, 'kill -9 $$'));
  const exit = await new Promise((resolve) => backend.onExit(handle, resolve));
  assert.deepEqual(exit, { exitCode: null, signal: 'SIGKILL' });
});

test('kill stops the whole process group: SIGTERM first, SIGKILL after the grace', async (t) => {
  const dir = tempDir(t);
  const backend = new LocalBackend();
  t.after(() => backend.close());
  let out = '';
  // The rank ignores SIGTERM and has a child that would outlive it.
  const handle = await backend.launch(
    spec(dir, "trap '' TERM; sleep 60 & echo child=$!; wait", {
      onOutput: (_s, text) => (out += text),
    }),
  );
  const deadline = Date.now() + 5000;
  while (!/child=\d+/.test(out) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 10));
  const child = Number(/child=(\d+)/.exec(out)?.[1]);
  assert.ok(alive(child));
  const started = Date.now();
  const exit = await backend.kill(handle, { graceMs: 300 });
  const tookMs = Date.now() - started;
  assert.equal(exit.signal, 'SIGKILL');
  assert.ok(tookMs >= 250 && tookMs < 3000, `took ${tookMs} ms`);
  assert.equal(alive(child), false, 'the child in the group is gone too');
  // A second kill of an exited rank answers at once.
  assert.deepEqual(await backend.kill(handle, { graceMs: 5000 }), exit);
});

test('a rank that exits on SIGTERM is not SIGKILLed; what it left running in its group is', async (t) => {
  const dir = tempDir(t);
  const backend = new LocalBackend();
  t.after(() => backend.close());
  let out = '';
  const handle = await backend.launch(
    spec(dir, 'sleep 60 & echo child=$!; exit 0', { onOutput: (_s, text) => (out += text) }),
  );
  const exit = await new Promise((resolve) => backend.onExit(handle, resolve));
  assert.deepEqual(exit, { exitCode: 0, signal: null });
  const child = Number(/child=(\d+)/.exec(out)?.[1]);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(alive(child), false, 'the leftover sleep was killed with the group');
  const sleeper = await backend.launch(spec(dir, 'exec sleep 60'));
  assert.deepEqual(await backend.kill(sleeper, { graceMs: 5000 }), {
    exitCode: null,
    signal: 'SIGTERM',
  });
});

test("a chatty rank's log rotates at the size limit and keeps N files", async (t) => {
  const dir = tempDir(t);
  const backend = new LocalBackend();
  t.after(() => backend.close());
  const path = join(dir, 'logs', 'rank-0.log');
  let forwarded = '';
  // 300 numbered lines of 100 bytes: 30,000 bytes through a 4 KiB limit.
  const handle = await backend.launch(
    spec(dir, 'i=0; while [ $i -lt 300 ]; do printf "%099d\\n" $i; i=$((i+1)); done', {
      log: { path, maxBytes: 4096, keepFiles: 2 },
      onOutput: (_s, text) => (forwarded += text),
    }),
  );
  await new Promise((resolve) => backend.onExit(handle, resolve));
  const files = readdirSync(join(dir, 'logs')).sort();
  assert.deepEqual(files, ['rank-0.log', 'rank-0.log.1', 'rank-0.log.2']);
  for (const f of files)
    assert.ok(statSync(join(dir, 'logs', f)).size <= 4096, `${f} within the limit`);
  const kept = ['rank-0.log.2', 'rank-0.log.1', 'rank-0.log']
    .map((f) => readFileSync(join(dir, 'logs', f), 'utf8'))
    .join('');
  assert.equal(forwarded.length, 30_000, 'every byte was forwarded');
  assert.ok(forwarded.endsWith(kept), 'the kept files are the newest output, in order');
  // A file rotates only when the next write would not fit, so the newest file and the one
  // before it always hold more than one limit's worth between them (pipe chunking varies).
  assert.ok(kept.length > 4096, `kept ${kept.length} bytes`);
});

test('the rotating log splits one write larger than the limit and rotates without keeping files', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'x.log');
  const log = await RotatingLog.open({ path, maxBytes: 10, keepFiles: 0 });
  log.write('abcdefghijklmnopqrstuvwxyz');
  await log.close();
  assert.equal(readFileSync(path, 'utf8'), 'uvwxyz');
  assert.equal(existsSync(`${path}.1`), false);
  assert.equal(log.error, null);
});

test('a program that does not exist fails to launch, and the log says why', async (t) => {
  const dir = tempDir(t);
  const backend = new LocalBackend();
  t.after(() => backend.close());
  await assert.rejects(
    backend.launch({ ...spec(dir, ''), command: [join(dir, 'no-such-program')] }),
    (e: unknown) => e instanceof CubeError && e.code === 'INFEASIBLE' && /ENOENT/.test(e.message),
  );
  assert.match(readFileSync(join(dir, 'logs', 'rank-0.log'), 'utf8'), /cannot start/);
});
