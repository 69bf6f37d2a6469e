// Generates the JSON schemas from the protocol types:
//   schemas/sculpt.schema.json  ExperimentConfig (src/protocol/config.ts), used by VS Code and validation
//   schemas/events.schema.json  SculptEvent (src/protocol/events.ts), the trainer event stream
//   node scripts/gen-schema.mjs          write the schemas
//   node scripts/gen-schema.mjs --check  exit 1 if a committed schema differs from a fresh one
import { createGenerator } from 'ts-json-schema-generator';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';

const SCHEMAS = [
  {
    out: 'schemas/sculpt.schema.json',
    path: 'src/protocol/config.ts',
    type: 'ExperimentConfig',
    title: 'Sculpt experiment',
  },
  {
    out: 'schemas/events.schema.json',
    path: 'src/protocol/events.ts',
    type: 'SculptEvent',
    title: 'Sculpt trainer event',
  },
];

export function generateSchema({ path, type, title, out }) {
  const schema = createGenerator({
    path,
    tsconfig: 'tsconfig.json',
    type,
    expose: 'export',
    topRef: true,
    jsDoc: 'extended',
    sortProps: false,
    strictTuples: true,
    skipTypeCheck: true,
    additionalProperties: false,
  }).createSchema(type);
  if (type === 'ExperimentConfig') {
    explainDiscriminators(schema);
    editorHints(schema);
  }
  schema.$id = `https://sculpt.invalid/${out}`;
  schema.title = title;
  return JSON.stringify(schema, null, 2) + '\n';
}

/**
 * For a union told apart by a `const` property (`method`, rank `policy`), VS Code's JSON support reports a
 * wrong value against the closest branch ("Value must be \"seqft\"."); its non-standard `errorMessage` makes
 * that name every choice instead. (Sculpt's own diagnostic adds the "did you mean" and its quick fix.)
 */
function explainDiscriminators(schema) {
  const defs = schema.definitions;
  const resolve = (s) => (s.$ref ? defs[s.$ref.split('/').pop()] : s);
  for (const def of Object.values(defs)) {
    const branches = def.anyOf?.map(resolve);
    if (!branches || branches.length < 2 || !branches.every((b) => b.properties)) continue;
    const key = Object.keys(branches[0].properties).find((k) =>
      branches.every((b) => b.properties[k]?.const !== undefined && b.required?.includes(k)),
    );
    if (!key) continue;
    const names = branches.map((b) => b.properties[key].const);
    for (const b of branches) b.properties[key].errorMessage = `Unknown ${key}: expected one of ${names.join(', ')}.`;
  }
}

/**
 * What VS Code's JSON support needs to write valid configs, derived from the schema itself so that it follows
 * the types and their `@default`s:
 * - a union of objects (a task's `source`, a method, a rank policy) is marked an object, so that completing the
 *   property inserts `"source": {}` with the cursor inside rather than the bare key;
 * - each `method` and rank `policy` value carries its branch's description, shown beside the value;
 * - `defaultSnippets`: a new item of `methods` offers every method with each of its options at its default (the
 *   default rank policy with its own defaults), a `rank` value every policy with its defaults, a new item of
 *   `tasks` a builtin, a JSON Lines and a dataset-folder task, and an empty file a whole experiment.
 * Snippet bodies follow VS Code's convention: a string starting with `^` is inserted as it is (a number, a
 * boolean, an array), any other string as a JSON string; `${n:value}` is the n-th tab stop, `${n|a,b|}` a choice.
 */
