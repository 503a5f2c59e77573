import assert from 'node:assert/strict';
import { Command } from 'commander';
import { describe, test } from 'node:test';
import { buildProgram, commandModules } from '../../src/cli/main.ts';
import type { CliOutput } from '../../src/cli/output.ts';

const silent: CliOutput = { out: () => undefined, err: () => undefined };

describe('the command table of src/cli/main.ts', () => {
  test('each module registers exactly the top-level commands its row names', async () => {
    for (const module of commandModules) {
      const program = new Command('cube');
      (await module.load())(program, silent);
      assert.deepEqual(
        program.commands.map((c) => c.name()).sort(),
        [...module.commands].sort(),
        `the row for ${module.commands.join(', ')}`,
      );
    }
  });

  test('no command is named by two rows', () => {
    const names = commandModules.flatMap((m) => m.commands);
    assert.equal(new Set(names).size, names.length);
  });

  test('a known command builds a program with only its own module; help builds them all', async () => {
    const plan = await buildProgram(silent, ['plan', '--json']);
    assert.deepEqual(
      plan.commands.map((c) => c.name()),
      ['plan'],
    );
    const all = await buildProgram(silent, ['--help']);
    assert.equal(all.commands.length, commandModules.flatMap((m) => m.commands).length);
    const version = await buildProgram(silent, ['--version']);
    assert.equal(version.commands.length, 0);
  });
});
