#!/usr/bin/env node
// The published entry point: registers tsx so the TypeScript sources run as they are,
// with no build step between `npm ci` and `npx cube`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
