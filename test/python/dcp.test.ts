// Runs python/tests/test_dcp.py: cube.dcp as torch.distributed.checkpoint's storage backend,
// FSDP2 and DDP state saved on N real gloo ranks and loaded on M (resharding), bit for bit, and a
// corrupted shard never loaded. Needs an interpreter with torch >= 2.4, named by CUBE_PYTHON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './launcher.ts';
import { torch2Python } from './torch2.ts';

const { python, skip } = torch2Python();

test(
  'cube.dcp saves FSDP2 and DDP state through DCP on N ranks and loads it on M ranks bit for bit, never from a corrupted shard',
  { skip, timeout: 1_300_000 },
  () => {
    const r = spawnSync(python ?? '', ['-m', 'unittest', '-v', 'test_dcp'], {
      cwd: join(repoRoot, 'python/tests'),
      encoding: 'utf8',
      maxBuffer: 64 << 20,
      timeout: 1_200_000,
      env: {
        ...process.env,
        PYTHONPATH: `${join(repoRoot, 'python')}:${join(repoRoot, 'python/tests')}`,
        PYTHONDONTWRITEBYTECODE: '1',
        OMP_NUM_THREADS: '1',
        CUBE_TEST_DCP: '1',
      },
    });
    const failures = r.stderr
      .split('\n')
      .filter((line) => /^(FAIL|ERROR): /.test(line))
      .join('\n');
    assert.equal(
      r.status,
      0,
      `test_dcp exited ${r.status ?? r.signal}:\n${failures}\n\n${r.stderr.slice(-8000)}`,
    );
    assert.match(r.stderr, /Ran 15 tests/);
    assert.match(r.stderr, /\nOK\n/);
  },
);
