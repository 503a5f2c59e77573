// The two implementations of docs/checkpoint-format.md read each other: a checkpoint written by
// the Python client is listed, verified and inspected by `cube ckpt`, and its shard loads in the
// independent, reference-strict reader; a shard written by the TypeScript engine decodes in the
// Python client. Both read the CPU lists of the launcher's environment alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { persistsToL3, writeSafetensorsFile } from '../../src/ckpt/index.ts';
import { parseCpuList } from '../../src/core/index.ts';
import { python, repoRoot } from './launcher.ts';

const cube = join(repoRoot, 'bin/cube.js');
const reader = join(repoRoot, 'test/fixtures/ckpt/read_safetensors.py');
const env = {
  ...process.env,
  PYTHONPATH: join(repoRoot, 'python'),
  PYTHONDONTWRITEBYTECODE: '1',
  OMP_NUM_THREADS: '1',
};

function run(
  cmd: string,
  args: string[],
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd: repoRoot, env, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const writeWithClient = `
import sys, torch, cube
root = sys.argv[1]
torch.manual_seed(0)
model = torch.nn.Linear(8, 4)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
model(torch.randn(2, 8)).sum().backward()
opt.step()
ckpt = cube.Checkpointer(job="xlang", rank=0, world_size=1, l1_dir=root + "/L1", l3_dir=root + "/L3", node="n0")
for step in (10, 20):
    ckpt.save(step, {"model": model.state_dict(), "optimizer": opt.state_dict(), "note": "hello"})
    ckpt.wait()
ckpt.close()
`;

test('a checkpoint written by the Python client is listed, verified and inspected by cube ckpt', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'cube-xlang-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const w = run(python, ['-c', writeWithClient, root]);
  assert.equal(w.status, 0, w.stderr);

  const ls = run(process.execPath, [cube, 'ckpt', 'ls', root, '--json']);
  assert.equal(ls.status, 0, ls.stderr);
  const listed = JSON.parse(ls.stdout) as {
    steps: { step: number; complete: Record<string, boolean> }[];
  };
  const step20 = listed.steps.find((s) => s.step === 20);
  assert.equal(step20?.complete.L3, true);
  assert.equal(step20?.complete.L1, true);

  const verify = run(process.execPath, [cube, 'ckpt', 'verify', root]);
  assert.equal(verify.status, 0, verify.stdout + verify.stderr);

  const inspect = run(process.execPath, [cube, 'ckpt', 'inspect', root, '--step', '20', '--json']);
  assert.equal(inspect.status, 0, inspect.stderr);
  assert.match(inspect.stdout, /model\/weight/);
  assert.match(inspect.stdout, /optimizer\/state\/0\/exp_avg/);

  const shardDir = join(root, 'L3', 'xlang', 'step-0000000020');
  const shard = readdirSync(shardDir).find((f) => f.endsWith('.safetensors')) ?? '';
  const strict = run(python, [reader, 'read', join(shardDir, shard)]);
  assert.equal(strict.status, 0, strict.stderr);
  const parsed = JSON.parse(strict.stdout) as { tensors: Record<string, { shape: number[] }> };
  assert.deepEqual(parsed.tensors['model/weight']?.shape, [4, 8]);
});

test('a shard written by the TypeScript engine decodes in the Python client', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'cube-xlang-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const path = join(root, 'ts.safetensors');
  await writeSafetensorsFile(
    path,
    {
      'model/w': { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
      'model/step': { shape: [], data: new BigInt64Array([7n]) },
    },
    { metadata: { format: 'pt' } },
  );
  const decode = run(python, [
    '-c',
    'import sys, cube; meta, t = cube.decode_shard(bytearray(open(sys.argv[1], "rb").read()), sys.argv[1]); print(t["model/w"].tolist(), int(t["model/step"]))',
    path,
  ]);
  assert.equal(decode.status, 0, decode.stderr);
  assert.equal(decode.stdout.trim(), '[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]] 7');
});

test('the agent and the client read a CPU list (CUBE_CKPT_CPUS) alike, and refuse the same bad ones', () => {
  const last = availableParallelism() - 1;
  const lists = [
    '0',
    ` 0 ,${last}`,
    `0-${last}`,
    `${last}-${last},0`,
    '',
    '0,,1',
    '1-a',
    '-1',
    '3-1',
    '0x1',
    '٣',
  ];
  const script = `
import json, sys
from cube.priority import parse_cpu_list
from cube.errors import CheckpointError
out = []
for value in json.loads(sys.argv[1]):
    try:
        out.append(sorted(parse_cpu_list(value, "CUBE_CKPT_CPUS")))
    except CheckpointError:
        out.append(None)
print(json.dumps(out))
`;
  const r = run(python, ['-c', script, JSON.stringify(lists)]);
  assert.equal(r.status, 0, r.stderr);
  const fromTs = lists.map((value) => {
    try {
      return parseCpuList(value, 'CUBE_CKPT_CPUS');
    } catch {
      return null;
    }
  });
  assert.deepEqual(JSON.parse(r.stdout), fromTs);
  assert.equal(
    fromTs.filter((cpus) => cpus === null).length,
    7,
    'the last seven are refused by both',
  );
});

test('the daemons and the client pick the same L3 steps for every cadence', () => {
  const cadences: { l3Every: number; everySteps: number | null }[] = [
    { l3Every: 1, everySteps: null },
    { l3Every: 1, everySteps: 10 },
    { l3Every: 3, everySteps: null },
    { l3Every: 4, everySteps: 5 },
    { l3Every: 2, everySteps: 7 },
  ];
  const steps = Array.from({ length: 121 }, (_, i) => i);
  const script = `
import json, sys
from cube.cadence import persists_to_l3
cadences, steps = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps([[s for s in steps if persists_to_l3(s, c["l3Every"], c["everySteps"])] for c in cadences]))
`;
  const r = run(python, ['-c', script, JSON.stringify(cadences), JSON.stringify(steps)]);
  assert.equal(r.status, 0, r.stderr);
  const fromTs = cadences.map((c) => steps.filter((s) => persistsToL3(s, c)));
  assert.deepEqual(JSON.parse(r.stdout), fromTs);
  assert.deepEqual(fromTs[3], [0, 20, 40, 60, 80, 100, 120]);
});
