import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { CubeError } from '../core/index.ts';

/** Who may read the agent's `/metrics`. */
export type MetricsAccess =
  { readonly kind: 'token'; readonly token: string } | { readonly kind: 'public' };

export interface MetricsListenOptions {
  readonly host: string;
  readonly port: number;
  readonly access: MetricsAccess;
}

/**
 * Reads the bearer token of `--metrics-token-file`: the file's text, trimmed. It must be private
 * to this user (0600 or stricter), as every secret of Cube is, and hold at least 16 characters.
 */
export function readMetricsToken(path: string): string {
  let text: string;
  let mode: number;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new CubeError('FILE_NOT_FOUND', `cannot read the metrics token file ${path}`, {
      where: { file: path, field: '--metrics-token-file' },
      cause: error,
    });
  }
  if ((mode & 0o077) !== 0)
    throw new CubeError(
      'INVALID_FILE',
      `the metrics token file ${path} is readable by others (mode ${(mode & 0o777).toString(8)})`,
      { where: { file: path, field: '--metrics-token-file' }, hint: `chmod 600 ${path}` },
    );
  const token = text.trim();
  if (token.length < 16 || /\s/.test(token))
    throw new CubeError(
      'INVALID_FILE',
      `the metrics token file ${path} must hold one token of at least 16 characters`,
      {
        where: { file: path, field: '--metrics-token-file' },
        hint: 'e.g. openssl rand -base64 32 > FILE',
      },
    );
  return token;
}

/** Whether `header` is `Bearer <token>`, compared in constant time (digests of equal length). */
function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer (\S+)$/i.exec(header ?? '');
  const given = createHash('sha256')
    .update(match?.[1] ?? '')
    .digest();
  const expected = createHash('sha256').update(token).digest();
  return timingSafeEqual(given, expected) && match !== null;
}

/**
 * The agent's metrics listener (`cube agent --metrics-listen`): `GET /metrics` in Prometheus'
 * text format, with `Authorization: Bearer <token>` unless public; 401 without it, 404 for any
 * other path, 405 for any other method. Off unless asked for: every port Cube opens
 * authenticates.
 */
export class MetricsServer {
  readonly #server: Server;
  readonly #address: { readonly host: string; readonly port: number };

  private constructor(server: Server, address: { host: string; port: number }) {
    this.#server = server;
    this.#address = address;
  }

  static async start(registry: Registry, options: MetricsListenOptions): Promise<MetricsServer> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (
        options.access.kind === 'token' &&
        !bearerMatches(req.headers.authorization, options.access.token)
      ) {
        res
          .writeHead(401, { 'www-authenticate': 'Bearer realm="cube-agent-metrics"' })
          .end('a bearer token is required (--metrics-token-file)\n');
        return;
      }
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        (error: unknown) => {
          res
            .writeHead(500, { 'content-type': 'text/plain' })
            .end(`metrics failed: ${error instanceof Error ? error.message : String(error)}\n`);
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          new CubeError(
            'INFEASIBLE',
            `cannot listen for metrics on ${options.host}:${options.port}: ${error.code ?? error.message}`,
            { where: { field: '--metrics-listen' }, cause: error },
          ),
        ),
      );
      server.listen(options.port, options.host, () => resolve());
    });
    const address = server.address() as AddressInfo;
    return new MetricsServer(server, { host: options.host, port: address.port });
  }

  /** Where it listens (the port it got, when asked for port 0). */
  get address(): { readonly host: string; readonly port: number } {
    return this.#address;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
