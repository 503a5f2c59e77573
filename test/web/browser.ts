// Debian's Chromium driven by playwright-core (no browser download): what the dashboard's
// end-to-end tests and its load benchmark use.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

export const chromiumPath = process.env.CUBE_CHROMIUM ?? '/usr/bin/chromium';

/** Launches headless Chromium; fails with the setup step to run when it is missing. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(chromiumPath))
    throw new Error(
      `no Chromium at ${chromiumPath}: run \`bash scripts/setup.sh\` (it installs Debian's chromium), or set CUBE_CHROMIUM`,
    );
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
}

/**
 * A page of `browser` already signed in with `apiToken` (the login itself is covered by
 * dashboard.test.ts), whose console errors and uncaught errors land in `errors`, each prefixed
 * with the page's address when `withUrl`.
 */
export async function signedInPage(
  browser: Browser,
  apiToken: string,
  viewport: { width: number; height: number },
  errors: string[],
  options: { withUrl?: boolean } = {},
): Promise<Page> {
  const page = await browser.newPage({ viewport });
  const note = (text: string): void => {
    errors.push(options.withUrl === true ? `${page.url()}: ${text}` : text);
  };
  page.on('console', (m) => {
    if (m.type() === 'error') note(m.text());
  });
  page.on('pageerror', (e) => note(e.message));
  await page.addInitScript((token) => {
    const storage = (
      globalThis as unknown as { localStorage: { setItem(k: string, v: string): void } }
    ).localStorage;
    storage.setItem('cube.apiToken', token);
  }, apiToken);
  return page;
}
