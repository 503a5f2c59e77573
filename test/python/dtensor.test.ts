// Runs python/tests/test_dtensor.py: DTensor state (FSDP2, tensor parallel, get_state_dict)
// saved with cube.Checkpointer on real gloo ranks (2 and 4), restored bit for bit in fresh
// processes, another world size or mesh refused on every rank; then `cube ckpt verify` checks
// the checkpoints those ranks wrote. Needs an interpreter with torch >= 2.4, named by CUBE_PYTHON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './launcher.ts';
import { torch2Python } from './torch2.ts';

const { python, skip } = torch2Python();

function verify(dir: string): string {
  // Exit status 0 or execFileSync throws with the CLI's output.
  return execFileSync(process.execPath, ['bin/cube.js', 'ckpt', 'verify', dir], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 120_000,
  });
}

test(
  'cube.Checkpointer saves DTensor state as local shards plus the global layout, restores it bit for bit on the same mesh and refuses another world size; cube ckpt verify accepts it',
  { skip, timeout: 1_300_000 },
  () => {
    const root = mkdtempSync(join(tmpdir(), 'cube-dtensor-'));
    try {
      const r = spawnSync(python ?? '', ['-m', 'unittest', '-v', 'test_dtensor'], {
        cwd: join(repoRoot, 'python/tests'),
        encoding: 'utf8',
        maxBuffer: 64 << 20,
        timeout: 1_200_000,
        env: {
          ...process.env,
          PYTHONPATH: `${join(repoRoot, 'python')}:${join(repoRoot, 'python/tests')}`,
          PYTHONDONTWRITEBYTECODE: '1',
          OMP_NUM_THREADS: '1',
          CUBE_TEST_DTENSOR: '1',
          CUBE_TEST_DTENSOR_ROOT: root,
        },
      });
      const failures = r.stderr
        .split('\n')
        .filter((line) => /^(FAIL|ERROR): /.test(line))
        .join('\n');
      assert.equal(
        r.status,
        0,
        `test_dtensor exited ${r.status ?? r.signal}:\n${failures}\n\n${r.stderr.slice(-8000)}`,
      );
      assert.match(r.stderr, /Ran 7 tests/);
      assert.match(r.stderr, /\nOK\n/);

      const fsdp = verify(join(root, 'fsdp'));
      assert.match(fsdp, /step 2 L3 timeline 0: ok \(2 shards\)/);
      assert.match(
        fsdp,
        /restore would choose step 2 timeline 0 \(rank 0 from L1, rank 1 from L1\)/,
      );
      const twoD = verify(join(root, 'fsdp-tp'));
      assert.match(twoD, /step 2 L3 timeline 0: ok \(4 shards\)/);
      assert.match(twoD, /restore would choose step 2 timeline 0/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
);
