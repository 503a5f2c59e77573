import { mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { CubeError } from '../core/index.ts';
import { writeSecretFileSync } from '../control/private-files.ts';

const credentialsSchema = z.strictObject({ server: z.url(), token: z.string().min(1) });
export type Credentials = z.infer<typeof credentialsSchema>;

/** Where `cube login` keeps the server URL and API token (0600). `CUBE_CONFIG_DIR` overrides. */
export function credentialsPath(): string {
  return join(
    process.env.CUBE_CONFIG_DIR ?? join(homedir(), '.config', 'cube'),
    'credentials.json',
  );
}

export function saveCredentials(credentials: Credentials): string {
  const path = credentialsPath();
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  // Atomic and 0600 from the start: the token is a secret, and a torn file would lose it.
  writeSecretFileSync(path, `${JSON.stringify(credentials, null, 2)}\n`);
  return path;
}

/**
 * The server and token to use: flags first, then `CUBE_SERVER`/`CUBE_TOKEN`, then the saved
 * credentials. A missing piece is bad input that says how to provide it.
 */
export function resolveCredentials(flags: { server?: string; token?: string }): Credentials {
  let saved: Partial<Credentials>;
  try {
    saved = credentialsSchema.partial().parse(JSON.parse(readFileSync(credentialsPath(), 'utf8')));
  } catch {
    saved = {};
  }
  const server = flags.server ?? process.env.CUBE_SERVER ?? saved.server;
  const token = flags.token ?? process.env.CUBE_TOKEN ?? saved.token;
  if (server === undefined || token === undefined)
    throw new CubeError(
      'BAD_FLAG',
      'no control plane to talk to: the server URL or the API token is missing',
      {
        where: { field: server === undefined ? '--server' : '--token' },
        hint: 'run `cube login --server URL --token TOKEN` (cube up prints both), or pass --server and --token',
      },
    );
  return { server: server.replace(/\/$/, ''), token };
}
