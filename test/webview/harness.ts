/**
 * Browser harness for the dashboard: a loopback-only static server for the built bundle, a page with the real
 * panel's HTML and CSP plus a stub `acquireVsCodeApi`, and Debian's Chromium driven by playwright-core. Used by
 * the browser tests and the dashboard benchmark.
 */
import { createServer, type Server } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { dashboardCsp, dashboardHtml, makeNonce } from '../../src/extension/dashboard/html';
import type { HostMessage, ThemeKind, WebviewMessage } from '../../src/protocol/webview';
import { repoRoot } from '../helpers/paths';

export const CHROMIUM = process.env.SCULPT_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--headless',
];

/**
 * Stands in for VS Code's webview API: records posted messages, keeps state in sessionStorage so it survives a
 * reload like VS Code's does, and refuses a second acquire like the real one.
 */
const STUB = `(() => {
  const KEY = 'sculpt-test-state';
  const posted = [];
  let acquired = false;
  window.__sculptPosted = posted;
  window.__sculptCsp = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__sculptCsp.push({ directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample });
  });
  window.acquireVsCodeApi = () => {
    if (acquired) throw new Error('An instance of the VS Code API has already been acquired');
    acquired = true;
    return {
      postMessage: (m) => { posted.push(JSON.parse(JSON.stringify(m))); },
      getState: () => { const s = sessionStorage.getItem(KEY); return s ? JSON.parse(s) : undefined; },
      setState: (s) => { sessionStorage.setItem(KEY, JSON.stringify(s)); return s; },
    };
  };
})();
`;

const BODY_CLASS: Record<ThemeKind, string> = {
  dark: 'vscode-dark',
  light: 'vscode-light',
  'high-contrast': 'vscode-high-contrast',
  'high-contrast-light': 'vscode-high-contrast-light vscode-light',
};

export interface Harness {
  origin: string;
  close(): Promise<void>;
}

/** Serves only the files the page needs, on 127.0.0.1 and a random port. */
export async function startServer(): Promise<Harness> {
  const files: Record<string, [string, string]> = {
    '/dist/webview.js': [join(repoRoot, 'dist', 'webview.js'), 'text/javascript'],
    '/media/dashboard.css': [join(repoRoot, 'media', 'dashboard.css'), 'text/css'],
    '/test/themes.css': [join(repoRoot, 'test', 'webview', 'page', 'themes.css'), 'text/css'],
  };
  if (!existsSync(files['/dist/webview.js'][0]))
    throw new Error('dist/webview.js is missing: run `npm run build` first');
  let origin = '';
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', origin);
    const send = (status: number, type: string, body: string | Buffer) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (url.pathname === '/') {
      const theme = (url.searchParams.get('theme') ?? 'dark') as ThemeKind;
      const html = dashboardHtml({
        cspSource: origin,
        scriptUri: `${origin}/dist/webview.js`,
        styleUri: `${origin}/media/dashboard.css`,
        preludeScripts: [`${origin}/test/stub.js`],
        preludeStyles: [`${origin}/test/themes.css`],
        bodyClass: BODY_CLASS[theme] ?? BODY_CLASS.dark,
        nonce: makeNonce(),
      });
      return send(200, 'text/html; charset=utf-8', html);
    }
    if (url.pathname === '/test/stub.js') return send(200, 'text/javascript', STUB);
    // Browsers ask for a favicon on their own; VS Code's webview host answers nothing for it either.
    if (url.pathname === '/favicon.ico') return send(204, 'image/x-icon', '');
    const f = files[url.pathname];
    if (f && existsSync(f[0])) return send(200, f[1], readFileSync(f[0]));
    return send(404, 'text/plain', 'not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Launches Debian's Chromium; a missing browser is an error that says how to install it (never a skip). */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: run scripts/provision/chromium.sh (installs Debian's chromium package)`,
    );
  }
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

export interface DashboardPage {
  page: Page;
  /** Console errors, page errors and CSP reports seen so far. */
  problems: string[];
  post(msg: HostMessage): Promise<void>;
  posted(): Promise<WebviewMessage[]>;
  /** Waits until the drawn picture includes `events` events in total. */
  rendered(events: number): Promise<void>;
  cspViolations(): Promise<unknown[]>;
  setTheme(theme: ThemeKind): Promise<void>;
}

export async function openDashboard(
  browser: Browser,
  origin: string,
  opts: { theme?: ThemeKind; width?: number; height?: number } = {},
): Promise<DashboardPage> {
  const page = await browser.newPage({
    viewport: { width: opts.width ?? 1280, height: opts.height ?? 900 },
    deviceScaleFactor: 1,
  });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning' || /Content Security Policy/i.test(m.text()))
      problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  await page.goto(`${origin}/?theme=${opts.theme ?? 'dark'}`);
  await page.waitForFunction(() =>
    (window as unknown as { __sculptPosted: { type: string }[] }).__sculptPosted.some((m) => m.type === 'ready'),
  );
  return wrapPage(page, problems);
}

export function wrapPage(page: Page, problems: string[]): DashboardPage {
  return {
    page,
    problems,
    post: async (msg) => {
      await page.evaluate((m) => window.postMessage(m, '*'), msg as unknown as Record<string, unknown>);
    },
    posted: () =>
      page.evaluate(() => (window as unknown as { __sculptPosted: WebviewMessage[] }).__sculptPosted.slice()),
    rendered: async (events) => {
      await page.waitForFunction((n) => document.documentElement.dataset.sculptEvents === String(n), events, {
        timeout: 15000,
      });
    },
    cspViolations: () => page.evaluate(() => (window as unknown as { __sculptCsp: unknown[] }).__sculptCsp.slice()),
    setTheme: async (theme) => {
      await page.evaluate((cls) => {
        document.body.className = cls;
      }, BODY_CLASS[theme]);
    },
  };
}

export { dashboardCsp };
