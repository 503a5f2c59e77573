import { Command, CommanderError } from 'commander';
import { exitCodeFor, exitCodes, formatError } from './exit-code.ts';
import { processOutput, type CliOutput } from './output.ts';
import { registerHardwareCommands } from './commands/hardware.ts';
import { registerClusterCommands } from './commands/cluster.ts';
import { registerZooCommands } from './commands/zoo.ts';
import { registerCkptCommands } from './commands/ckpt.ts';
import { registerCkptDaemonCommand } from './commands/ckpt-daemon.ts';
import { registerControlCommands } from './commands/control.ts';
import { registerAgentCommand } from './commands/agent.ts';
import { registerDemoCommand } from './commands/demo.ts';
import { registerChaosCommand } from './commands/chaos.ts';
import { registerUpCommands } from './commands/up.ts';
import { registerPlanCommand } from './commands/plan.ts';
import { registerSimulateCommand } from './commands/simulate.ts';

/** Builds the `cube` program; each command module adds its subcommands. */
export function buildProgram(output: CliOutput): Command {
  const program = new Command('cube')
    .description('Cube runs large-model training on GPU clusters and keeps it running.')
    .version('0.1.0')
    .showSuggestionAfterError(true)
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => output.out(s),
      writeErr: (s) => output.err(s),
      outputError: (s, write) => write(`cube: error [BAD_FLAG]: ${s.replace(/^error: /, '')}`),
    });
  registerHardwareCommands(program, output);
  registerClusterCommands(program, output);
  registerZooCommands(program, output);
  registerCkptCommands(program, output);
  const ckpt = program.commands.find((c) => c.name() === 'ckpt');
  if (ckpt !== undefined) registerCkptDaemonCommand(ckpt, output);
  registerControlCommands(program, output);
  registerAgentCommand(program, output);
  registerDemoCommand(program, output);
  registerChaosCommand(program, output);
  registerUpCommands(program, output);
  registerPlanCommand(program, output);
  registerSimulateCommand(program, output);

  return program;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(
  argv: readonly string[],
  output: CliOutput = processOutput,
): Promise<number> {
  const program = buildProgram(output);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCodes.success;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return exitCodes.success;
      // commander has already printed its message; a usage error is bad input.
      return exitCodes.badInput;
    }
    output.err(formatError(error));
    return exitCodeFor(error);
  }
}
