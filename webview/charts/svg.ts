/**
 * Vector export of the charts. Chart.js paints on a canvas, so the chart is drawn a second time through a
 * context that forwards every call to a real canvas (which keeps the state: transforms, fonts, measureText)
 * and writes what is painted as SVG: paths for lines, bars, points and heatmap cells, text for ticks, titles and
 * legends, clip paths, dashes and gradients. Each dataset's marks are grouped under its label (`<g
 * data-series="...">` with a `<title>`), so the file says what each series is. Only what the dashboard's charts
 * use is translated; images and shadows are left out.
 */

export interface SvgHeader {
  title: string;
  subtitle?: string;
  /** Longer description (the chart's accessible description). */
  describe?: string;
}

export interface SvgDocumentOptions extends SvgHeader {
  width: number;
  height: number;
  /** The page behind the chart; null for transparent. */
  background: string | null;
  foreground: string;
  muted: string;
  fontFamily: string;
  /** Definitions (gradients, clip paths) and the chart's elements. */
  defs: string[];
  body: string[];
}

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

const num = (v: number): string => {
  const r = Math.round(v * 100) / 100;
  return Object.is(r, -0) ? '0' : String(r);
};

/** A CSS colour as SVG attributes: rgba() becomes a colour and an opacity, which every SVG reader takes. */
export function paintAttrs(kind: string, css: string, alpha = 1, opacity = `${kind}-opacity`): string {
  const m = /^rgba?\(([^)]+)\)$/.exec(css.trim());
  let color = css.trim();
  let a = alpha;
  if (m) {
    const [r, g, b, x = '1'] = m[1].split(/[\s,/]+/).filter(Boolean);
    color = `rgb(${r}, ${g}, ${b})`;
    a *= Number(x);
  }
  return `${kind}="${escapeXml(color)}"${a < 1 ? ` ${opacity}="${num(a)}"` : ''}`;
}

/** Height of the title band above the chart. */
export function headerHeight(h: SvgHeader): number {
  return h.subtitle ? 46 : 30;
}

/** The whole SVG file: a title band (title and subtitle as text) above the chart's elements. */
export function svgDocument(o: SvgDocumentOptions): string {
  const head = headerHeight(o);
  const W = num(o.width);
  const H = num(o.height + head);
  const font = escapeXml(o.fontFamily);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" font-family="${font}">`,
    `<title>${escapeXml(o.title)}</title>`,
    o.describe ? `<desc>${escapeXml(o.describe)}</desc>` : '',
    o.defs.length ? `<defs>\n${o.defs.join('\n')}\n</defs>` : '',
    o.background ? `<rect width="${W}" height="${H}" ${paintAttrs('fill', o.background)}/>` : '',
    `<text class="chart-title" x="12" y="21" font-size="15" font-weight="600" ${paintAttrs('fill', o.foreground)}>${escapeXml(o.title)}</text>`,
    o.subtitle
      ? `<text class="chart-subtitle" x="12" y="39" font-size="12" ${paintAttrs('fill', o.muted)}>${escapeXml(o.subtitle)}</text>`
      : '',
    `<g transform="translate(0 ${head})">`,
    ...o.body,
    '</g>',
    '</svg>',
  ]
    .filter((l) => l !== '')
    .join('\n')
    .concat('\n');
}

/** The part of a 2D context the recorder reads and calls (a real CanvasRenderingContext2D, or a test double). */
type Ctx = CanvasRenderingContext2D;

/** A path operation as a canvas or Path2D receives it. */
type PathOp = [name: string, args: number[]];

/**
 * A Path2D that remembers what was added to it: Chart.js builds lines in a Path2D and strokes it in one call, so
 * the recorder needs the path's operations, which a Path2D does not give back. Installed as the global Path2D
 * while a chart is recorded (see `withRecordingPath2D`).
 */
