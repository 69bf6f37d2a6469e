// Generates the JSON schemas from the protocol types:
//   schemas/sculpt.schema.json  ExperimentConfig (src/protocol/config.ts), used by VS Code and validation
//   schemas/events.schema.json  SculptEvent (src/protocol/events.ts), the trainer event stream
//   node scripts/gen-schema.mjs          write the schemas
//   node scripts/gen-schema.mjs --check  exit 1 if a committed schema differs from a fresh one
import { createGenerator } from 'ts-json-schema-generator';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';

const SCHEMAS = [
  { out: 'schemas/sculpt.schema.json', path: 'src/protocol/config.ts', type: 'ExperimentConfig', title: 'Sculpt experiment' },
  { out: 'schemas/events.schema.json', path: 'src/protocol/events.ts', type: 'SculptEvent', title: 'Sculpt trainer event' },
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
  schema.$id = `https://sculpt.invalid/${out}`;
  schema.title = title;
  return JSON.stringify(schema, null, 2) + '\n';
}

let stale = false;
for (const spec of SCHEMAS) {
  const fresh = generateSchema(spec);
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
