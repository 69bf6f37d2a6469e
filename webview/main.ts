/**
 * Dashboard webview entry (browser bundle). Handshake: listen first, then post `ready`; the host answers with
 * `init` and streams `events` after it. Errors are reported to the host's log rather than lost in a webview.
 */
import { WEBVIEW_PROTOCOL, isHostMessage } from '../src/protocol/webview';
import { DashboardApp } from './app';
import { hostBridge } from './vscode-api';

const bridge = hostBridge();

function report(message: string): void {
  try {
    bridge.post({ type: 'webview-error', message: message.slice(0, 2000) });
  } catch {
    // Posting can itself fail while the page unloads; nothing else to do then.
  }
}

window.addEventListener('error', (ev) => report(`${ev.message} (${ev.filename}:${ev.lineno})`));
window.addEventListener('unhandledrejection', (ev) => report(String((ev as PromiseRejectionEvent).reason)));

const root = document.getElementById('app');
if (root) {
  const app = new DashboardApp(root, bridge);
  window.addEventListener('message', (ev: MessageEvent) => {
    if (!isHostMessage(ev.data)) return;
    try {
      app.receive(ev.data);
    } catch (e) {
      report(`while handling ${ev.data.type}: ${(e as Error).stack ?? String(e)}`);
    }
  });
  bridge.post({ type: 'ready', protocol: WEBVIEW_PROTOCOL });
}
