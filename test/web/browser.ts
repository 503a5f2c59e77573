// Debian's Chromium driven by playwright-core (no browser download): what the dashboard's
// end-to-end tests and its load benchmark use.
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

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
