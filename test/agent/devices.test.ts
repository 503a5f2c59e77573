import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  amdPlugin,
  cpuPlugin,
  nvidiaPlugin,
  nvidiaSmiArgs,
  parseAmdSmi,
  parseCpuModel,
  parseNvidiaSmi,
  parseRocmSmi,
  selectDevicePlugin,
  type CommandResult,
  type DevicePlugin,
  type RunCommand,
} from '../../src/agent/index.ts';
import { CubeError } from '../../src/core/index.ts';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const fixture = (name: string): string => readFileSync(join(fixtures, name), 'utf8');
const MiB = 1024 * 1024;

/** A RunCommand that answers recorded outputs by program and first argument. */
function recorded(answers: Record<string, CommandResult>): RunCommand & { calls: string[][] } {
  const calls: string[][] = [];
  const run = (argv: readonly string[]): Promise<CommandResult> => {
    calls.push([...argv]);
    const key = argv.slice(0, 2).join(' ');
    return Promise.resolve(
      answers[key] ??
        answers[argv[0] ?? ''] ?? { exitCode: null, stdout: '', stderr: `${argv[0]}: not found` },
    );
  };
  return Object.assign(run, { calls });
}

const ok = (stdout: string): CommandResult => ({ exitCode: 0, stdout, stderr: '' });

test('nvidia-smi CSV becomes devices with memory in bytes and health from ECC and temperature', () => {
  const devices = parseNvidiaSmi(fixture('nvidia-smi.csv'));
  assert.equal(devices.length, 4);
  assert.deepEqual(
    devices.map((d) => [d.index, d.kind, d.model, d.memoryBytes, d.health]),
    [
      [0, 'nvidia', 'NVIDIA H100 80GB HBM3', 81559 * MiB, 'ok'],
      [1, 'nvidia', 'NVIDIA H100 80GB HBM3', 81559 * MiB, 'ok'],
      [2, 'nvidia', 'NVIDIA H100 80GB HBM3', 81559 * MiB, 'degraded'],
      [3, 'nvidia', 'NVIDIA H100 80GB HBM3', 81559 * MiB, 'failed'],
    ],
  );
  assert.equal(devices[0]?.uuid, 'GPU-4d0f5a0a-9d55-4b5e-8a2a-1b7f0a6d3c11');
  assert.equal(devices[1]?.utilizationPercent, 97);
  assert.match(devices[2]?.problem ?? '', /temperature 92/);
  assert.match(devices[3]?.problem ?? '', /2 uncorrected ECC errors/);
});

test('nvidia-smi fields reading [N/A], [Not Supported] or [GPU requires reset] are understood', () => {
  const devices = parseNvidiaSmi(fixture('nvidia-smi-mixed.csv'));
  assert.deepEqual(
    devices.map((d) => [d.model, d.health]),
    [
      ['Tesla T4', 'ok'],
      ['NVIDIA A100-SXM4-40GB', 'failed'],
      ['Quadro RTX 8000', 'ok'],
    ],
  );
  assert.match(devices[1]?.problem ?? '', /GPU requires reset/);
  assert.equal(devices[1]?.temperatureC, undefined);
  assert.equal(devices[0]?.memoryBytes, 15360 * MiB);
});

test('a malformed nvidia-smi line is an error naming the line', () => {
  assert.throws(
    () => parseNvidiaSmi('0, NVIDIA H100, GPU-x\n'),
    (e: unknown) => e instanceof CubeError && /line 1/.test(e.message),
  );
});

test('the nvidia plugin runs the documented query and reports a failing nvidia-smi', async () => {
  const run = recorded({ 'nvidia-smi': ok(fixture('nvidia-smi.csv')) });
  const devices = await nvidiaPlugin({ run }).discover();
  assert.equal(devices.length, 4);
  assert.deepEqual(run.calls[0], ['nvidia-smi', ...nvidiaSmiArgs]);
  assert.equal(
    nvidiaSmiArgs[0],
    '--query-gpu=index,name,uuid,memory.total,temperature.gpu,utilization.gpu,ecc.errors.uncorrected.volatile.total',
  );
  const broken = recorded({
    'nvidia-smi': {
      exitCode: 9,
      stdout: '',
      stderr: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
    },
  });
  await assert.rejects(nvidiaPlugin({ run: broken }).discover(), /exit 9.*communicate/);
});

test('amd-smi list and metric JSON become devices named from static, failed on uncorrectable ECC', () => {
  const devices = parseAmdSmi({
    list: fixture('amd-smi-list.json'),
    metric: fixture('amd-smi-metric.json'),
    static: fixture('amd-smi-static.json'),
  });
  assert.deepEqual(
    devices.map((d) => [d.index, d.kind, d.model, d.memoryBytes, d.health]),
    [
      [0, 'amd', 'AMD Instinct MI300X', 196592 * MiB, 'ok'],
      [1, 'amd', 'AMD Instinct MI300X', 196592 * MiB, 'failed'],
    ],
  );
  assert.equal(devices[0]?.uuid, '1fff74a1-0000-1000-8000-b1f3d3d2e1c8');
  assert.equal(devices[0]?.temperatureC, 41);
  assert.equal(devices[1]?.utilizationPercent, 100);
  assert.match(devices[1]?.problem ?? '', /1 uncorrectable ECC/);
});

