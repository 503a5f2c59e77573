import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { CubeError } from '../../src/core/index.ts';
import { formatCpuList, parseCpuList } from '../../src/core/index.ts';

test('a CPU list reads as taskset -c and cpusets write it, and is written back in short form', () => {
  const n = availableParallelism();
  assert.deepEqual(parseCpuList('0', '--cpus'), [0]);
  assert.deepEqual(parseCpuList(`${n - 1},0, 0`, '--cpus'), n === 1 ? [0] : [0, n - 1]);
  assert.deepEqual(parseCpuList(`0-${n - 1}`, '--cpus'), [...Array(n).keys()]);
  assert.equal(formatCpuList([8, 0, 1, 2, 3, 10, 9, 12]), '0-3,8-10,12');
  assert.equal(formatCpuList([5]), '5');
  assert.equal(formatCpuList([1, 0]), '0-1');
});

test('a bad CPU list is refused with a message naming the flag and the part that is wrong', () => {
  const refused = (value: string, message: RegExp): void =>
    assert.throws(
      () => parseCpuList(value, '--ckpt-cpus'),
      (e: unknown) =>
        e instanceof CubeError &&
        e.code === 'BAD_FLAG' &&
        e.where?.field === '--ckpt-cpus' &&
        message.test(e.message),
    );
  refused('', /"" in "" is not a CPU number or range/);
  refused('0,,1', /"" in "0,,1" is not a CPU number or range/);
  refused('a', /"a" in "a" is not a CPU number or range/);
  refused('-1', /"-1" in "-1" is not a CPU number or range/);
  refused('3-1', /the range "3-1" in "3-1" is backwards/);
  refused(
    '0-9999',
    new RegExp(
      `CPU ${availableParallelism()} does not exist \\(this machine has CPUs 0-${availableParallelism() - 1}\\)`,
    ),
  );
});
