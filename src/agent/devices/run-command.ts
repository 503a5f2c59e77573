import { spawn } from 'node:child_process';
import type { CommandResult, RunCommand } from './device-plugin.ts';

/** Runs `argv` without a shell and collects its output; a missing program gives `exitCode: null`. */
export const runCommand: RunCommand = (argv, options) =>
  new Promise<CommandResult>((resolve) => {
    const [program, ...args] = argv;
    if (program === undefined) {
      resolve({ exitCode: null, stdout: '', stderr: 'empty command' });
      return;
    }
    const child = spawn(program, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 30_000,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', (error) =>
      resolve({ exitCode: null, stdout, stderr: stderr + error.message }),
    );
    child.once('close', (code) => resolve({ exitCode: code, stdout, stderr }));
  });
