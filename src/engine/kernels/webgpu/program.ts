/**
 * Running our own WGSL compute shaders through the tfjs webgpu backend's program API.
 *
 * The backend wraps a program's `getUserCode()` in a prelude it generates: the output is the storage buffer
 * `result` (read_write), each input is a read-only storage buffer named after `variableNames`, and the uniform
 * struct `uniforms` carries the shapes plus the fields a program declares in `uniforms` (WGSL struct members,
 * filled in declaration order from the values passed at dispatch). With a 2-D dispatch layout the prelude calls
 * `main()` with the private globals `localId`, `localIndex`, `workgroupId`, `numWorkgroups` set. More than 65535
 * workgroups are folded into x·y here (the backend refuses to fold a 2-D layout), so a kernel takes its linear
 * workgroup index from `WORKGROUP_INDEX` and ignores indices at or past its own count.
 *
 * A program has one output. Kernels that produce several tensors run one program each, or pack them.
 */
import { tf } from '../../tf';

export type UniformType = 'float32' | 'int32' | 'uint32';

export interface Uniform {
  type: UniformType;
  data: number[];
}

/** What a kernel declares: its WGSL body and how it is dispatched. */
export interface KernelProgram {
  /** Unique per WGSL text variant: the pipeline cache is keyed on it (plus shapes and dtypes). */
  key: string;
  variableNames: string[];
  outputShape: number[];
  outputDtype?: 'float32' | 'int32';
  workgroupSize: [number, number, number];
  /** Workgroups in all (folded into x·y past the per-dimension limit: the last few may be surplus). */
  workgroups: number;
  /** WGSL struct members appended to the uniforms, e.g. `rows : i32, cols : i32, eps : f32,`. */
  uniforms?: string;
  /** WGSL defining `fn main()`. */
  code: string;
}

/** The linear index of this workgroup, valid however the backend folded the dispatch. */
export const WORKGROUP_INDEX =
  'i32(workgroupId.z * numWorkgroups.x * numWorkgroups.y + workgroupId.y * numWorkgroups.x + workgroupId.x)';

interface TensorInfoLike {
  dataId: object;
  shape: number[];
  dtype: string;
}

interface WebGpuBackendLike {
  runWebGPUProgram(program: unknown, inputs: TensorInfoLike[], dtype: string, uniforms?: Uniform[]): TensorInfoLike;
}

/** WebGPU's default maxComputeWorkgroupsPerDimension. */
const MAX_PER_DIMENSION = 65535;

function fold(workgroups: number): [number, number, number] {
  if (workgroups <= MAX_PER_DIMENSION) return [workgroups, 1, 1];
  const y = Math.ceil(workgroups / MAX_PER_DIMENSION);
  return [Math.ceil(workgroups / y), y, 1];
}

function isWebGpu(): boolean {
  return tf.getBackend() === 'webgpu';
}

/** Dispatches `program` over `inputs` and returns its output as a tensor owned by the caller. */
export function runKernel(program: KernelProgram, inputs: tf.Tensor[], uniforms: Uniform[] = []): tf.Tensor {
  if (!isWebGpu()) throw new Error(`kernel '${program.key}' needs the webgpu backend (active: ${tf.getBackend()})`);
  if (inputs.length !== program.variableNames.length) {
    throw new Error(
      `kernel '${program.key}': ${inputs.length} inputs for variables ${program.variableNames.join(', ')}`,
    );
  }
  const backend = tf.backend() as unknown as WebGpuBackendLike;
  const spec = {
    shaderKey: `sculpt_${program.key}`,
    variableNames: program.variableNames,
    outputShape: program.outputShape,
    workgroupSize: program.workgroupSize,
    // A non-empty y layout makes the prelude call `main()` without a flat index (we index by workgroup).
    dispatchLayout: { x: [0], y: [1] },
    dispatch: fold(program.workgroups),
    uniforms: program.uniforms,
    getUserCode: () => program.code,
  };
  const info = backend.runWebGPUProgram(spec, inputs, program.outputDtype ?? 'float32', uniforms);
  return tf.engine().makeTensorFromTensorInfo(info as never);
}
