import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  getAccelerator,
  getServer,
  listAccelerators,
  listServers,
  standardServerOf,
} from '../../src/hardware/index.ts';
import type { Accelerator, Provenance, ServerSpec } from '../../src/hardware/index.ts';
import { CubeError } from '../../src/core/index.ts';

const contractAcceleratorIds = [
  'a100-40g',
  'a100-80g',
  'h100-sxm',
  'h800',
  'h200',
  'b200',
  'mi250x',
  'mi300x',
  'ascend-910b',
  'br104',
  'br106',
  'br100',
  'br166',
  'br110',
  'cpu',
];

const contractServerIds = [
  'hgx-a100-40g',
  'hgx-a100-80g',
  'hgx-h100',
  'hgx-h800',
  'hgx-h200',
  'hgx-b200',
  'mi250x-4oam',
  'mi300x-8oam',
  'atlas-800t-a2',
  'br104-pcie-8',
  'br100-oam-8',
  'br106-oam-8',
  'br166-oam-8',
  'br110-oam-8',
  'cpu-host',
];

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** Every numeric leaf of `value` as a dotted path, skipping nulls, strings, booleans and provenance. */
function numericPaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'number') return [prefix];
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, child]) =>
    prefix === '' && key === 'provenance'
      ? []
      : numericPaths(child, prefix === '' ? key : `${prefix}.${key}`),
  );
}

/** The value at a dotted path, or `undefined` when some segment does not exist. */
function valueAt(value: unknown, path: string): unknown {
  let current: unknown = value;
  for (const key of path.split('.')) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, key))
      return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function entries(): readonly (Accelerator | ServerSpec)[] {
  return [...listAccelerators(), ...listServers()];
}

function relativeGap(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b));
}