export function recordingPath2D(Base: typeof Path2D): typeof Path2D {
  return class RecordingPath2D extends Base {
    readonly ops: PathOp[] = [];
    override moveTo(x: number, y: number): void {
      super.moveTo(x, y);
      this.ops.push(['moveTo', [x, y]]);
    }
    override lineTo(x: number, y: number): void {
      super.lineTo(x, y);
      this.ops.push(['lineTo', [x, y]]);
    }
    override bezierCurveTo(a: number, b: number, c: number, d: number, x: number, y: number): void {
      super.bezierCurveTo(a, b, c, d, x, y);
      this.ops.push(['bezierCurveTo', [a, b, c, d, x, y]]);
    }
    override quadraticCurveTo(a: number, b: number, x: number, y: number): void {
      super.quadraticCurveTo(a, b, x, y);
      this.ops.push(['quadraticCurveTo', [a, b, x, y]]);
    }
    override rect(x: number, y: number, w: number, h: number): void {
      super.rect(x, y, w, h);
      this.ops.push(['rect', [x, y, w, h]]);
    }
    override arc(x: number, y: number, r: number, a0: number, a1: number, ccw?: boolean): void {
      super.arc(x, y, r, a0, a1, ccw);
      this.ops.push(['arc', [x, y, r, a0, a1, ccw ? 1 : 0]]);
    }
    override closePath(): void {
      super.closePath();
      this.ops.push(['closePath', []]);
    }
  };
}

interface Matrix {
  a: number;
  b: number;
  c: number;
  d: number;
  e: number;
  f: number;
}

const TAU = Math.PI * 2;
const ANCHOR: Record<string, string> = { left: 'start', start: 'start', center: 'middle', right: 'end', end: 'end' };
const BASELINE: Record<string, string> = {
  top: 'text-before-edge',
  hanging: 'hanging',
  middle: 'central',
  alphabetic: 'alphabetic',
  ideographic: 'ideographic',
  bottom: 'text-after-edge',
};

/**
 * Records what a chart paints as SVG elements. `context()` is the context to hand to Chart.js; `body` and `defs`
 * hold the result in the canvas's pixel coordinates (draw with a device pixel ratio of 1 for CSS pixels).
 */
export class SvgRecorder {
  readonly body: string[] = [];
  readonly defs: string[] = [];
  private path: string[] = [];
  /** The current point of the path, in output coordinates (arcs join it with a line, as on a canvas). */
  private current: [number, number] | null = null;
  private clip: string | null = null;
  private readonly clips: (string | null)[] = [];
  private readonly gradients = new WeakMap<object, { id: string; def: string; used: boolean }>();
  private ids = 0;
  private depth = 0;

  constructor(private readonly ctx: Ctx) {}

  /** Starts a group for one series; its label becomes the group's `<title>`. */
  beginSeries(label: string): void {
    this.body.push(`<g class="series" data-series="${escapeXml(label)}"><title>${escapeXml(label)}</title>`);
    this.depth++;
  }

  endSeries(): void {
    if (this.depth <= 0) return;
    this.depth--;
    this.body.push('</g>');
  }

  /** Closes any group left open (a chart that threw mid-draw). */
  finish(): void {
    while (this.depth > 0) this.endSeries();
  }

  private matrix(): Matrix {
    const t = this.ctx.getTransform();
    return { a: t.a, b: t.b, c: t.c, d: t.d, e: t.e, f: t.f };
  }

  private pt(x: number, y: number, m = this.matrix()): [number, number] {
    return [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f];
  }

  private scale(m = this.matrix()): number {
    return Math.sqrt(Math.abs(m.a * m.d - m.b * m.c)) || 1;
  }

  private cmd(op: 'M' | 'L', x: number, y: number): void {
    const p = this.pt(x, y);
    this.path.push(`${op}${num(p[0])} ${num(p[1])}`);
    this.current = p;
  }

