/**
 * AdamW over every trainable variable in one compute dispatch (webgpu backend).
 *
 * Written as tfjs ops, one AdamW update is about a dozen kernels per variable (GPT-2 small: ~2,000 dispatches
 * per step, each with its own bind group and uniforms). Here the moments live in two flat GPU buffers laid out
 * variable after variable; a step copies each parameter and gradient into flat buffers (buffer-to-buffer copies
 * are encoder commands, not dispatches), runs one shader over all elements, and copies the new parameters into
 * fresh tensors that the variables are assigned (copy-on-write, so clones taken before the step, such as
 * adaptive-svd's snapshot, keep their values).
 *
 * This reaches below tfjs's public API (the backend's device, command encoder and buffers), because a tfjs
 * program has a single output and its bindings are limited to 8 storage buffers.
 * Update rule as torch.optim.AdamW: p <- p (1 - lr wd) - (lr / bc1) m / (sqrt(v / bc2) + eps).
 */
import { tf } from '../../tf';
import { USAGE, bufferOf, encoder, webgpuBackend, type GpuBufferLike } from './internals';

const WORKGROUP = 256;
const MAX_GROUPS_X = 65535;
/** The Hyper struct (9 x 4 bytes), padded to the 16-byte multiple uniform buffers need. */
const HYPER_BYTES = 48;

const SHADER = /* wgsl */ `
// Derived constants (1 - beta, 1 - lr wd, lr / bc1) come from the host in float64, rounded once, as the
// tfjs-op path computes them: 1 - f32(0.999) differs from f32(1 - 0.999) by 1e-5 relative.
struct Hyper { beta1 : f32, beta2 : f32, omb1 : f32, omb2 : f32, eps : f32, decay : f32, stepSize : f32, bc2 : f32, n : u32 };
@group(0) @binding(0) var<storage, read_write> P : array<f32>;
@group(0) @binding(1) var<storage, read> G : array<f32>;
@group(0) @binding(2) var<storage, read_write> M : array<f32>;
@group(0) @binding(3) var<storage, read_write> V : array<f32>;
@group(0) @binding(4) var<uniform> h : Hyper;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid : vec3<u32>, @builtin(local_invocation_index) lid : u32,
        @builtin(num_workgroups) nw : vec3<u32>) {
  let i = (wid.y * nw.x + wid.x) * ${WORKGROUP}u + lid;
  if (i >= h.n) { return; }
  let g = G[i];
  let m = h.beta1 * M[i] + h.omb1 * g;
  let v = h.beta2 * V[i] + h.omb2 * (g * g);
  M[i] = m;
  V[i] = v;
  P[i] = P[i] * h.decay - h.stepSize * (m / (sqrt(v / h.bc2) + h.eps));
}
`;

export interface AdamWHyper {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

interface Slot {
  name: string;
  shape: number[];
  offset: number; // elements
  size: number;
}

/** Flat moments for a fixed list of variables; rebuilt by the caller when that list changes. */
export class FusedAdamW {
  readonly names: string[];
  private readonly slots: Slot[];
  private readonly total: number;
  private readonly P: GpuBufferLike;
  private readonly G: GpuBufferLike;
  private readonly M: GpuBufferLike;
  private readonly V: GpuBufferLike;
  private readonly hyperBuf: GpuBufferLike;
  private readonly pipeline: { getBindGroupLayout(i: number): unknown };
  private readonly bindGroup: unknown;

  constructor(
    vars: { name: string; shape: number[] }[],
    private readonly hyper: AdamWHyper,
  ) {
    const b = webgpuBackend('fused AdamW');
    let offset = 0;
    this.slots = vars.map(({ name, shape }) => {
      const size = shape.reduce((a, c) => a * c, 1);
      const s = { name, shape, offset, size };
      offset += size;
      return s;
    });
    this.names = this.slots.map((s) => s.name);
    this.total = Math.max(offset, 1);
    const bytes = this.total * 4;
    const storage = USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST;
    this.P = b.device.createBuffer({ size: bytes, usage: storage, label: 'adamw.P' });
    this.G = b.device.createBuffer({ size: bytes, usage: storage, label: 'adamw.G' });
    // New buffers are zero-filled by WebGPU: the moments start at 0 as torch's do.
    this.M = b.device.createBuffer({ size: bytes, usage: storage, label: 'adamw.M' });
    this.V = b.device.createBuffer({ size: bytes, usage: storage, label: 'adamw.V' });
    this.hyperBuf = b.device.createBuffer({
      size: HYPER_BYTES,
      usage: USAGE.UNIFORM | USAGE.COPY_DST,
      label: 'adamw.hyper',
    });
    const module = b.device.createShaderModule({ code: SHADER, label: 'sculpt.adamw' });
    this.pipeline = b.device.createComputePipeline({
      layout: 'auto',
      compute: { module, entryPoint: 'main' },
      label: 'sculpt.adamw',
    });
    this.bindGroup = b.device.createBindGroup({
      layout: this.pipeline.getBindGroupLayout(0),
      entries: [this.P, this.G, this.M, this.V, this.hyperBuf].map((buffer, binding) => ({
        binding,
        resource: { buffer },
      })),
    });
  }

