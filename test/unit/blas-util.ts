// Shared by the tests of the products, projections and attention on the native BLAS.
import assert from 'node:assert/strict';
import { blasStatus } from '../../src/engine/linalg/blas';

/** Probed when the test file loads, before any test switches SCULPT_BLAS. */
const native = blasStatus().available;

/** Fails a comparison on a machine without the BLAS that provisioning installs, instead of passing it unseen. */
export function requireBlas(): void {
  assert.ok(
    native,
    `no BLAS here (${blasStatus().reason}): run npm run provision, which installs libopenblas0-pthread`,
  );
}
