// The dashboard's size and first load: `npm run bench:web`.
//
// 1. The production bundle (web/dist) as the browser downloads it: raw and gzip bytes.
// 2. First load of the cluster view of a 1,024-device cluster (128 eight-GPU nodes joined
//    through the agents' API), each time in a fresh browser context (cold cache, signed in):
//    navigation start to the load event, and to the topology drawn; median of --runs (5).
//    The baseline, measured in the same run by the same browser against the same server, in
//    turn with it: the server's `/metrics` text page, one small response with nothing to run
//    (the floor of a navigation here). Ratio = dashboard / baseline.
import { readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import type { Browser } from 'playwright-core';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { launchChromium } from '../../test/web/browser.ts';
import { ensureWebBundle, webDist } from '../../test/web/web-bundle.ts';

const { values: flags } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, json: { type: 'boolean', default: false } },
});
const runs = Math.max(1, Number(flags.runs));

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

interface Size {
  readonly files: number;
  readonly rawBytes: number;
  readonly gzipBytes: number;
}

function sizeOf(files: readonly string[]): Size {
  let rawBytes = 0;
  let gzipBytes = 0;
  for (const f of files) {
    const data = readFileSync(f);
    rawBytes += data.length;
    gzipBytes += gzipSync(data, { level: 9 }).length;
  }
  return { files: files.length, rawBytes, gzipBytes };
}

/** Every file of the bundle, and what a first visit downloads (index.html and what it links). */
function bundleSize(): { total: Size; initial: Size } {
  const index = join(webDist, 'index.html');
  const assets = readdirSync(join(webDist, 'assets')).map((f) => join(webDist, 'assets', f));
  const html = readFileSync(index, 'utf8');
  const linked = assets.filter((f) => html.includes(`/assets/${f.split('/').at(-1) ?? ''}`));
  return { total: sizeOf([index, ...assets]), initial: sizeOf([index, ...linked]) };
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

async function joinNodes(cp: ControlPlane): Promise<void> {
  for (let i = 0; i < 128; i += 1) {
    const response = await fetch(`${cp.url}/api/v1/agents/join`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        joinToken: cp.tokens.joinToken,
        name: `gpu-${String(i).padStart(3, '0')}`,
        labels: { superNode: `sn${Math.floor(i / 32)}`, server: `srv${i}` },
        devices: Array.from({ length: 8 }, (_, index) => ({
          index,
          kind: 'nvidia',
          model: 'BR166',
          memoryBytes: 64 * 2 ** 30,
          health: 'ok',
        })),
        hostMemoryBytes: 2 ** 40,
        role: i % 32 === 31 ? 'spare' : 'worker',
      }),
    });
    if (!response.ok) throw new Error(`join failed: ${response.status} ${await response.text()}`);
  }
}

/** One cold navigation: ms to the load event, and to `readySelector` when given. */
async function coldLoad(
  browser: Browser,
  url: string,
  token: string,
  readySelector: string | null,
): Promise<{ loadMs: number; readyMs: number | null }> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  try {
    await context.addInitScript((t) => {
      (
        globalThis as unknown as { localStorage: { setItem(k: string, v: string): void } }
      ).localStorage.setItem('cube.apiToken', t);
    }, token);
    const page = await context.newPage();
    const started = Date.now();
    await page.goto(url, { waitUntil: 'load' });
    const loadMs = await page.evaluate(() => {
      // Runs in the page: the browser's Performance API, not Node's.
      const perf = (
        globalThis as unknown as { performance: { getEntriesByType(t: string): unknown[] } }
      ).performance;
      const nav = perf.getEntriesByType('navigation')[0] as
        { loadEventEnd: number; startTime: number } | undefined;
      return nav === undefined ? NaN : nav.loadEventEnd - nav.startTime;
    });
    let readyMs: number | null = null;
    if (readySelector !== null) {
      await page.locator(readySelector).first().waitFor({ timeout: 60_000 });
      readyMs = Date.now() - started;
    }
    return { loadMs, readyMs };
  } finally {
    await context.close();
  }
}

ensureWebBundle();
const size = bundleSize();
const dataDir = mkdtempSync(join(tmpdir(), 'cube-bench-web-'));
const cp = await ControlPlane.start({ dataDir, heartbeatTimeoutMs: 600_000 });
const browser = await launchChromium();
try {
  await joinNodes(cp);
  // Warm the browser (process start, font caches) before any measured navigation.
  await coldLoad(browser, 'data:text/html,<!doctype html><title>warm-up</title>', '', null);
  const cube: { loadMs: number; readyMs: number | null }[] = [];
  const base: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    base.push((await coldLoad(browser, `${cp.url}/metrics`, cp.tokens.apiToken, null)).loadMs);
    cube.push(
      await coldLoad(browser, `${cp.url}/`, cp.tokens.apiToken, '.react-flow__node-superNode'),
    );
  }
  const loadMs = median(cube.map((c) => c.loadMs));
  const readyMs = median(cube.map((c) => c.readyMs ?? NaN));
  const baseMs = median(base);
  const result = {
    bundle: size,
    runs,
    firstLoadMs: loadMs,
    clusterDrawnMs: readyMs,
    baselineLoadMs: baseMs,
    ratio: loadMs / baseMs,
    machine: { cpus: cpus().length, loadavg1: loadavg()[0] },
  };
  if (flags.json) console.log(JSON.stringify(result));
  else {
    console.log(
      `bundle: ${size.total.files} files, ${kib(size.total.rawBytes)} raw, ${kib(size.total.gzipBytes)} gzip; ` +
        `first visit (index.html and what it links): ${size.initial.files} files, ${kib(size.initial.rawBytes)} raw, ${kib(size.initial.gzipBytes)} gzip`,
    );
    console.log(`first load, median of ${runs} cold loads (1,024-device cluster view):`);
    console.log(`  cube dashboard   navigation -> load event  ${loadMs.toFixed(0)} ms`);
    console.log(
      `  baseline         navigation -> load event  ${baseMs.toFixed(0)} ms (a plain-text page of the same server)`,
    );
    console.log(`  ratio            ${(loadMs / baseMs).toFixed(2)}x`);
    console.log(`  cube dashboard   navigation -> topology drawn  ${readyMs.toFixed(0)} ms`);
    console.log(`  (machine: ${cpus().length} cpus, load average ${loadavg()[0]?.toFixed(2)})`);
  }
} finally {
  await browser.close();
  await cp.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
