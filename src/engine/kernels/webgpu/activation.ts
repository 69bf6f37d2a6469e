/**
 * GELU (tanh approximation, GPT-2's gelu_new) and SiLU (LLaMA's MLP gate) as one elementwise dispatch each way.
 * Written as tfjs ops, gelu_new is eight kernels forward and about a dozen backward per MLP; the math is the
 * same, evaluated per element in fp32.
 */
import { tf } from '../../tf';
import { runKernel, WORKGROUP_INDEX } from './program';

const WG = 256;
const C = Math.sqrt(2 / Math.PI);

export type FusedActivation = 'gelu_new' | 'silu';

// tanh is evaluated on a clamped argument: some WGSL implementations compute it through exp(2x), which
// overflows to inf/inf = NaN past |x| ~ 44, while tanh(±15) is already ±1 in fp32.
const FORWARD: Record<FusedActivation, string> = {
  gelu_new: `let t = tanh(clamp(${C} * (x + 0.044715 * x * x * x), -15.0, 15.0)); result[i] = 0.5 * x * (1.0 + t);`,
  silu: `result[i] = x / (1.0 + exp(-x));`,
};
const BACKWARD: Record<FusedActivation, string> = {
  gelu_new: `let t = tanh(clamp(${C} * (x + 0.044715 * x * x * x), -15.0, 15.0));
      let dt = (1.0 - t * t) * ${C} * (1.0 + 3.0 * 0.044715 * x * x);
      result[i] = dy[i] * (0.5 * (1.0 + t) + 0.5 * x * dt);`,
  silu: `let s = 1.0 / (1.0 + exp(-x)); result[i] = dy[i] * (s + x * s * (1.0 - s));`,
};

function elementwise(key: string, names: string[], inputs: tf.Tensor[], body: string): tf.Tensor {
  const n = inputs[0].size;
  return runKernel(
    {
      key,
      variableNames: names,
      outputShape: inputs[0].shape,
      workgroupSize: [WG, 1, 1],
      workgroups: Math.ceil(n / WG),
      uniforms: 'n : i32,',
      code: `fn main() {
        let i = ${WORKGROUP_INDEX} * ${WG} + i32(localIndex);
        if (i >= uniforms.n) { return; }
        let x = X[i];
        ${body}
      }`,
    },
    inputs,
    [{ type: 'int32', data: [n] }],
  );
}

export function fusedActivation(name: FusedActivation, x: tf.Tensor2D): tf.Tensor2D {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([input]);
    return {
      value: elementwise(`act_${name}_fwd`, ['X'], [input], FORWARD[name]),
      gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) => [
        elementwise(`act_${name}_bwd`, ['X', 'dy'], [saved, dy], BACKWARD[name]),
      ],
    };
  });
  return f(x) as tf.Tensor2D;
}
