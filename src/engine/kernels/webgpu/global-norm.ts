/**
 * The global L2 norm of many tensors (gradient clipping) in two dispatches on webgpu.
 *
 * As tfjs ops the norm is a square and a full reduction per gradient plus an add tree: about 300 dispatches
 * for GPT-2 small, most of them reductions of a large tensor to one number, which tfjs runs in several passes.
 * Here the tensors are copied back to back into one flat buffer (encoder copies, not dispatches); pass 1 has
 * every workgroup accumulate squares over a strided share into a partial sum, pass 2 adds the partials and
 * writes the norm into a fresh one-element tensor. Nothing is read back.
 */
import { tf } from '../../tf';
import { USAGE, bufferOf, encoder, webgpuBackend, type GpuBufferLike } from './internals';

const WORKGROUP = 256;
/** Pass-1 workgroups: enough to fill a large GPU, few enough for one workgroup to sum the partials. */
const PARTIALS = 1024;

const PASS1 = /* wgsl */ `
@group(0) @binding(0) var<storage, read> X : array<f32>;
@group(0) @binding(1) var<storage, read_write> partial : array<f32>;
@group(0) @binding(2) var<uniform> n : u32;
var<workgroup> acc : array<f32, ${WORKGROUP}>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid : vec3<u32>, @builtin(local_invocation_index) lid : u32) {
  var s = 0.0;
  // Consecutive threads read consecutive elements (coalesced); each workgroup strides over the whole array.
  for (var i = wid.x * ${WORKGROUP}u + lid; i < n; i += ${PARTIALS * WORKGROUP}u) {
    let x = X[i];
    s += x * x;
  }
  acc[lid] = s;
  workgroupBarrier();
  for (var k = ${WORKGROUP / 2}u; k > 0u; k >>= 1u) {
    if (lid < k) { acc[lid] += acc[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) { partial[wid.x] = acc[0]; }
}
`;

const PASS2 = /* wgsl */ `
@group(0) @binding(0) var<storage, read> partial : array<f32>;
@group(0) @binding(1) var<storage, read_write> result : array<f32>;
var<workgroup> acc : array<f32, ${WORKGROUP}>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(local_invocation_index) lid : u32) {
  var s = 0.0;
  for (var i = lid; i < ${PARTIALS}u; i += ${WORKGROUP}u) { s += partial[i]; }
  acc[lid] = s;
  workgroupBarrier();
  for (var k = ${WORKGROUP / 2}u; k > 0u; k >>= 1u) {
    if (lid < k) { acc[lid] += acc[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) { result[0] = sqrt(acc[0]); }
}
`;

interface Pipelines {
  pass1: { getBindGroupLayout(i: number): unknown };
  pass2: { getBindGroupLayout(i: number): unknown };
  partials: GpuBufferLike;
  count: GpuBufferLike;
}

let pipelines: Pipelines | null = null;
let device: unknown = null;
/** The flat staging buffer, grown on demand and kept (the same size is needed every step). */
let flat: { buffer: GpuBufferLike; elements: number } | null = null;

/** sqrt(sum of squares of every element of `tensors`), as a scalar tensor; the inputs are not disposed. */
export function fusedGlobalNorm(tensors: readonly tf.Tensor[]): tf.Scalar {
  const b = webgpuBackend('fused global norm');
  if (device !== b.device) {
    // A new device (backend re-created) invalidates every cached GPU object.
    device = b.device;
    flat = null;
    const make = (code: string, label: string) =>
      b.device.createComputePipeline({
        layout: 'auto',
        compute: { module: b.device.createShaderModule({ code, label }), entryPoint: 'main' },
        label,
      });
    pipelines = {
      pass1: make(PASS1, 'sculpt.global_norm.1'),
      pass2: make(PASS2, 'sculpt.global_norm.2'),
      partials: b.device.createBuffer({
        size: PARTIALS * 4,
        usage: USAGE.STORAGE,
        label: 'sculpt.global_norm.partials',
      }),
      count: b.device.createBuffer({ size: 16, usage: USAGE.UNIFORM | USAGE.COPY_DST, label: 'sculpt.global_norm.n' }),
    };
  }
  const p = pipelines!;
  const total = tensors.reduce((a, t) => a + t.size, 0);
  if (!flat || flat.elements < total) {
    flat?.buffer.destroy();
    flat = {
      buffer: b.device.createBuffer({
        size: Math.max(total, 1) * 4,
        usage: USAGE.STORAGE | USAGE.COPY_DST,
        label: 'sculpt.global_norm.flat',
      }),
      elements: total,
    };
  }
  const out = b.makeTensorInfo([], 'float32');
  b.uploadToGPU(out.dataId);
  const outBuf = bufferOf(b, out);
  // Written before the submit below, which carries this norm's commands.
  b.queue.writeBuffer(p.count, 0, new Uint32Array([total, 0, 0, 0]));
  const enc = encoder(b);
  let offset = 0;
  for (const t of tensors) {
    if (t.size === 0) continue;
    enc.copyBufferToBuffer(bufferOf(b, t), 0, flat.buffer, offset * 4, t.size * 4);
    offset += t.size;
  }
  const pass = enc.beginComputePass();
  pass.setPipeline(p.pass1);
  pass.setBindGroup(
    0,
    b.device.createBindGroup({
      layout: p.pass1.getBindGroupLayout(0),
      entries: [flat.buffer, p.partials, p.count].map((buffer, binding) => ({ binding, resource: { buffer } })),
    }),
  );
  pass.dispatchWorkgroups(PARTIALS, 1, 1);
  pass.setPipeline(p.pass2);
  pass.setBindGroup(
    0,
    b.device.createBindGroup({
      layout: p.pass2.getBindGroupLayout(0),
      entries: [p.partials, outBuf].map((buffer, binding) => ({ binding, resource: { buffer } })),
    }),
  );
  pass.dispatchWorkgroups(1, 1, 1);
  pass.end();
  for (const t of tensors) b.commandQueueOwnedIds.add(t.dataId);
  b.submitQueue();
  return tf.engine().makeTensorFromTensorInfo(out as never) as tf.Scalar;
}
