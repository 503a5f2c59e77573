// Runs the Python client's unittests (python/tests) with the project's interpreter (CUBE_PYTHON,
// else .venv/bin/python) and reports each case as a node subtest with its real outcome: passed,
// failed (with unittest's traceback), or skipped (with its reason), so that `npm test`'s summary
// counts them. One interpreter runs them all (discovery and torch's import are paid once); a
// result class writes one JSON line per case to a file the node side reads afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { python, repoRoot } from './launcher.ts';

// The stdlib runner, not pytest: CUBE_PYTHON may name any interpreter with torch, pytest or not,
// and the tests are unittest cases. Subtest failures are cases of their own; an error outside a
// test (an import error in a module, a failing setUpClass) arrives as unittest's placeholder case
// and so fails too.
const runner = String.raw`
import json, sys, time, unittest

out = open(sys.argv[1], "w", buffering=1)

class JsonLinesResult(unittest.TextTestResult):
    def startTest(self, test):
        self._t0 = time.perf_counter()
        super().startTest(test)

    def _emit(self, test, outcome, detail=""):
        seconds = time.perf_counter() - getattr(self, "_t0", time.perf_counter())
        out.write(json.dumps({"id": test.id(), "outcome": outcome, "detail": detail, "seconds": seconds}) + "\n")

    def addSuccess(self, test):
        super().addSuccess(test)
        self._emit(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._emit(test, "fail", self.failures[-1][1])

    def addError(self, test, err):
        super().addError(test, err)
        self._emit(test, "fail", self.errors[-1][1])

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._emit(test, "skip", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._emit(test, "pass", "expected failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._emit(test, "fail", "passed, but is marked as an expected failure")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._emit(subtest, "fail", self._exc_info_to_string(err, test))

suite = unittest.defaultTestLoader.discover("python/tests")
result = unittest.TextTestRunner(verbosity=2, resultclass=JsonLinesResult, buffer=True).run(suite)
sys.exit(0 if result.wasSuccessful() else 1)
`;

const caseSchema = z.object({
  id: z.string(),
  outcome: z.enum(['pass', 'fail', 'skip']),
  detail: z.string(),
  seconds: z.number(),
});

/** "test_flatten.FlattenTest.test_nested_dicts_flatten" -> "test_flatten › FlattenTest › nested dicts flatten". */
function caseName(id: string): string {
  // A module skipped as a whole (unittest.SkipTest raised at import) has a placeholder id.
  const skipped = /^unittest\.loader\.ModuleSkipped\.(\w+)$/.exec(id);
  if (skipped !== null) return `${skipped[1] ?? id} › (the whole module)`;
  const parts = id.split('.');
  const method = parts.pop() ?? id;
  return [...parts, method.replace(/^test_/, '').replaceAll('_', ' ')].join(' › ');
}

test('python/tests: every unittest case passes or is skipped with its reason', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'cube-pyunit-'));
  try {
    const resultsFile = join(work, 'cases.jsonl');
    const r = spawnSync(python, ['-c', runner, resultsFile], {
      cwd: repoRoot,
      encoding: 'utf8',
      maxBuffer: 64 << 20,
      timeout: 240_000,
      env: {
        ...process.env,
        PYTHONPATH: join(repoRoot, 'python'),
        PYTHONDONTWRITEBYTECODE: '1',
        OMP_NUM_THREADS: '1',
      },
    });
    let lines: string[] = [];
    try {
      lines = readFileSync(resultsFile, 'utf8').split('\n').filter(Boolean);
    } catch {
      // No file: the interpreter died before the runner started; the assertion below says so.
    }
    const cases = lines.map((line) => caseSchema.parse(JSON.parse(line)));
    assert.ok(
      cases.length > 0,
      `${python} ran no unittest case (exit ${r.status ?? r.signal}):\n${r.stderr.slice(-6000)}`,
    );
    for (const c of cases) {
      const name = caseName(c.id);
      if (c.outcome === 'skip') {
        await t.test(name, { skip: c.detail }, () => {});
        continue;
      }
      await t.test(name, () => {
        if (c.outcome === 'fail')
          assert.fail(`${c.id} failed (${c.seconds.toFixed(2)} s):\n${c.detail}`);
      });
    }
    // Every case's outcome is above; this catches a runner killed part-way (the timeout, a crash
    // of the interpreter) after some cases were written.
    const failed = cases.some((c) => c.outcome === 'fail');
    assert.ok(
      r.status === 0 || failed,
      `unittest exited ${r.status ?? r.signal} with no failed case:\n${r.stderr.slice(-6000)}`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
