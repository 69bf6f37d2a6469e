/** Accessible tables for chart data: caption, scoped headers, and each number's full precision in data-value. */
import type { TableData } from '../charts/spec';
import { h } from '../dom';

export function renderTable(t: TableData, id?: string): HTMLElement {
  const head = h(
    'tr',
    {},
    h('th', { attrs: { scope: 'col' }, text: t.corner }),
    ...t.columns.map((c, i) => h('th', { attrs: { scope: 'col' }, text: c, title: t.columnTitles?.[i] })),
  );
  const body = t.rows.map((r, i) =>
    h(
      'tr',
      { data: { row: i } },
      h('th', { attrs: { scope: 'row' }, text: r.header, title: r.title }),
      ...r.cells.map((c) =>
        h('td', {
          text: c.text,
          title: c.title,
          class:
            `${c.value !== undefined && c.value !== null ? 'num' : ''}${c.kind ? ` cell-${c.kind}` : ''}`.trim() ||
            undefined,
          data: { ...c.data, value: c.value == null ? undefined : String(c.value) },
        }),
      ),
    ),
  );
  return h(
    'div',
    { class: 'table-scroll', attrs: { tabindex: 0, role: 'region', 'aria-label': t.caption } },
    h(
      'table',
      { class: 'data-table', data: { table: id } },
      h('caption', { text: t.caption }),
      h('thead', {}, head),
      h('tbody', {}, ...body),
    ),
    t.note ? h('p', { class: 'table-note', text: t.note }) : null,
  );
}
