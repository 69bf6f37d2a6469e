// Debian package descriptions (Debian 12 "bookworm", main): what a package is for, in its maintainers' words.
// Section comes from the Packages list, the long description from Translation-en. One description per
// (source package, section): binaries of one source repeat each other.
//   cl5/software      sections games, sound, graphics, math, text
//   cl15/software2    sections net, admin, web, science, fonts (same domain, new labels: interference)
// The section word and the package's own name are removed from the text, so the label cannot be copied.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { aptListsDir } from '../fetch.mjs';
import { byString } from '../lib/common.mjs';

function readList(suffix) {
  const dir = aptListsDir();
  const name = readdirSync(dir).find(
    (f) => /_dists_bookworm_main_/.test(f) && (f.endsWith(`${suffix}.lz4`) || f.endsWith(suffix)),
  );
  if (!name) throw new Error(`${dir}: no bookworm main ${suffix} list (run node scripts/data/fetch.mjs)`);
  const file = join(dir, name);
  if (!name.endsWith('.lz4')) return readFileSync(file, 'utf8');
  const r = spawnSync('lz4', ['-dc', file], { maxBuffer: 1 << 30, encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`cannot decompress ${file} with lz4: ${r.error?.message ?? r.stderr}`);
  return r.stdout;
}

function* stanzas(text) {
  for (const block of text.split(/\n\n+/)) {
    if (!block.trim()) continue;
    const fields = {};
    let last = null;
    for (const line of block.split('\n')) {
      if (/^\s/.test(line) && last) fields[last] += '\n' + line;
      else {
        const i = line.indexOf(':');
        if (i < 0) continue;
        last = line.slice(0, i);
        fields[last] = line.slice(i + 1).trim();
      }
    }
    yield fields;
  }
}

/** The Debian release of the lists, e.g. "12.15" (recorded in the manifest). */
export function debianRelease() {
  const dir = aptListsDir();
  const name = readdirSync(dir).find((f) => /_dists_bookworm_(In)?Release$/.test(f));
  const m = name && /^Version:\s*(\S+)/m.exec(readFileSync(join(dir, name), 'utf8'));
  return m ? m[1] : 'unknown';
}

/** Long description to one paragraph: " ." lines are paragraph breaks, list bullets stay. */
function flatten(desc) {
  const [short, ...rest] = desc.split('\n');
  const body = rest
    .map((l) => l.replace(/^ /, ''))
    .map((l) => (l.trim() === '.' ? '' : l))
    .join(' ');
  return { short: short.trim(), long: body.replace(/\s+/g, ' ').trim() };
}

const BORING =
  /\b(transitional (dummy )?package|dummy transitional|debug symbols|this is an empty package|metapackage)\b/i;

let cache;
/** [{pkg, source, section, short, long}], one per (source, section), sorted by source. */
export function loadDebian() {
  if (cache) return cache;
  const descByMd5 = new Map();
  for (const st of stanzas(readList('_i18n_Translation-en')))
    if (st['Description-md5'] && st['Description-en']) descByMd5.set(st['Description-md5'], st['Description-en']);
  const best = new Map();
  for (const st of stanzas(readList('_binary-amd64_Packages'))) {
    const pkg = st.Package;
    const section = st.Section;
    const desc = descByMd5.get(st['Description-md5']);
    if (!pkg || !section || !desc || section.includes('/')) continue;
    const source = (st.Source || pkg).split(/\s/)[0];
    const { short, long } = flatten(desc);
    if (!long || BORING.test(`${short} ${long}`)) continue;
    const key = `${source}\u0000${section}`;
    const cand = { pkg, source, section, short, long };
    const prev = best.get(key);
    // The binary named like its source describes the whole; otherwise the longest description, then the name.
    const rank = (c) => [c.pkg === c.source ? 0 : 1, -c.long.length, c.pkg];
    if (!prev || compareRank(rank(cand), rank(prev)) < 0) best.set(key, cand);
  }
  cache = [...best.values()].sort((a, b) => byString(a.source, b.source) || byString(a.section, b.section));
  return cache;
}

function compareRank(a, b) {
  for (let i = 0; i < a.length; i++) {
    if (a[i] < b[i]) return -1;
    if (a[i] > b[i]) return 1;
  }
  return 0;
}

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Description text with the package's names and the task's label words taken out. */
export function maskedText(d, maskWords) {
  let t = `${d.short}. ${d.long}`;
  for (const name of new Set([d.pkg, d.source]))
    t = t.replace(new RegExp(`(?<![\\w-])${escapeRe(name)}(?![\\w-])`, 'gi'), 'this package');
  t = t.replace(new RegExp(`\\b(${maskWords.map(escapeRe).join('|')})\\b`, 'gi'), ' ');
  return t.replace(/\s+([.,;:!?])/g, '$1').replace(/\s+/g, ' ');
}

/**
 * Classes for a task: `sections` maps label -> Debian section; `mask` lists every word to remove (the
 * labels, the section names and their simple inflections).
 */
export function sectionClasses(sections, mask) {
  const all = loadDebian();
  return Object.entries(sections).map(([label, section]) => ({
    label,
    items: all
      .filter((d) => d.section === section)
      .map((d) => ({ text: maskedText(d, mask), group: `deb:${d.source}`, key: `deb:${d.source}:${d.section}` })),
  }));
}

export const SOFTWARE = {
  labels: { games: 'games', sound: 'sound', graphics: 'graphics', math: 'math', text: 'text' },
  mask: ['games', 'game', 'sound', 'sounds', 'graphics', 'graphic', 'math', 'maths', 'text', 'texts'],
};
export const SOFTWARE2 = {
  labels: { network: 'net', admin: 'admin', web: 'web', science: 'science', fonts: 'fonts' },
  mask: ['network', 'networks', 'net', 'admin', 'admins', 'web', 'science', 'sciences', 'fonts', 'font'],
};

/** Pretraining text: every description in full (the exclusion of test units happens in the corpus builder). */
export function* corpusUnits() {
  for (const d of loadDebian()) {
    yield { source: 'debian', paragraphs: [[{ text: `${d.short}. ${d.long}`, key: `deb:${d.source}:${d.section}` }]] };
  }
}
