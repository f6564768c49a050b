/**
 * What the console's browser tests and screenshots share: the UI build, Debian's chromium driven
 * by playwright-core, and a signed-in page.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import { uiDir } from '../../src/http/routes-ui.js';

export const CHROMIUM = process.env['LLORCH_CHROMIUM'] ?? '/usr/bin/chromium';
export const haveChromium = existsSync(CHROMIUM);

/** Builds `dist/ui` when it is missing (a run without `npm run build`). */
export async function ensureUiBuilt(): Promise<void> {
  if (existsSync(join(uiDir(), 'index.html'))) return;
  await promisify(execFile)('npx', ['vite', 'build', 'ui', '--logLevel', 'warn'], {
    cwd: join(uiDir(), '..', '..'),
  });
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    // As root chromium needs --no-sandbox; background networking would try the closed network.
    args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'],
  });
}

/** A fresh browser context (its own session storage) signed in to the console with `key`. */
export async function signIn(browser: Browser, baseUrl: string, key: string, view = ''): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${baseUrl}/ui/${view === '' ? '' : `#/${view}`}`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Views' }).waitFor();
  return page;
}