  private arc(x: number, y: number, r: number, a0: number, a1: number, ccw: boolean): void {
    const m = this.matrix();
    const at = (a: number) => this.pt(x + r * Math.cos(a), y + r * Math.sin(a), m);
    const start = at(a0);
    this.path.push(`${this.current ? 'L' : 'M'}${num(start[0])} ${num(start[1])}`);
    let sweep = ccw ? a0 - a1 : a1 - a0;
    const full = sweep >= TAU - 1e-9;
    if (!full) sweep = ((sweep % TAU) + TAU) % TAU;
    const R = num(r * this.scale(m));
    const flag = ccw ? 0 : 1;
    if (full) {
      const opp = at(a0 + (ccw ? -Math.PI : Math.PI));
      this.path.push(`A${R} ${R} 0 1 ${flag} ${num(opp[0])} ${num(opp[1])}`);
      this.path.push(`A${R} ${R} 0 1 ${flag} ${num(start[0])} ${num(start[1])}`);
      this.current = start;
    } else if (sweep > 0) {
      const end = at(ccw ? a0 - sweep : a0 + sweep);
      this.path.push(`A${R} ${R} 0 ${sweep > Math.PI ? 1 : 0} ${flag} ${num(end[0])} ${num(end[1])}`);
      this.current = end;
    } else {
      this.current = start;
    }
  }

  /** Adds one path operation (user-space coordinates, mapped with the transform now in force). */
  private op(name: string, a: number[]): void {
    switch (name) {
      case 'moveTo':
        this.cmd('M', a[0], a[1]);
        break;
      case 'lineTo':
        this.cmd(this.current ? 'L' : 'M', a[0], a[1]);
        break;
      case 'bezierCurveTo': {
        const m = this.matrix();
        const ps = [this.pt(a[0], a[1], m), this.pt(a[2], a[3], m), this.pt(a[4], a[5], m)];
        this.path.push(`C${ps.map((p) => `${num(p[0])} ${num(p[1])}`).join(' ')}`);
        this.current = ps[2];
        break;
      }
      case 'quadraticCurveTo': {
        const m = this.matrix();
        const ps = [this.pt(a[0], a[1], m), this.pt(a[2], a[3], m)];
        this.path.push(`Q${ps.map((p) => `${num(p[0])} ${num(p[1])}`).join(' ')}`);
        this.current = ps[1];
        break;
      }
      case 'rect':
        this.path.push(this.rectPath(a[0], a[1], a[2], a[3]));
        this.current = this.pt(a[0], a[1]);
        break;
      case 'arc':
        this.arc(a[0], a[1], a[2], a[3], a[4], !!a[5]);
        break;
      case 'closePath':
        this.path.push('Z');
        break;
    }
  }

  /** The `d` of a recorded Path2D, mapped with the transform in force when it is painted. */
  private pathOf(p: unknown): string | null {
    const ops = (p as { ops?: PathOp[] } | undefined)?.ops;
    if (!Array.isArray(ops)) return null;
    const [path, current] = [this.path, this.current];
    this.path = [];
    this.current = null;
    for (const [name, args] of ops) this.op(name, args);
    const d = this.path.join('');
    [this.path, this.current] = [path, current];
    return d;
  }

  private rectPath(x: number, y: number, w: number, h: number): string {
    const m = this.matrix();
    const ps = [this.pt(x, y, m), this.pt(x + w, y, m), this.pt(x + w, y + h, m), this.pt(x, y + h, m)];
    return `M${ps.map((p) => `${num(p[0])} ${num(p[1])}`).join('L')}Z`;
  }

