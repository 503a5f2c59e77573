// POST /jobs documents its body in the OpenAPI document with the job spec's own schema (so that
// clients and the schemathesis fuzzer generate real job specs), while the route keeps its own
// validation: its errors still name the field, the near key and the YAML line.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane } from '../../src/control/control-plane.ts';

let dataDir: string;
let cp: ControlPlane;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'cube-openapi-jobs-'));
  cp = await ControlPlane.start({ dataDir, port: 0 });
});

after(async () => {
  await cp.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function submit(
  body: string,
  contentType = 'application/json',
): Promise<{
  status: number;
  json: { error?: { code: string; message: string; where: unknown } };
}> {
  const r = await fetch(`${cp.url}/api/v1/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cp.tokens.apiToken}`, 'content-type': contentType },
    body,
  });
  return { status: r.status, json: (await r.json()) as never };
}

test("the OpenAPI document gives POST /jobs the job spec's schema, or a YAML text", async () => {
  const doc = (await (await fetch(`${cp.url}/api/v1/openapi.json`)).json()) as {
    paths: Record<string, { post?: { requestBody?: unknown } }>;
  };
  const body = doc.paths['/api/v1/jobs']?.post?.requestBody as {
    required: boolean;
    content: { 'application/json': { schema: { anyOf: Record<string, unknown>[] } } };
  };
  assert.ok(body !== undefined, 'POST /jobs has a request body');
  const [spec, yaml] = body.content['application/json'].schema.anyOf;
  assert.ok(spec !== undefined && yaml !== undefined);
  assert.deepEqual([...(spec['required'] as string[])].sort(), [
    'command',
    'deviceType',
    'name',
    'ranks',
  ]);
  assert.equal(spec['additionalProperties'], false);
  const properties = spec['properties'] as Record<string, Record<string, unknown>>;
  assert.deepEqual(properties['deviceType']?.['enum'], ['cpu', 'nvidia', 'amd']);
  assert.ok(properties['faults'] !== undefined && properties['checkpoint'] !== undefined);
  assert.deepEqual(yaml['required'], ['yaml']);
});

test('the route still answers with its own validation errors, not the generic ones', async () => {
  const unknownKey = await submit(
    JSON.stringify({
      name: 'a',
      command: ['x'],
      ranks: { nodes: 1, devicesPerNode: 1 },
      deviceType: 'cpu',
      rankz: 1,
    }),
  );
  assert.equal(unknownKey.status, 400);
  assert.equal(unknownKey.json.error?.code, 'INVALID_FILE');
  assert.match(unknownKey.json.error?.message ?? '', /rankz: unknown key "rankz"/);
  const badYaml = await submit('name: [', 'application/yaml');
  assert.equal(badYaml.status, 400);
  assert.equal(badYaml.json.error?.code, 'FILE_UNREADABLE');
  assert.match(badYaml.json.error?.message ?? '', /not valid YAML \(line 1/);
  const notAnObject = await submit(JSON.stringify('a string'));
  assert.equal(notAnObject.status, 400);
  assert.equal(notAnObject.json.error?.code, 'INVALID_FILE');
  const ok = await submit(
    JSON.stringify({
      name: 'a',
      command: ['x'],
      ranks: { nodes: 1, devicesPerNode: 1 },
      deviceType: 'cpu',
    }),
  );
  assert.equal(ok.status, 201);
});
