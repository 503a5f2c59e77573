import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LaunchSpec } from '../backends/index.ts';

/** The Python side: imports torch, then waits for the launch (python/cube/warm_start.py). */
export const warmStartScript = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'python',
  'cube',
  'warm_start.py',
);

/**
 * `python -c` code that runs warm_start.py without putting `-c`'s '' (the working directory)
 * first on `sys.path` while torch is imported: a cold `python script.py` has the script's
 * directory there instead, which warm_start.py puts back before running the script.
 */
const loader =
  'import runpy, sys; sys.path.pop(0); sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name="cube_warm_start")';

/**
 * Variables a launch sets per attempt that neither the interpreter nor `import torch` reads
 * (torch reads MASTER_* only in init_process_group): a warm interpreter started with other
 * values still runs the rank exactly as a cold start would, since it gets the real ones.
 */
const perAttemptEnv = new Set(['MASTER_PORT', 'MASTER_ADDR', 'CUBE_ATTEMPT']);

/**
 * True when a rank's command can start warm: `<python> script.py ...`, the interpreter an
 * absolute path named python, python3 or python3.N, the script a `.py` file (no interpreter
 * options such as `-m`, `-X` or `-u` before it, which would change how it starts).
 */
export function warmable(
  command: readonly string[],
  env: Readonly<Record<string, string>>,
): boolean {
  const [program, script] = command;
  if (env.CUBE_WARM_START === '0') return false;
  return (
    program !== undefined &&
    script !== undefined &&
    program.startsWith('/') &&
    /^python(3(\.\d+)?)?$/.test(basename(program)) &&
    !script.startsWith('-') &&
    script.endsWith('.py')
  );
}

/**
 * True when a warm interpreter started for `predicted` can run `actual`: the same rank, log,
 * CPUs, command, working directory and environment, but for the per-attempt variables above.
 */
export function sameLaunch(predicted: LaunchSpec, actual: LaunchSpec): boolean {
  const keys = new Set([...Object.keys(predicted.env), ...Object.keys(actual.env)]);
  for (const key of keys)
    if (!perAttemptEnv.has(key) && predicted.env[key] !== actual.env[key]) return false;
  return (
    predicted.name === actual.name &&
    predicted.workingDir === actual.workingDir &&
    JSON.stringify(predicted.command) === JSON.stringify(actual.command) &&
    JSON.stringify(predicted.log) === JSON.stringify(actual.log) &&
    JSON.stringify(predicted.cpus ?? null) === JSON.stringify(actual.cpus ?? null)
  );
}

/** The spec that starts a warm interpreter for `rank`: its interpreter, loader and a token. */
export function warmLaunchSpec(rank: LaunchSpec): { spec: LaunchSpec; token: string } {
  const token = randomBytes(16).toString('hex');
  const python = rank.command[0] as string;
  return {
    token,
    spec: {
      ...rank,
      name: `${rank.name} (warm)`,
      command: [python, '-c', loader, warmStartScript, token],
    },
  };
}

/** What a warm interpreter is told: run this launch, or exit. */
export type WarmAnswer =
  | {
      readonly argv: readonly string[];
      readonly env: Readonly<Record<string, string>>;
      readonly cwd: string;
    }
  | { readonly exit: true };
