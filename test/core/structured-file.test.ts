import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { z } from 'zod';
import { CubeError, loadStructuredFile } from '../../src/core/index.ts';

const schema = z.strictObject({
  name: z.string(),
  servers: z.array(
    z.strictObject({ kind: z.enum(['a', 'b']), count: z.number().int().positive() }),
  ),
});

function withFile(name: string, text: string, fn: (path: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'cube-core-'));
  try {
    const path = join(dir, name);
    writeFileSync(path, text);
    fn(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function thrown(fn: () => unknown): CubeError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof CubeError, `expected a CubeError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected an error');
}

test('a valid YAML file is parsed and validated', () => {
  withFile('c.yaml', 'name: lab\nservers:\n  - kind: a\n    count: 2\n', (path) => {
    assert.deepEqual(loadStructuredFile(path, schema), {
      name: 'lab',
      servers: [{ kind: 'a', count: 2 }],
    });
  });
});

test('a schema violation names the file, the path inside it and the allowed values', () => {
  withFile('c.yaml', 'name: lab\nservers:\n  - kind: c\n    count: 2\n', (path) => {
    const error = thrown(() => loadStructuredFile(path, schema));
    assert.equal(error.code, 'INVALID_FILE');
    assert.equal(error.where.file, path);
    assert.equal(error.where.path, 'servers[0].kind');
    assert.deepEqual(error.where.allowed, ['a', 'b']);
    assert.match(error.message, /servers\[0\]\.kind/);
    assert.equal(error.isBadInput, true);
  });
});

test('an unknown key is an error naming that key', () => {
  withFile('c.json', JSON.stringify({ name: 'x', servers: [], nmae: 'typo' }), (path) => {
    const error = thrown(() => loadStructuredFile(path, schema));
    assert.equal(error.code, 'INVALID_FILE');
    assert.match(error.message, /nmae/);
  });
});

test('a YAML syntax error reports the line', () => {
  withFile('c.yaml', 'name: lab\nservers: [\n  - kind: a\n', (path) => {
    const error = thrown(() => loadStructuredFile(path, schema));
    assert.equal(error.code, 'FILE_UNREADABLE');
    assert.match(error.message, /line \d+/);
  });
});

test('invalid JSON is reported as unreadable with the parser message', () => {
  withFile('c.json', '{"name": ', (path) => {
    const error = thrown(() => loadStructuredFile(path, schema));
    assert.equal(error.code, 'FILE_UNREADABLE');
    assert.match(error.message, /not valid JSON/);
  });
});

test('a missing file is FILE_NOT_FOUND with the path', () => {
  const error = thrown(() => loadStructuredFile('/nonexistent/cube/x.yaml', schema));
  assert.equal(error.code, 'FILE_NOT_FOUND');
  assert.equal(error.where.file, '/nonexistent/cube/x.yaml');
});
