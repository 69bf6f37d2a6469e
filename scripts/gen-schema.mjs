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
  if (type === 'ExperimentConfig') explainDiscriminators(schema);
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
