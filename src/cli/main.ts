import { Command, CommanderError } from 'commander';
import { exitCodeFor, exitCodes, formatError } from './exit-code.ts';
import { processOutput, type CliOutput } from './output.ts';

/** Adds one module's commands to the program. */
type Register = (program: Command, output: CliOutput) => void;

/** A command module: the top-level commands it registers, and how to load it. */
interface CommandModule {
  readonly commands: readonly string[];
  readonly load: () => Promise<Register>;
}

/**
 * Every command module, in the order `cube --help` lists them. A command loads only its own
 * module (and what that imports), so `cube hardware` never loads the control plane's HTTP
 * server or SQLite. A new command module adds one line here; `commands` must name exactly the
 * top-level commands it registers (test/cli/compiled-lazy-commands.test.ts checks it).
 */
export const commandModules: readonly CommandModule[] = [
  {
    commands: ['hardware'],
    load: async () => (await import('./commands/hardware.ts')).registerHardwareCommands,
  },
  {
    commands: ['cluster'],
    load: async () => (await import('./commands/cluster.ts')).registerClusterCommands,
  },
  { commands: ['zoo'], load: async () => (await import('./commands/zoo.ts')).registerZooCommands },
  {
    commands: ['ckpt'],
    load: async () => {
      const [{ registerCkptCommands }, { registerCkptDaemonCommand }] = await Promise.all([
        import('./commands/ckpt.ts'),
        import('./commands/ckpt-daemon.ts'),
      ]);
      return (program, output) => {
        registerCkptCommands(program, output);
        const ckpt = program.commands.find((c) => c.name() === 'ckpt');
        if (ckpt !== undefined) registerCkptDaemonCommand(ckpt, output);
      };
    },
  },
  {
    commands: [
      'server',
      'login',
      'submit',
      'jobs',
      'logs',
      'events',
      'nodes',
      'cordon',
      'uncordon',
      'cancel',
      'token',
    ],
    load: async () => (await import('./commands/control.ts')).registerControlCommands,
  },
  {
    commands: ['agent'],
    load: async () => (await import('./commands/agent.ts')).registerAgentCommand,
  },
  {
    commands: ['demo'],
    load: async () => (await import('./commands/demo.ts')).registerDemoCommand,
  },
  {
    commands: ['chaos'],
    load: async () => (await import('./commands/chaos.ts')).registerChaosCommand,
  },
  {
    commands: ['up', 'down'],
    load: async () => (await import('./commands/up.ts')).registerUpCommands,
  },
  {
    commands: ['plan'],
    load: async () => (await import('./commands/plan.ts')).registerPlanCommand,
  },
  {
    commands: ['simulate'],
    load: async () => (await import('./commands/simulate.ts')).registerSimulateCommand,
  },
  {
    commands: ['completion'],
    // The script is generated from every command, whichever were loaded for this call.
    load: async () => {
      const { registerCompletionCommand } = await import('./commands/completion.ts');
      return (program, output) =>
        registerCompletionCommand(program, output, () => buildProgram(output));
    },
  },
];

/**
 * The modules `argv` needs: the one registering its command; none for `--version`; every one
 * for help, no command or a command no module names (so help lists them all and a misspelt
 * command gets its suggestion).
 */
function modulesFor(argv: readonly string[]): readonly CommandModule[] {
  const first = argv[0];
  if (first === '--version' || first === '-V') return [];
  const named = commandModules.find((m) => first !== undefined && m.commands.includes(first));
  return named === undefined ? commandModules : [named];
}

/**
 * Builds the `cube` program with the commands `argv` needs (every command when `argv` is
 * omitted); each command module adds its subcommands.
 */
export async function buildProgram(output: CliOutput, argv?: readonly string[]): Promise<Command> {
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
  const modules = argv === undefined ? commandModules : modulesFor(argv);
  // Loaded together, registered in the table's order.
  const registers = await Promise.all(modules.map((m) => m.load()));
  for (const register of registers) register(program, output);
  return program;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(
  argv: readonly string[],
  output: CliOutput = processOutput,
): Promise<number> {
  try {
    const program = await buildProgram(output, argv);
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