  /** Whether this layout serves exactly these variables, in this order. */
  matches(vars: { name: string; shape: number[] }[]): boolean {
    return (
      vars.length === this.slots.length &&
      vars.every((v, i) => v.name === this.slots[i].name && sameShape(v.shape, this.slots[i].shape))
    );
  }

  /** One AdamW step (t counts from 1). `grads` and `vars` are indexed like the layout's names. */
  step(grads: tf.Tensor[], vars: tf.Variable[], lr: number, t: number): void {
    const b = webgpuBackend('fused AdamW');
    const { beta1, beta2, eps, weightDecay } = this.hyper;
    const hyper = new ArrayBuffer(HYPER_BYTES);
    const bc1 = 1 - Math.pow(beta1, t);
    new Float32Array(hyper, 0, 8).set([
      beta1,
      beta2,
      1 - beta1,
      1 - beta2,
      eps,
      1 - lr * weightDecay,
      lr / bc1,
      1 - Math.pow(beta2, t),
    ]);
    new Uint32Array(hyper, 32, 1)[0] = this.total;
    // queue.writeBuffer lands before the next submit, which is the one below that carries this step's commands.
    b.queue.writeBuffer(this.hyperBuf, 0, new Uint8Array(hyper));

    const enc = encoder(b);
    this.slots.forEach((s, i) => {
      enc.copyBufferToBuffer(bufferOf(b, vars[i]), 0, this.P, s.offset * 4, s.size * 4);
      enc.copyBufferToBuffer(bufferOf(b, grads[i]), 0, this.G, s.offset * 4, s.size * 4);
    });
    const pass = enc.beginComputePass();
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    const groups = Math.ceil(this.total / WORKGROUP);
    const x = Math.min(groups, MAX_GROUPS_X);
    pass.dispatchWorkgroups(x, Math.ceil(groups / x), 1);
    pass.end();
    const fresh = this.slots.map((s) => {
      const info = b.makeTensorInfo(s.shape, 'float32');
      b.uploadToGPU(info.dataId);
      enc.copyBufferToBuffer(this.P, s.offset * 4, bufferOf(b, info), 0, s.size * 4);
      return tf.engine().makeTensorFromTensorInfo(info as never);
    });
    // Buffers read by the commands above must outlive them: tfjs defers releasing what the queue owns.
    for (const t of [...grads, ...vars]) b.commandQueueOwnedIds.add(t.dataId);
    b.submitQueue();
    vars.forEach((v, i) => v.assign(fresh[i]));
    tf.dispose(fresh);
  }

  /** The moments as per-variable tensors (new tensors, owned by the caller), keyed `m/<name>` and `v/<name>`. */
  exportMoments(): Map<string, tf.Tensor> {
    const b = webgpuBackend('fused AdamW');
    const out = new Map<string, tf.Tensor>();
    const enc = encoder(b);
    for (const [slot, buf] of [
      ['m', this.M],
      ['v', this.V],
    ] as const) {
      for (const s of this.slots) {
        const info = b.makeTensorInfo(s.shape, 'float32');
        b.uploadToGPU(info.dataId);
        enc.copyBufferToBuffer(buf, s.offset * 4, bufferOf(b, info), 0, s.size * 4);
        out.set(`${slot}/${s.name}`, tf.engine().makeTensorFromTensorInfo(info as never));
      }
    }
    b.submitQueue();
    return out;
  }

  /** Loads moments (e.g. from a checkpoint); missing ones stay as they are. */
  importMoments(slots: Map<string, tf.Tensor>): void {
    const b = webgpuBackend('fused AdamW');
    const enc = encoder(b);
    const used: tf.Tensor[] = [];
    for (const s of this.slots) {
      for (const [slot, buf] of [
        ['m', this.M],
        ['v', this.V],
      ] as const) {
        const t = slots.get(`${slot}/${s.name}`);
        if (!t) continue;
        if (!sameShape(t.shape, s.shape))
          throw new Error(`optimizer state '${slot}/${s.name}' has shape [${t.shape}], the variable [${s.shape}]`);
        enc.copyBufferToBuffer(bufferOf(b, t), 0, buf, s.offset * 4, s.size * 4);
        used.push(t);
      }
    }
    for (const t of used) b.commandQueueOwnedIds.add(t.dataId);
    b.submitQueue();
  }

  dispose(): void {
    for (const buf of [this.P, this.G, this.M, this.V, this.hyperBuf]) buf.destroy();
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
