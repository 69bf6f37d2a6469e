/**
 * DOM building without HTML strings: every string given here becomes a text node or an attribute value, never
 * markup, so task names, labels and paths from configs and event logs cannot inject anything.
 */

type Child = Node | string | number | null | undefined | false;

export interface Props {
  class?: string;
  text?: string;
  title?: string;
  attrs?: Record<string, string | number | boolean | null | undefined>;
  data?: Record<string, string | number | null | undefined>;
  on?: Record<string, (ev: Event) => void>;
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props?: Props,
  ...children: Child[]
): HTMLElementTagNameMap[K];
export function h(tag: string, props?: Props, ...children: Child[]): HTMLElement;
export function h(tag: string, props: Props = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  if (props.class) el.className = props.class;
  if (props.title) el.title = props.title;
  for (const [k, v] of Object.entries(props.attrs ?? {})) {
    if (v === true) el.setAttribute(k, '');
    else if (v != null && v !== false) el.setAttribute(k, String(v));
  }
  for (const [k, v] of Object.entries(props.data ?? {})) if (v != null) el.dataset[k] = String(v);
  for (const [k, fn] of Object.entries(props.on ?? {})) el.addEventListener(k, fn);
  if (props.text != null) el.textContent = props.text;
  append(el, ...children);
  return el;
}

export function append(el: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c == null || c === false) continue;
    el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function clear(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}

/**
 * A labelled drop-down (a vscode-single-select inside a label); `control` names it for tests (data-control).
 * The caller imports the vscode-single-select and vscode-option elements.
 */
export function labelledSelect(
  label: string,
  options: { value: string; label: string }[],
  value: string,
  onChange: (v: string) => void,
  control?: string,
): HTMLElement {
  const sel = h('vscode-single-select', {
    attrs: { 'aria-label': label },
    ...(control ? { data: { control } } : {}),
    on: { change: (ev) => onChange((ev.currentTarget as HTMLSelectElement).value) },
  });
  for (const o of options)
    sel.append(h('vscode-option', { attrs: { value: o.value, selected: o.value === value }, text: o.label }));
  return h('label', { class: 'field' }, h('span', { class: 'field-label', text: label }), sel);
}
