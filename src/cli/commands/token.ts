import type { Command } from 'commander';
import { CubeError } from '../../core/index.ts';
import { ApiClient, type CreatedToken, type TokenInfo, type TokenList } from '../api-client.ts';
import { resolveCredentials } from '../credentials.ts';
import {
  outputFormatOf,
  printUnlessEmpty,
  renderListing,
  withOutputFlags,
  type OutputFlags,
} from '../output-format.ts';
import { printJson, type CliOutput } from '../output.ts';

const roles = ['admin', 'user', 'viewer', 'metrics'] as const;

interface ServerFlags {
  server?: string;
  token?: string;
  json?: boolean;
}

function withServerFlags(command: Command): Command {
  return command
    .option('--server <url>', 'control plane URL (default: from `cube login`)')
    .option('--token <token>', 'admin API token (default: from `cube login`)');
}

function parseRole(value: string): (typeof roles)[number] {
  const role = roles.find((r) => r === value);
  if (role === undefined)
    throw new CubeError('BAD_FLAG', `--role must be one of ${roles.join(', ')}, got "${value}"`, {
      where: { field: '--role', allowed: roles },
    });
  return role;
}

function isoOrDash(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

/** `cube token create | ls | revoke`: the control plane's API tokens (admin only). */
export function registerTokenCommands(program: Command, output: CliOutput): void {
  const token = program
    .command('token')
    .description('API tokens and their roles: admin, user, viewer, metrics (needs an admin token)');

  withServerFlags(token.command('create'))
    .description('create an API token; it is printed once and never again')
    .requiredOption('--role <role>', `what it may do: ${roles.join(', ')}`, parseRole)
    .requiredOption('--name <name>', 'who or what it is for (shown by `cube token ls`)')
    .option('--json', 'print {id, name, role, createdAt, revokedAt, token}')
    .action(async (flags: ServerFlags & { role: string; name: string }) => {
      const api = new ApiClient(resolveCredentials(flags));
      const created = await api.request<CreatedToken>('POST', '/tokens', {
        body: { name: flags.name, role: flags.role },
      });
      if (flags.json === true) printJson(output, created);
      else
        output.out(
          [
            `created ${created.role} token ${created.id} (${created.name}):`,
            created.token,
            'it is shown only now: keep it somewhere safe (`cube login --token` saves it 0600)',
          ].join('\n'),
        );
    });

  withOutputFlags(
    withServerFlags(token.command('ls')),
    'print {tokens: [{id, name, role, createdAt, revokedAt}]}',
  )
    .description('list API tokens (never the tokens themselves)')
    .action(async (flags: ServerFlags & OutputFlags) => {
      const format = outputFormatOf(flags);
      const api = new ApiClient(resolveCredentials(flags));
      const { tokens } = await api.request<TokenList>('GET', '/tokens');
      printUnlessEmpty(
        output,
        renderListing(
          format,
          tokens,
          {
            headers: ['ID', 'NAME', 'ROLE', 'CREATED', 'REVOKED'],
            row: (t) => [t.id, t.name, t.role, isoOrDash(t.createdAt), isoOrDash(t.revokedAt)],
            wideHeaders: [],
            wideRow: () => [],
            name: (t) => t.id,
          },
          { tokens },
        ),
      );
    });

  withServerFlags(token.command('revoke'))
    .description('revoke an API token at once, by id or by name')
    .argument('<id-or-name>', 'the token id (tok-...) or its name')
    .option('--json', 'print the revoked token {id, name, role, createdAt, revokedAt}')
    .action(async (idOrName: string, flags: ServerFlags) => {
      const api = new ApiClient(resolveCredentials(flags));
      const revoked = await api.request<TokenInfo>(
        'DELETE',
        `/tokens/${encodeURIComponent(idOrName)}`,
      );
      if (flags.json === true) printJson(output, revoked);
      else output.out(`revoked ${revoked.role} token ${revoked.id} (${revoked.name})`);
    });
}