test('newer amd-smi output wrapped in gpu_data is read the same way', () => {
  const devices = parseAmdSmi({
    list: '[{"gpu": 0, "bdf": "0000:03:00.0"}]',
    metric: fixture('amd-smi-metric-gpu-data.json'),
  });
  assert.deepEqual(
    devices.map((d) => [d.index, d.model, d.memoryBytes, d.health]),
    [[0, 'AMD GPU', 65520 * MiB, 'ok']],
  );
});

test('rocm-smi --showmeminfo vram --json becomes devices; a junction over the limit is degraded', () => {
  const devices = parseRocmSmi(fixture('rocm-smi.json'));
  assert.deepEqual(
    devices.map((d) => [d.index, d.kind, d.model, d.memoryBytes, d.health]),
    [
      [0, 'amd', 'AMD Instinct MI210', 68702699520, 'ok'],
      [1, 'amd', 'AMD Instinct MI210', 68702699520, 'degraded'],
    ],
  );
  // Only the memory query (the minimal documented form) still gives devices.
  const minimal = parseRocmSmi(
    '{"card0": {"VRAM Total Memory (B)": "34342961152", "VRAM Total Used Memory (B)": "7028736"}}',
  );
  assert.deepEqual(
    minimal.map((d) => [d.index, d.memoryBytes, d.health]),
    [[0, 34342961152, 'ok']],
  );
});

test('the amd plugin falls back to rocm-smi when amd-smi is missing', async () => {
  const withAmdSmi = recorded({
    'amd-smi list': ok(fixture('amd-smi-list.json')),
    'amd-smi metric': ok(fixture('amd-smi-metric.json')),
    'amd-smi static': ok(fixture('amd-smi-static.json')),
  });
  assert.equal((await amdPlugin({ run: withAmdSmi }).discover()).length, 2);
  const rocmOnly = recorded({ 'rocm-smi': ok(fixture('rocm-smi.json')) });
  const devices = await amdPlugin({ run: rocmOnly }).discover();
  assert.equal(devices[0]?.model, 'AMD Instinct MI210');
  assert.deepEqual(
    rocmOnly.calls.map((c) => c[0]),
    ['amd-smi', 'rocm-smi'],
  );
  await assert.rejects(amdPlugin({ run: recorded({}) }).discover(), /rocm-smi failed/);
});

test('the cpu plugin gives N healthy virtual devices sharing the host memory', async () => {
  const devices = await cpuPlugin({
    count: 4,
    memoryBytes: 64 * 1024 * MiB,
    cpuinfoPath: join(fixtures, 'cpuinfo.txt'),
  }).discover();
  assert.deepEqual(
    devices.map((d) => [d.index, d.kind, d.model, d.memoryBytes, d.health]),
    [0, 1, 2, 3].map((i) => [i, 'cpu', 'Intel(R) Xeon(R) Platinum 8480+', 16 * 1024 * MiB, 'ok']),
  );
  assert.equal(parseCpuModel('Hardware\t: BCM2835\n'), 'BCM2835');
  assert.equal(parseCpuModel(''), null);
  assert.throws(() => cpuPlugin({ count: 0 }), /positive integer/);
});

test('--devices selects cpu:N, nvidia, amd, or detects them with auto', async () => {
  assert.equal((await (await selectDevicePlugin('cpu:3')).discover()).length, 3);
  assert.equal((await selectDevicePlugin('nvidia')).kind, 'nvidia');
  assert.equal((await selectDevicePlugin('amd')).kind, 'amd');
  const nvidiaNode = recorded({
    'nvidia-smi -L': ok('GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1)\n'),
  });
  assert.equal((await selectDevicePlugin('auto', { run: nvidiaNode })).kind, 'nvidia');
  const amdNode = recorded({ 'amd-smi list': ok(fixture('amd-smi-list.json')) });
  assert.equal((await selectDevicePlugin('auto', { run: amdNode })).kind, 'amd');
  assert.equal((await selectDevicePlugin('auto', { run: recorded({}) })).kind, 'cpu');
  await assert.rejects(selectDevicePlugin('tpu'), /cpu:N, nvidia, amd or auto/);
});

// One contract for every DevicePlugin: indices 0..n-1, its own kind, sane values.
const contract: [string, () => DevicePlugin][] = [
  ['cpu', () => cpuPlugin({ count: 2 })],
  [
    'nvidia',
    () => nvidiaPlugin({ run: recorded({ 'nvidia-smi': ok(fixture('nvidia-smi.csv')) }) }),
  ],
  [
    'amd',
    () =>
      amdPlugin({
        run: recorded({
          'amd-smi list': ok(fixture('amd-smi-list.json')),
          'amd-smi metric': ok(fixture('amd-smi-metric.json')),
        }),
      }),
  ],
];
for (const [name, make] of contract)
  test(`the ${name} plugin meets the device plugin contract`, async () => {
    const plugin = make();
    const devices = await plugin.discover({ signal: AbortSignal.timeout(10_000) });
    assert.ok(devices.length > 0);
    devices.forEach((d, i) => {
      assert.equal(d.index, i);
      assert.equal(d.kind, plugin.kind);
      assert.ok(d.model.length > 0);
      assert.ok(Number.isInteger(d.memoryBytes) && d.memoryBytes > 0);
      assert.ok(['ok', 'degraded', 'failed'].includes(d.health));
      if (d.health !== 'ok')
        assert.ok((d.problem ?? '').length > 0, 'a problem explains the health');
    });
  });