function editorHints(schema) {
  const defs = schema.definitions;
  const name = (ref) => ref.split('/').pop();
  const resolve = (s) => (s.$ref ? { ...defs[name(s.$ref)], ...s, $ref: undefined } : s);
  /** The first sentence of a description, for a short line beside a value. */
  const firstSentence = (d) =>
    d
      .split('\n\n')[0]
      .split(/\.(\s|$)/)[0]
      .replace(/[,:;]$/, '') + '.';
  const unions = {};
  for (const [key, def] of Object.entries(defs)) {
    const branches = def.anyOf?.map(resolve);
    if (!branches || !branches.every((b) => b.type === 'object' && b.properties)) continue;
    def.type = 'object';
    const disc = Object.keys(branches[0].properties).find((k) =>
      branches.every((b) => b.properties[k]?.const !== undefined),
    );
    if (!disc) continue;
    unions[key] = disc;
    for (const ref of def.anyOf) {
      const b = defs[name(ref.$ref)];
      if (b.description) b.properties[disc].description = firstSentence(b.description);
    }
  }
  const snippet = () => {
    let n = 0;
    const escape = (t) => t.replace(/[$}\\]/g, (c) => `\\${c}`);
    const stop = (value) => `\${${++n}:${escape(value)}}`;
    const fill = (value) => {
      if (typeof value === 'string') return stop(value);
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value;
      return `^${stop(JSON.stringify(value))}`;
    };
    const choice = (values) => `\${${++n}|${values.join(',')}|}`;
    return { stop, fill, choice };
  };
  // Every option of an object with a default, at that default; a default that is an object of a union (the rank
  // policy) is written out with its own defaults.
  const withDefaults = (def, fixed, s) => {
    const body = { ...fixed };
    for (const [k, p] of Object.entries(def.properties)) {
      if (k in body) continue;
      // A default that applies when other fields are absent (FixedRankPolicy's ratio) applies here: they are.
      const d = p.default ?? def.else?.properties?.[k]?.default;
      if (d === undefined) continue;
      const target = p.$ref && unions[name(p.$ref)];
      if (target && d !== null && typeof d === 'object') {
        const ref = defs[name(p.$ref)].anyOf.find((r) => defs[name(r.$ref)].properties[target].const === d[target]);
        body[k] = withDefaults(defs[name(ref.$ref)], d, s);
      } else body[k] = s.fill(d);
    }
    return body;
  };
  const branchSnippets = (union) =>
    defs[union].anyOf.map((ref) => {
      const b = defs[name(ref.$ref)];
      const tag = b.properties[unions[union]].const;
      return {
        label: tag,
        description: `${b.description ? firstSentence(b.description) : tag} Every option at its default.`,
        body: withDefaults(b, { [unions[union]]: tag }, snippet()),
      };
    });
  defs.MethodConfig.defaultSnippets = branchSnippets('MethodConfig');
  defs.RankPolicy.defaultSnippets = branchSnippets('RankPolicy');
  const task = (label, description, source) => {
    const s = snippet();
    return { label, description, body: { name: s.stop('task'), source: source(s) } };
  };
  defs.TaskConfig.defaultSnippets = [
    task('builtin task', 'A task shipped with Sculpt (`sculpt list` names them).', (s) => ({
      builtin: s.stop('cl5/sentiment'),
    })),
    task('JSON Lines task', 'Training and test files of {"input", "output"} lines, relative to this file.', (s) => ({
      train: s.stop('./data/train.jsonl'),
      test: s.stop('./data/test.jsonl'),
    })),
    task('dataset folder task', 'A task folder in the O-LoRA or TRACE layout, relative to this file.', (s) => ({
      folder: s.stop('./data/task'),
      format: s.choice(['olora', 'trace']),
    })),
  ];
  const s = snippet();
  defs.ExperimentConfig.defaultSnippets = [
    {
      label: 'Sculpt experiment',
      description: 'A builtin task sequence on the shipped base model, SeqFT against adaptive SVD.',
      body: {
        name: s.stop('my-experiment'),
        model: s.stop('builtin:sculpt-base'),
        tasks: [
          { name: s.stop('sentiment'), source: { builtin: s.stop('cl5/sentiment') } },
          { name: s.stop('spam'), source: { builtin: s.stop('cl5/spam') } },
        ],
        methods: [{ method: 'seqft' }, { method: 'adaptive-svd' }],
      },
    },
  ];
}

/** A Markdown reference of the config, from the schema: one table per object type. */
function configReference(schemaText) {
  const schema = JSON.parse(schemaText);
  const defs = schema.definitions;
  const typeOf = (p) => {
    if (p.$ref) return `[${p.$ref.split('/').pop()}](#${p.$ref.split('/').pop().toLowerCase()})`;
    if (p.const !== undefined) return `\`${JSON.stringify(p.const)}\``;
    if (p.enum) return p.enum.map((e) => `\`${JSON.stringify(e)}\``).join(' | ');
    if (p.anyOf) return p.anyOf.map(typeOf).join(' | ');
    if (p.type === 'array') return `${typeOf(p.items ?? {})}[]`;
    return p.type ?? 'any';
  };
  const cell = (t) =>
    String(t ?? '')
      .replace(/\|/g, '\\|')
      .replace(/\n/g, ' ');
  // A default that depends on other fields comes from `else` of an `if: {required: [...]}`, or of an `if` that
  // is any of several such conditions (see FixedRankPolicy).
  const defaultOf = (def, k) => {
    const p = def.properties[k];
    if (p.default !== undefined) return `\`${JSON.stringify(p.default)}\``;
    const d = def.else?.properties?.[k]?.default;
    const required = def.if?.required ?? def.if?.anyOf?.flatMap((b) => b.required ?? []);
    return d !== undefined && required?.length
      ? `\`${JSON.stringify(d)}\` without ${required.map((r) => `\`${r}\``).join(', ')}`
      : '';
  };
  const out = [
    '# Experiment config reference',
    '',
    'Generated from `src/protocol/config.ts` by `npm run schema`; do not edit by hand. Files named `*.sculpt.json` get completion and validation from the same schema in VS Code; `sculpt validate` checks them on the command line.',
    '',
  ];
  for (const [name, def] of Object.entries(defs)) {
    out.push(`## ${name}`, '');
    if (def.description) out.push(def.description, '');
    if (def.properties) {
      out.push('| field | type | default | description |', '|---|---|---|---|');
      for (const [k, p] of Object.entries(def.properties)) {
        const req = def.required?.includes(k) ? ' (required)' : '';
        const bounds = ['minimum', 'exclusiveMinimum', 'maximum', 'exclusiveMaximum', 'minItems', 'minLength']
          .filter((b) => p[b] !== undefined)
          .map((b) => `${b} ${p[b]}`)
          .join(', ');
        out.push(
          `| \`${k}\`${req} | ${cell(typeOf(p))} | ${cell(defaultOf(def, k))} | ${cell(p.description)}${bounds ? ` (${bounds})` : ''} |`,
        );
      }
    } else {
      out.push(`One of: ${typeOf(def)}`);
    }
    out.push('');
  }
  return out.join('\n');
}

const outputs = [];
for (const spec of SCHEMAS) outputs.push({ out: spec.out, text: generateSchema(spec) });
outputs.push({ out: 'docs/CONFIG.md', text: configReference(outputs[0].text) });

let stale = false;
for (const { out, text: fresh } of outputs) {
  const spec = { out };
  if (process.argv.includes('--check')) {
    const current = existsSync(spec.out) ? readFileSync(spec.out, 'utf8') : '';
    if (current !== fresh) {
      console.error(`${spec.out} is stale: run \`npm run schema\` and commit the result.`);
      stale = true;
    }
  } else {
    writeFileSync(spec.out, fresh);
  }
}
process.exit(stale ? 1 : 0);