  private style(kind: 'fill' | 'stroke'): string | null {
    const ctx = this.ctx;
    const s = kind === 'fill' ? ctx.fillStyle : ctx.strokeStyle;
    const alpha = ctx.globalAlpha ?? 1;
    if (typeof s === 'string') {
      if (/^rgba\([^)]*,\s*0\)$/.test(s) || s === 'transparent') return null;
      return paintAttrs(kind, s, alpha);
    }
    const g = this.gradients.get(s as object);
    if (!g) return null;
    if (!g.used) {
      g.used = true;
      this.defs.push(g.def);
    }
    return `${kind}="url(#${g.id})"${alpha < 1 ? ` ${kind}-opacity="${num(alpha)}"` : ''}`;
  }

  private strokeAttrs(): string {
    const ctx = this.ctx;
    const s = this.scale();
    const dash = ctx.getLineDash?.() ?? [];
    return [
      `stroke-width="${num((ctx.lineWidth ?? 1) * s)}"`,
      dash.length ? `stroke-dasharray="${dash.map((d) => num(d * s)).join(' ')}"` : '',
      ctx.lineCap && ctx.lineCap !== 'butt' ? `stroke-linecap="${ctx.lineCap}"` : '',
      ctx.lineJoin && ctx.lineJoin !== 'miter' ? `stroke-linejoin="${ctx.lineJoin}"` : '',
    ]
      .filter(Boolean)
      .join(' ');
  }

  private clipAttr(): string {
    return this.clip ? ` clip-path="url(#${this.clip})"` : '';
  }

  private paint(kind: 'fill' | 'stroke', d: string): void {
    if (!d) return;
    const paint = this.style(kind);
    if (!paint) return;
    const rest = kind === 'fill' ? ' stroke="none"' : ` fill="none" ${this.strokeAttrs()}`;
    this.body.push(`<path d="${d}" ${paint}${rest}${this.clipAttr()}/>`);
  }

  private text(kind: 'fill' | 'stroke', text: string, x: number, y: number): void {
    const paint = this.style(kind);
    if (!paint || text === '') return;
    const ctx = this.ctx;
    const m = this.matrix();
    const plain = Math.abs(m.b) < 1e-9 && Math.abs(m.c) < 1e-9 && Math.abs(m.a - 1) < 1e-9 && Math.abs(m.d - 1) < 1e-9;
    const [px, py] = this.pt(x, y, m);
    const place = plain
      ? `x="${num(px)}" y="${num(py)}"`
      : `transform="matrix(${[m.a, m.b, m.c, m.d, px, py].map(num).join(' ')})"`;
    const anchor = ANCHOR[ctx.textAlign] ?? 'start';
    const baseline = BASELINE[ctx.textBaseline] ?? 'alphabetic';
    const size = /(\d+(?:\.\d+)?)px/.exec(ctx.font)?.[1];
    const attrs = [
      place,
      anchor !== 'start' ? `text-anchor="${anchor}"` : '',
      baseline !== 'alphabetic' ? `dominant-baseline="${baseline}"` : '',
      size ? `font-size="${size}"` : '',
      `style="font: ${escapeXml(ctx.font)}"`,
      paint,
      kind === 'stroke' ? `fill="none" ${this.strokeAttrs()}` : '',
    ].filter(Boolean);
    this.body.push(`<text ${attrs.join(' ')}${this.clipAttr()}>${escapeXml(text)}</text>`);
  }

  private gradient(g: CanvasGradient, x0: number, y0: number, x1: number, y1: number): void {
    const [a, b] = [this.pt(x0, y0), this.pt(x1, y1)];
    const id = `g${++this.ids}`;
    const stops: string[] = [];
    const entry = { id, def: '', used: false };
    const build = () =>
      `<linearGradient id="${id}" gradientUnits="userSpaceOnUse" x1="${num(a[0])}" y1="${num(a[1])}" x2="${num(b[0])}" y2="${num(b[1])}">${stops.join('')}</linearGradient>`;
    const add = g.addColorStop.bind(g);
    // Stops are added after the gradient is made: the definition is rebuilt with each.
    (g as { addColorStop: CanvasGradient['addColorStop'] }).addColorStop = (offset: number, color: string) => {
      add(offset, color);
      stops.push(`<stop offset="${num(offset)}" ${paintAttrs('stop-color', color, 1, 'stop-opacity')}/>`);
      entry.def = build();
    };
    entry.def = build();
    this.gradients.set(g, entry);
  }

  private setClip(d: string): void {
    const id = `c${++this.ids}`;
    this.defs.push(
      `<clipPath id="${id}" clipPathUnits="userSpaceOnUse"${this.clip ? ` clip-path="url(#${this.clip})"` : ''}><path d="${d || 'M0 0Z'}"/></clipPath>`,
    );
    this.clip = id;
  }

  /** The context to draw with: the real one, with painting recorded on the way. */
  context(): Ctx {
    const ctx = this.ctx;
    const overrides: Record<string, (...a: never[]) => unknown> = {
      save: () => {
        ctx.save();
        this.clips.push(this.clip);
      },
      restore: () => {
        ctx.restore();
        if (this.clips.length) this.clip = this.clips.pop()!;
      },
      beginPath: () => {
        ctx.beginPath();
        this.path = [];
        this.current = null;
      },
      closePath: () => {
        ctx.closePath();
        this.path.push('Z');
      },
      moveTo: (x: number, y: number) => {
        ctx.moveTo(x, y);
        this.op('moveTo', [x, y]);
      },
      lineTo: (x: number, y: number) => {
        ctx.lineTo(x, y);
        this.op('lineTo', [x, y]);
      },
      bezierCurveTo: (c1x: number, c1y: number, c2x: number, c2y: number, x: number, y: number) => {
        ctx.bezierCurveTo(c1x, c1y, c2x, c2y, x, y);
        this.op('bezierCurveTo', [c1x, c1y, c2x, c2y, x, y]);
      },
      quadraticCurveTo: (cx: number, cy: number, x: number, y: number) => {
        ctx.quadraticCurveTo(cx, cy, x, y);
        this.op('quadraticCurveTo', [cx, cy, x, y]);
      },
      rect: (x: number, y: number, w: number, h: number) => {
        ctx.rect(x, y, w, h);
        this.op('rect', [x, y, w, h]);
      },
      arc: (x: number, y: number, r: number, a0: number, a1: number, ccw?: boolean) => {
        ctx.arc(x, y, r, a0, a1, ccw);
        this.op('arc', [x, y, r, a0, a1, ccw ? 1 : 0]);
      },
      ellipse: (x: number, y: number, rx: number, ry: number, rot: number, a0: number, a1: number, ccw?: boolean) => {
        ctx.ellipse(x, y, rx, ry, rot, a0, a1, ccw);
        // The charts draw circles only; an ellipse is recorded as the circle of its mean radius.
        this.arc(x, y, (rx + ry) / 2, a0 + rot, a1 + rot, !!ccw);
      },
      // A Path2D argument is painted instead of the context's path (Chart.js strokes its lines that way).
      fill: (...args: never[]) => {
        (ctx.fill as (...a: unknown[]) => void)(...args);
        this.paint('fill', this.pathOf(args[0]) ?? this.path.join(''));
      },
      stroke: (...args: never[]) => {
        (ctx.stroke as (...a: unknown[]) => void)(...args);
        this.paint('stroke', this.pathOf(args[0]) ?? this.path.join(''));
      },
      clip: (...args: never[]) => {
        (ctx.clip as (...a: unknown[]) => void)(...args);
        this.setClip(this.pathOf(args[0]) ?? this.path.join(''));
      },
      fillRect: (x: number, y: number, w: number, h: number) => {
        ctx.fillRect(x, y, w, h);
        this.paint('fill', this.rectPath(x, y, w, h));
      },
      strokeRect: (x: number, y: number, w: number, h: number) => {
        ctx.strokeRect(x, y, w, h);
        this.paint('stroke', this.rectPath(x, y, w, h));
      },
      fillText: (t: string, x: number, y: number, maxWidth?: number) => {
        if (maxWidth === undefined) ctx.fillText(t, x, y);
        else ctx.fillText(t, x, y, maxWidth);
        this.text('fill', String(t), x, y);
      },
      strokeText: (t: string, x: number, y: number, maxWidth?: number) => {
        if (maxWidth === undefined) ctx.strokeText(t, x, y);
        else ctx.strokeText(t, x, y, maxWidth);
        this.text('stroke', String(t), x, y);
      },
      createLinearGradient: (x0: number, y0: number, x1: number, y1: number) => {
        const g = ctx.createLinearGradient(x0, y0, x1, y1);
        this.gradient(g, x0, y0, x1, y1);
        return g;
      },
    };
    return new Proxy(ctx, {
      get(target, prop) {
        if (typeof prop === 'string' && Object.prototype.hasOwnProperty.call(overrides, prop)) return overrides[prop];
        // The context's own getters and methods need the real context as `this`.
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
      set(target, prop, value) {
        return Reflect.set(target, prop, value, target);
      },
    });
  }
}
