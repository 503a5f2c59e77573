// Optional TLS for the API: `cube server --tls-cert/--tls-key` serves HTTPS only, and the CLI
// trusts a private CA through NODE_EXTRA_CA_CERTS. The certificate is made at test time.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlPlane } from '../../src/control/control-plane.ts';

const cubeBin = fileURLToPath(new URL('../../bin/cube.js', import.meta.url));
// The certificate is made with the openssl command line; without it these tests are skipped.
const noOpenssl = spawnSync('openssl', ['version']).status !== 0 && 'needs the openssl command';

let dir: string;
let cert: string;
let key: string;
let cp: ControlPlane;

before(async () => {
  if (noOpenssl !== false) return;
  dir = mkdtempSync(join(tmpdir(), 'cube-tls-'));
  cert = join(dir, 'cert.pem');
  key = join(dir, 'key.pem');
  const made = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(made.status, 0, made.stderr);
  cp = await ControlPlane.start({
    dataDir: join(dir, 'server'),
    tls: { cert: readFileSync(cert), key: readFileSync(key) },
  });
});

after(async () => {
  if (noOpenssl !== false) return;
  await cp.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `bin/cube.js` in a child process (NODE_EXTRA_CA_CERTS is read at process start). */
function cube(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cubeBin, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

test(
  'the API is served over HTTPS, and the CLI trusts its CA through NODE_EXTRA_CA_CERTS',
  { skip: noOpenssl },
  async () => {
    assert.match(cp.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const args = ['nodes', '--json', '--server', cp.url, '--token', cp.tokens.apiToken];
    const trusted = await cube(args, { NODE_EXTRA_CA_CERTS: cert });
    assert.equal(trusted.status, 0, trusted.stderr);
    assert.deepEqual(JSON.parse(trusted.stdout), []);
    // Without the CA the certificate is not trusted: no request goes out.
    const untrusted = await cube(args, { NODE_EXTRA_CA_CERTS: '' });
    assert.equal(untrusted.status, 1);
    assert.match(untrusted.stderr, /cannot reach the control plane/);
  },
);

test('plain HTTP to the TLS port gets no answer from the API', { skip: noOpenssl }, async () => {
  const plain = cp.url.replace('https://', 'http://');
  const outcome = await fetch(`${plain}/api/v1/jobs`, {
    headers: { authorization: `Bearer ${cp.tokens.apiToken}` },
  }).then(
    (r) => `HTTP ${r.status}`,
    () => 'refused',
  );
  assert.notEqual(outcome, 'HTTP 200');
});
