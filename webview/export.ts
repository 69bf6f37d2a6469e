/** Whole-run export: the effective events and the summary derived from them, in one JSON document. */
import type { RunState } from './state';
import { runStatus } from './state';
import { summaryRow } from './derive';
import { WEBVIEW_PROTOCOL } from '../src/protocol/webview';

export function runsJson(runs: RunState[]): string {
  return (
    JSON.stringify(
      {
        kind: 'sculpt-dashboard-export',
        protocol: WEBVIEW_PROTOCOL,
        exportedAt: new Date().toISOString(),
        runs: runs.map((r) => ({
          name: r.name,
          folder: r.key,
          status: runStatus(r),
          summary: summaryRow(r).summary,
          log: r.log,
          // The effective events: what a replay needs to rebuild this dashboard.
          events: r.events,
        })),
      },
      null,
      1,
    ) + '\n'
  );
}