function runCube(args: readonly string[]): {
  status: number | null;
  stdout: string;
  stderr: string;
} {
  const result = spawnSync(process.execPath, ['bin/cube.js', ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('hardware catalog ids', () => {
  test('the catalog lists exactly the contract accelerator ids, each once', () => {
    const ids = listAccelerators().map((a) => a.id);
    assert.equal(new Set(ids).size, ids.length, `duplicate accelerator ids in ${ids.join(', ')}`);
    assert.deepEqual([...ids].sort(), [...contractAcceleratorIds].sort());
  });

  test('the catalog lists every contract server id, each once', () => {
    const ids = listServers().map((s) => s.id);
    assert.equal(new Set(ids).size, ids.length, `duplicate server ids in ${ids.join(', ')}`);
    for (const id of contractServerIds) assert.ok(ids.includes(id), `server ${id} is missing`);
  });

  test("each accelerator's standard server exists and holds that accelerator", () => {
    for (const a of listAccelerators()) {
      const server = standardServerOf(a);
      assert.equal(
        server.accelerator,
        a.id,
        `${server.id} holds ${server.accelerator}, not ${a.id}`,
      );
      assert.ok(server.acceleratorsPerServer >= 1, `${server.id} holds no accelerators`);
    }
  });

  test('every server holds an accelerator the catalog knows', () => {
    for (const s of listServers()) assert.doesNotThrow(() => getAccelerator(s.accelerator), s.id);
  });

  test('an unknown id is an UNKNOWN_ID error whose hint names the nearest ids', () => {
    const hintOf = (lookup: () => unknown): string => {
      try {
        lookup();
      } catch (error) {
        assert.ok(error instanceof CubeError);
        assert.equal(error.code, 'UNKNOWN_ID');
        return error.hint ?? '';
      }
      assert.fail('the lookup did not throw');
    };
    assert.match(
      hintOf(() => getAccelerator('h10')),
      /h100-sxm/,
    );
    assert.match(
      hintOf(() => getServer('hgx-h10')),
      /hgx-h100/,
    );
  });
});

describe('hardware catalog provenance', () => {
  test('every number of every accelerator and server has a provenance entry', () => {
    for (const entry of entries()) {
      const missing = numericPaths(entry).filter((path) => !Object.hasOwn(entry.provenance, path));
      assert.deepEqual(missing, [], `${entry.id} has numbers without provenance`);
    }
  });

  test('every provenance entry refers to an existing numeric field', () => {
    for (const entry of entries()) {
      for (const path of Object.keys(entry.provenance)) {
        const value = valueAt(entry, path);
        assert.ok(
          typeof value === 'number' || value === null,
          `${entry.id}: provenance "${path}" refers to ${value === undefined ? 'no field' : typeof value}`,
        );
      }
    }
  });

  test('published entries name a source and estimated entries give their reasoning', () => {
    for (const entry of entries()) {
      for (const [path, prov] of Object.entries<Provenance>(entry.provenance)) {
        const text = prov.kind === 'published' ? prov.source : prov.reasoning;
        assert.ok(text.trim().length > 0, `${entry.id}: ${path} has an empty ${prov.kind} entry`);
      }
    }
  });

  test('the vendor-brief facts for the newer Biren parts are cited, the rest estimated', () => {
    for (const id of ['br106', 'br166', 'br110']) {
      const a = getAccelerator(id);
      assert.equal(a.provenance['links.gbsPerDirectionPerLink']?.kind, 'published', id);
      assert.equal(a.provenance['peakTflops.bf16']?.kind, 'estimated', id);
      assert.equal(a.provenance.memoryGiB?.kind, 'estimated', id);
    }
  });
});

describe('hardware catalog sanity', () => {
  test('every accelerator has positive memory, bandwidth, power and fp32', () => {
    for (const a of listAccelerators()) {
      for (const [name, v] of [
        ['memoryGiB', a.memoryGiB],
        ['memoryBandwidthGBs', a.memoryBandwidthGBs],
        ['onChipSramMiB', a.onChipSramMiB],
        ['tdpWatts', a.tdpWatts],
        ['peakTflops.fp32', a.peakTflops.fp32],
      ] as const)
        assert.ok(v > 0, `${a.id}.${name} = ${v}`);
    }
  });

  test('bf16 is at least fp32 wherever both exist, and int8 at least bf16', () => {
    for (const a of listAccelerators()) {
      const p = a.peakTflops;
      if (p.bf16 !== null) assert.ok(p.bf16 >= p.fp32, `${a.id}: bf16 ${p.bf16} < fp32 ${p.fp32}`);
      if (p.bf16 !== null && p.int8 !== null)
        assert.ok(p.int8 >= p.bf16, `${a.id}: int8 ${p.int8} < bf16 ${p.bf16}`);
      if (p.tf32 !== null && p.bf16 !== null)
        assert.ok(p.tf32 <= p.bf16, `${a.id}: tf32 ${p.tf32} > bf16 ${p.bf16}`);
    }
  });

  test('dense fp8 is twice bf16 on Hopper, Blackwell and MI300X', () => {
    for (const id of ['h100-sxm', 'h800', 'h200', 'b200', 'mi300x']) {
      const p = getAccelerator(id).peakTflops;
      assert.ok(p.fp8 !== null && p.bf16 !== null, id);
      assert.ok(relativeGap(p.fp8, 2 * p.bf16) < 1e-3, `${id}: fp8 ${p.fp8} vs bf16 ${p.bf16}`);
    }
  });

  test('fp4 exists only on Blackwell, at twice its fp8', () => {
    for (const a of listAccelerators()) {
      if (a.id === 'b200') {
        const { fp4, fp8 } = a.peakTflops;
        assert.ok(fp4 !== null && fp8 !== null && relativeGap(fp4, 2 * fp8) < 1e-3);
      } else assert.equal(a.peakTflops.fp4, null, a.id);
    }
  });

  test('the A100 80 GB has more memory and bandwidth than the 40 GB at the same compute', () => {
    const small = getAccelerator('a100-40g');
    const large = getAccelerator('a100-80g');
    assert.ok(large.memoryBandwidthGBs > small.memoryBandwidthGBs);
    assert.ok(large.memoryGiB > small.memoryGiB);
    assert.deepEqual(large.peakTflops, small.peakTflops);
  });

  test('the H800 matches H100 compute with less NVLink bandwidth', () => {
    const h100 = getAccelerator('h100-sxm');
    const h800 = getAccelerator('h800');
    assert.deepEqual(h800.peakTflops, h100.peakTflops);
    const nvlink = (a: Accelerator) => a.links.count * a.links.gbsPerDirectionPerLink;
    assert.equal(nvlink(h800) * 2, 400);
    assert.ok(getServer('hgx-h800').intraServer.kind === 'switch');
  });

  test('BR166 is twice BR106 in compute, memory and bandwidth', () => {
    const one = getAccelerator('br106');
    const two = getAccelerator('br166');
    for (const format of ['fp32', 'tf32', 'bf16', 'fp16', 'int8'] as const) {
      const single = one.peakTflops[format];
      assert.ok(single !== null, format);
      assert.equal(two.peakTflops[format], 2 * single, format);
    }
    assert.equal(two.memoryGiB, 2 * one.memoryGiB);
    assert.ok(relativeGap(two.memoryBandwidthGBs, 2 * one.memoryBandwidthGBs) < 1e-3);
    assert.equal(two.dies, 2 * one.dies);
  });

  test('BR100 is two BR104 dies', () => {
    const one = getAccelerator('br104');
    const two = getAccelerator('br100');
    assert.equal(two.peakTflops.bf16, 2 * (one.peakTflops.bf16 ?? 0));
    assert.equal(two.memoryGiB, 2 * one.memoryGiB);
    assert.equal(two.dies, 2);
  });

  test('multi-die parts have a die-to-die bandwidth and single-die parts none', () => {
    for (const a of listAccelerators()) {
      if (a.dies > 1) assert.ok(a.dieToDieGBs !== null && a.dieToDieGBs > 0, a.id);
      else assert.equal(a.dieToDieGBs, null, a.id);
    }
  });

  test("a full-mesh server's lanes to its peers fit in the accelerator's link count", () => {
    for (const s of listServers()) {
      if (s.intraServer.kind !== 'full-mesh') continue;
      const a = getAccelerator(s.accelerator);
      const peers = s.acceleratorsPerServer - 1;
      assert.ok(
        s.intraServer.lanesPerPeer * peers <= a.links.count,
        `${s.id}: ${s.intraServer.lanesPerPeer} x ${peers} lanes > ${a.links.count} links`,
      );
      assert.equal(s.intraServer.laneGbsPerDirection, a.links.gbsPerDirectionPerLink, s.id);
    }
  });

  test("a switch server's per-GPU bandwidth is the accelerator's total link bandwidth", () => {
    for (const s of listServers()) {
      if (s.intraServer.kind !== 'switch') continue;
      const a = getAccelerator(s.accelerator);
      assert.equal(
        s.intraServer.gbsPerDirection,
        a.links.count * a.links.gbsPerDirectionPerLink,
        s.id,
      );
    }
  });

  test('accelerators with GPU links have positive link figures and PCIe-only parts have none', () => {
    for (const a of listAccelerators()) {
      if (a.links.kind === 'none') {
        assert.equal(a.links.count, 0, a.id);
        assert.equal(standardServerOf(a).intraServer.kind, 'pcie', a.id);
      } else {
        assert.ok(a.links.count > 0 && a.links.gbsPerDirectionPerLink > 0, a.id);
        assert.ok(a.links.latencyUs > 0, a.id);
      }
    }
  });

  test('every server has positive host memory, host link and NICs', () => {
    for (const s of listServers()) {
      assert.ok(s.hostMemoryGiB > 0, s.id);
      assert.ok(s.hostLinkGbsPerDirection > 0, s.id);
      assert.ok(s.nics.count > 0 && s.nics.gbps > 0 && s.nics.latencyUs > 0, s.id);
      assert.ok(s.intraServer.latencyUs > 0, s.id);
    }
  });

  test('the MI250X server counts GCDs: four packages of two', () => {
    const a = getAccelerator('mi250x');
    const s = getServer('mi250x-4oam');
    assert.equal(s.acceleratorsPerServer, 8);
    assert.equal(a.memoryGiB * s.acceleratorsPerServer, 4 * 128);
  });

  test('the CPU host holds two sockets with one NIC and no rails', () => {
    const s = getServer('cpu-host');
    assert.equal(s.acceleratorsPerServer, 2);
    assert.equal(s.intraServer.kind, 'pcie');
    assert.equal(s.nics.count, 1);
    assert.equal(s.nics.railOptimized, false);
  });
});

describe('cube hardware', () => {
  test('cube hardware --json prints every accelerator with the contract keys', () => {
    const { status, stdout, stderr } = runCube(['hardware', '--json']);
    assert.equal(status, 0, stderr);
    const parsed: unknown = JSON.parse(stdout);
    assert.ok(Array.isArray(parsed));
    const ids = parsed.map((e) => (e as { id?: unknown }).id);
    assert.deepEqual([...ids].sort(), [...contractAcceleratorIds].sort());
    for (const element of parsed as Record<string, unknown>[]) {
      const where = String(element.id);
      for (const key of ['id', 'vendor', 'name'])
        assert.equal(typeof element[key], 'string', `${where}.${key}`);
      for (const key of ['memoryGiB', 'memoryBandwidthGBs'])
        assert.equal(typeof element[key], 'number', `${where}.${key}`);
      const peak = element.peakTflops as Record<string, unknown>;
      assert.equal(typeof peak, 'object', `${where}.peakTflops`);
      assert.equal(typeof peak.fp32, 'number', `${where}.peakTflops.fp32`);
      for (const format of ['tf32', 'bf16', 'fp16', 'fp8', 'int8'])
        assert.ok(
          peak[format] === null || typeof peak[format] === 'number',
          `${where}.peakTflops.${format}`,
        );
    }
  });

  test('cube hardware show prints an accelerator with the source of every number', () => {
    const { status, stdout, stderr } = runCube(['hardware', 'show', 'br166']);
    assert.equal(status, 0, stderr);
    assert.match(stdout, /Biren BR166/);
    assert.match(stdout, /estimated: 2 x BR106/);
  });

  test('cube hardware show with an unknown id exits 2 and suggests ids on stderr', () => {
    const { status, stdout, stderr } = runCube(['hardware', 'show', 'nope']);
    assert.equal(status, 2);
    assert.equal(stdout, '');
    assert.match(stderr, /unknown accelerator "nope"/);
    assert.match(stderr, /hint: .*(did you mean|known accelerator ids).*h100-sxm/);
  });

  test('cube hardware show with a near miss suggests the nearest id', () => {
    const { status, stderr } = runCube(['hardware', 'show', 'mi300']);
    assert.equal(status, 2);
    assert.match(stderr, /did you mean "mi300x"/);
  });
});
