import { spawn } from 'node:child_process';
import type { HealthProbe } from './health-probe.ts';

/**
 * Runs an operator's check with `/bin/sh -c`: exit 0 passes, anything else (or running past
 * `timeoutMs`) fails; the message is the last line the command printed.
 */
export function commandProbe(
  command: string,
  options: { readonly name?: string; readonly timeoutMs?: number } = {},
): HealthProbe {
  const name = options.name ?? 'command';
  return {
    name,
    run: ({ signal }) =>
      new Promise((resolve) => {
        const child = spawn('/bin/sh', ['-c', command], {
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: options.timeoutMs ?? 10_000,
          ...(signal === undefined ? {} : { signal }),
        });
        let output = '';
        const keep = (c: string): void => {
          output = (output + c).slice(-4096);
        };
        child.stdout.setEncoding('utf8').on('data', keep);
        child.stderr.setEncoding('utf8').on('data', keep);
        const last = (): string => output.trim().split('\n').pop()?.slice(0, 500) ?? '';
        child.once('error', (error) =>
          resolve({ name, ok: false, message: `${command}: ${error.message}` }),
        );
        child.once('close', (code, signalName) => {
          if (code === 0) resolve({ name, ok: true, message: last() });
          else
            resolve({
              name,
              ok: false,
              message: `${command} ${code === null ? `ended by ${signalName ?? 'a signal'}` : `exited ${code}`}${last() === '' ? '' : `: ${last()}`}`,
            });
        });
      }),
  };
}
