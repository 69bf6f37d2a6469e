/**
 * The engine a run trains on, from its run-started event's `engine` block, and the few words views show for it
 * ("torch ×2 (fsdp2, bf16)"). The block is read from the event as unknown data: logs from before the PyTorch
 * engine have none, and a log from a newer trainer may hold more than this reader knows.
 * No Node and no vscode here: the extension, the CLI and the dashboard's bundle use it alike.
 */

export interface RunEngine {
  /** `tfjs` or `torch` (another name is kept as given). */
  name: string;
  /** The engine library's version (torch's `__version__`). */
  version?: string;
  /** Worker processes over all machines. */
  world?: number;
  /** `none`, `ddp` or `fsdp2`. */
  shard?: string;
  /** `fp32` or `bf16`. */
  precision?: string;
}

/** The `engine` block of a run-started event, null when it has none or none that can be read. */
export function runEngine(event: unknown): RunEngine | null {
  if (event === null || typeof event !== 'object') return null;
  const block = (event as { engine?: unknown }).engine;
  if (block === null || typeof block !== 'object') return null;
  const b = block as Record<string, unknown>;
  if (typeof b.name !== 'string' || b.name === '') return null;
  const engine: RunEngine = { name: b.name };
  if (typeof b.version === 'string' && b.version) engine.version = b.version;
  if (typeof b.world === 'number' && Number.isInteger(b.world) && b.world >= 1) engine.world = b.world;
  if (typeof b.shard === 'string' && b.shard) engine.shard = b.shard;
  if (typeof b.precision === 'string' && b.precision) engine.precision = b.precision;
  return engine;
}

/**
 * "torch ×2 (fsdp2, bf16)": the name, the world size when above one, and what departs from a plain run (a shard
 * other than none, a precision other than fp32). With `version`, the version follows the name ("torch 2.13.0").
 */
export function engineText(e: RunEngine, opts: { version?: boolean } = {}): string {
  const name = opts.version && e.version ? `${e.name} ${e.version}` : e.name;
  const world = e.world !== undefined && e.world > 1 ? ` ×${e.world}` : '';
  const how = [e.shard && e.shard !== 'none' ? e.shard : '', e.precision && e.precision !== 'fp32' ? e.precision : '']
    .filter(Boolean)
    .join(', ');
  return `${name}${world}${how ? ` (${how})` : ''}`;
}
