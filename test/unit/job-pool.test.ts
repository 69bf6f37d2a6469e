// The thread pool under the native products and the SIMD row kernels (src/engine/linalg/job-pool.ts): every job
// runs once, on the caller or a worker; a job that throws on a worker, or on the caller, fails the batch only after
// the whole batch is done, and the pool keeps working.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jobPool, type JobPool } from '../../src/engine/linalg/job-pool';

const JOBS = 64;

/** Runs `batch` until worker threads have taken part in one (they start in the background), within 5 s. */
async function withWorkers(pool: JobPool, batch: () => void): Promise<void> {
  const until = Date.now() + 5000;
  for (;;) {
    const before = pool.workerJobs;
    batch();
    if (pool.workerJobs > before) return;
    assert.ok(Date.now() < until, 'no job ran on a worker in 5 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('job pool: each job runs once, on the caller or a worker, with what the workers compute', async () => {
  // out[i] = i · i + 1, written by whichever thread takes job i; counts[i] how many times it ran.
  const out = new Int32Array(new SharedArrayBuffer(4 * JOBS));
  const counts = new Int32Array(new SharedArrayBuffer(4 * JOBS));
  const program = `const { out, counts } = workerData;
function job(i) { out[i] = i * i + 1; Atomics.add(counts, i, 1); }`;
  const pool = jobPool(3, program, { out, counts });
  try {
    await withWorkers(pool, () => {
      out.fill(0);
      counts.fill(0);
      pool.run(
        JOBS,
        (i) => {
          out[i] = i * i + 1;
          Atomics.add(counts, i, 1);
        },
        'squares',
      );
    });
    assert.deepEqual([...counts], Array(JOBS).fill(1), 'every job once');
    assert.deepEqual(
      [...out],
      Array.from({ length: JOBS }, (_, i) => i * i + 1),
    );
    assert.equal(pool.threads, 3);
  } finally {
    pool.dispose();
  }
});

test('job pool: a job that throws fails the batch after it is done, on a worker or the caller; the pool goes on', async () => {
  const done = new Int32Array(new SharedArrayBuffer(4 * JOBS));
  // While fail[0] is 1, workers throw on every job they take.
  const fail = new Int32Array(new SharedArrayBuffer(4));
  const program = `const { done, fail } = workerData;
function job(i) { Atomics.add(done, i, 1); if (Atomics.load(fail, 0)) throw new Error('failing'); }`;
  const pool = jobPool(2, program, { done, fail });
  let callerThrows = false;
  const batch = () => {
    done.fill(0);
    pool.run(
      JOBS,
      (i) => {
        Atomics.add(done, i, 1);
        if (callerThrows) throw new RangeError('the caller failed');
      },
      'the jobs',
    );
  };
  try {
    Atomics.store(fail, 0, 1);
    const until = Date.now() + 5000;
    let error: unknown = null;
    while (!error) {
      try {
        batch();
      } catch (e) {
        error = e;
      }
      assert.ok(error || Date.now() < until, 'no worker took a job in 5 s');
      if (!error) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.match(String(error), /the jobs failed on a worker thread/);
    assert.deepEqual([...done], Array(JOBS).fill(1), 'the failing batch still ran every job once');
    // The caller's own error comes through as it is, after the whole batch.
    Atomics.store(fail, 0, 0);
    callerThrows = true;
    assert.throws(batch, RangeError);
    assert.deepEqual([...done], Array(JOBS).fill(1));
    // And the next batch runs whole.
    callerThrows = false;
    batch();
    assert.deepEqual([...done], Array(JOBS).fill(1));
  } finally {
    pool.dispose();
  }
});
