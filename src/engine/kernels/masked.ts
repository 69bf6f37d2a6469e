/**
 * The additive attention-mask value. Models build their causal and padding biases from it, and the fused webgpu
 * attention kernel rebuilds the same biases from it, so both paths mask alike.
 */

/** Finite, so a row with every key masked yields a uniform softmax, not NaN. */
export const MASKED = -1e9;
