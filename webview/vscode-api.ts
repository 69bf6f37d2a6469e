/** The webview side of the host bridge: typed posting and the state VS Code keeps across reloads. */
import type { DashboardPersistedState, WebviewMessage } from '../src/protocol/webview';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

export interface HostBridge {
  post(message: WebviewMessage): void;
  getState(): unknown;
  setState(state: DashboardPersistedState): void;
}

let api: VsCodeApi | null = null;

/** acquireVsCodeApi may be called only once per page, so the handle is kept. */
export function hostBridge(): HostBridge {
  api ??= acquireVsCodeApi();
  const a = api;
  return {
    post: (m) => a.postMessage(m),
    getState: () => a.getState(),
    setState: (s) => a.setState(s),
  };
}
