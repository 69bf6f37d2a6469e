// Generates schemas/sculpt.schema.json from the ExperimentConfig type in src/protocol/config.ts.
//   node scripts/gen-schema.mjs          write the schema
//   node scripts/gen-schema.mjs --check  exit 1 if the committed schema differs from a fresh one
import { createGenerator } from 'ts-json-schema-generator';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';

const OUT = 'schemas/sculpt.schema.json';

export function generateSchema() {
  const schema = createGenerator({
    path: 'src/protocol/config.ts',
    tsconfig: 'tsconfig.json',
    type: 'ExperimentConfig',
    expose: 'export',
    topRef: true,
    jsDoc: 'extended',
    sortProps: false,
    strictTuples: true,
    skipTypeCheck: true,
    additionalProperties: false,
  }).createSchema('ExperimentConfig');
  schema.$id = 'https://sculpt.invalid/schemas/sculpt.schema.json';
  schema.title = 'Sculpt experiment';
  return JSON.stringify(schema, null, 2) + '\n';
}

const fresh = generateSchema();
if (process.argv.includes('--check')) {
  const current = existsSync(OUT) ? readFileSync(OUT, 'utf8') : '';
  if (current !== fresh) {
    console.error(`${OUT} is stale: run \`node scripts/gen-schema.mjs\` and commit the result.`);
    process.exit(1);
  }
} else {
  writeFileSync(OUT, fresh);
}
