/**
 * Linear algebra for constrained full fine-tuning: thin SVD (LAPACK when available, TypeScript otherwise),
 * batched over the cores for a task boundary, and the projections that keep updates out of each weight's
 * protected singular subspace.
 */
export { svd, svdBatch, resolveSvdPath } from './svd';
export { lapackStatus, resetLapackProbe, type LapackStatus } from './lapack';
export {
  protectedSubspace,
  protectedSubspaces,
  projectGradient,
  projectTwoSided,
  projectPaper,
  projectTwoSidedMany,
  type TwoSidedItem,
  type ProtectedSubspace,
  type ProjectionMode,
  type WeightInput,
} from './projection';
export type { DenseMatrix, Svd, SvdOptions, SvdBatchOptions, SvdPath } from './types';
