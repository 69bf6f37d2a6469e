// `npm run demo`: the default experiment (CL-5 offline on the shipped base model, seqft vs adaptive-svd).
// The benchmark suite, the base model and the runner are not in place yet, so this says so and fails
// rather than printing anything that could be mistaken for a result.
console.error(
  'sculpt demo: not available yet. The demo needs the shipped base model, the CL-5 offline task files and the\n' +
    'experiment runner, which are still being built. Nothing was run.',
);
process.exit(1);
