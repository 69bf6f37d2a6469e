/** Whole-run export: the effective events and the summary derived from them, in one JSON document. */
import type { RunState } from './state';
import { runStatus } from './state';
import { summaryRow } from './derive';
import { WEBVIEW_PROTOCOL, type ExperimentInfo } from '../src/protocol/webview';
import type { ExperimentAggregate } from '../src/runs/aggregate-types';

/** The runs, and when they are an experiment's cells (or several per method), the experiment and its aggregate. */
export function runsJson(
  runs: RunState[],
  extra: { experiment?: ExperimentInfo | null; aggregate?: ExperimentAggregate } = {},
): string {
  return (
    JSON.stringify(
      {
        kind: 'sculpt-dashboard-export',
        protocol: WEBVIEW_PROTOCOL,
        exportedAt: new Date().toISOString(),
        ...(extra.experiment ? { experiment: extra.experiment } : {}),
        ...(extra.aggregate ? { aggregate: extra.aggregate } : {}),
        runs: runs.map((r) => ({
          name: r.name,
          label: r.label,
          ...(r.meta.title || r.meta.notes || r.meta.tags?.length
            ? { notes: { title: r.meta.title ?? '', notes: r.meta.notes ?? '', tags: r.meta.tags ?? [] } }
            : {}),
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
