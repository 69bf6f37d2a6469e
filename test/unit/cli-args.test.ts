/**
 * The command line's one argument parser (src/cli/args.ts): an option a command does not take is refused naming
 * it, the command's options and the likely intended one; a value option without its value is refused rather than
 * the next option taken for it; options that exclude one another are refused together.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCommandArgs, optionValue, type CommandSpec } from '../../src/cli/args';
import { UsageError } from '../../src/protocol/errors';

const REPORT: CommandSpec = {
  options: { '--csv': null, '--html': null, '--json': null, '--baseline': '<method>', '--out': '<file>' },
  exclusive: [['--csv', '--html', '--json']],
};

const refused = (argv: string[], message: RegExp, spec: CommandSpec = REPORT) =>
  assert.throws(
    () => parseCommandArgs('report', argv, spec),
    (e: unknown) => e instanceof UsageError && message.test(e.message),
    argv.join(' '),
  );

test('args: positionals, flags and values, in either order and as --opt=value', () => {
  const p = parseCommandArgs('report', ['runs/a', '--csv', '--out', 'r.csv', 'runs/b', '--baseline=seqft'], REPORT);
  assert.deepEqual(p.positional, ['runs/a', 'runs/b']);
  assert.equal(p.flags.get('--csv'), true);
  assert.equal(optionValue(p, '--out'), 'r.csv');
  assert.equal(optionValue(p, '--baseline'), 'seqft');
  assert.equal(p.help, false);
  // After `--` everything is positional, and a value may start with a digit's minus sign.
  const q = parseCommandArgs('report', ['--out', '-1', '--', '--csv'], REPORT);
  assert.deepEqual(q.positional, ['--csv']);
  assert.equal(optionValue(q, '--out'), '-1');
  assert.equal(parseCommandArgs('report', ['-h'], REPORT).help, true);
  assert.equal(parseCommandArgs('report', ['--help'], REPORT).help, true);
});

test('args: an unknown option names itself, the nearest known one and the command options', () => {
  refused(
    ['runs/a', '--htm'],
    /^unknown option '--htm' \(did you mean '--html'\?\); report's options are --csv, --html, --json, --baseline <method>, --out <file>$/,
  );
  refused(['--jsn'], /unknown option '--jsn' \(did you mean '--json'\?\)/);
  refused(['--bogus'], /^unknown option '--bogus'; report's options are/);
  refused(['--out=x', '-x'], /^unknown option '-x'; /);
  refused(['--x'], /^unknown option '--x'; report takes no options$/, { options: {} });
});

test('args: a value option needs its value; a flag takes none; a value given twice is refused', () => {
  refused(['--out'], /^--out needs a value \(--out <file>\)$/);
  refused(['--out', '--json'], /^--out needs a value \(--out <file>\), got the option '--json'$/);
  refused(['--baseline='], /--baseline needs a value .*got an empty one/);
  refused(['--json=yes'], /^--json takes no value, got '--json=yes'$/);
  refused(['--out', 'a.md', '--out', 'b.md'], /--out is given twice \('a\.md' and 'b\.md'\)/);
});

test('args: report formats exclude one another', () => {
  refused(['--csv', '--html'], /^--csv and --html cannot go together: give one of --csv, --html, --json$/);
  refused(['--json', '--csv'], /--csv and --json cannot go together/);
  assert.equal(parseCommandArgs('report', ['--html', '--html'], REPORT).flags.get('--html'), true);
});
