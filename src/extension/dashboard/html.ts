/**
 * The dashboard page: a strict Content Security Policy with a fresh nonce per load, the script and stylesheet
 * from the extension's own folders, and nothing inline. No vscode import here, so the browser tests serve the very
 * same page (and policy) as the real panel.
 */
import { randomBytes } from 'node:crypto';

export interface DashboardPageOptions {
  /** `webview.cspSource`: the origin the webview loads local resources from. */
  cspSource: string;
  /** URL of dist/webview.js as the webview sees it (`asWebviewUri`). */
  scriptUri: string;
  /** URL of media/dashboard.css. */
  styleUri: string;
  nonce?: string;
  /** Scripts loaded before the dashboard (test stubs); same nonce, same policy. */
  preludeScripts?: string[];
  /** Stylesheets loaded before the dashboard's (test themes). */
  preludeStyles?: string[];
  /** Body classes, as VS Code sets them (vscode-dark, vscode-light, vscode-high-contrast). */
  bodyClass?: string;
}

export function makeNonce(): string {
  return randomBytes(18)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, '');
}

export function dashboardCsp(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src ${cspSource} 'nonce-${nonce}'`,
    `img-src ${cspSource} data:`,
    `font-src ${cspSource}`,
  ].join('; ');
}

const escapeAttr = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function dashboardHtml(o: DashboardPageOptions): string {
  const nonce = o.nonce ?? makeNonce();
  const css = [...(o.preludeStyles ?? []), o.styleUri]
    .map((u) => `  <link rel="stylesheet" nonce="${nonce}" href="${escapeAttr(u)}">`)
    .join('\n');
  const js = [...(o.preludeScripts ?? []), o.scriptUri]
    .map((u) => `  <script nonce="${nonce}" src="${escapeAttr(u)}"></script>`)
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <meta http-equiv="Content-Security-Policy" content="${escapeAttr(dashboardCsp(o.cspSource, nonce))}">
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
  <title>Sculpt dashboard</title>
${css}
</head>
<body${o.bodyClass ? ` class="${escapeAttr(o.bodyClass)}"` : ''}>
  <main id="app" aria-live="off"></main>
${js}
</body>
</html>
`;
}
