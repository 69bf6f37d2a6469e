/**
 * The config after validation (config-validate.ts): every field with a `@default` is present, so these types
 * make those fields required and the engine reads them without fallbacks. What stays optional has no default
 * by design; test/unit/config.test.ts checks these lists against the schema.
 */
import type {
  AdaptiveRankPolicy,
  AdaptiveSvdConfig,
  AuthorsScheduleRankPolicy,
  CheckpointPolicy,
  CompareConfig,
  DivergenceConfig,
  EnergyRankPolicy,
  EvalConfig,
  ExperimentConfig,
  FixedRankPolicy,
  MethodConfig,
  ScheduleRankPolicy,
  TaskConfig,
  TorchConfig,
  TrainingConfig,
} from './config';

/** `T` with every field required except the `Optional` ones. */
type Defaulted<T, Optional extends keyof T = never> = Required<Omit<T, Optional>> & Pick<T, Optional>;

/** Method options without a default: the report label (the method name when absent) and the lr override. */
export type MethodOptionalField = 'label' | 'lr';

/**
 * A fixed policy holds one of k, effectiveRank and the ratio (0.5 when none was given); rankPattern stays
 * optional.
 */
export type ResolvedFixedRankPolicy =
  | (FixedRankPolicy & { k: number; ratio?: undefined; effectiveRank?: undefined })
  | (FixedRankPolicy & { effectiveRank: number; ratio?: undefined; k?: undefined })
  | (FixedRankPolicy & { ratio: number; k?: undefined; effectiveRank?: undefined });

export type ResolvedRankPolicy =
  | Required<AdaptiveRankPolicy>
  | ResolvedFixedRankPolicy
  | Required<ScheduleRankPolicy>
  | Required<AuthorsScheduleRankPolicy>
  | Required<EnergyRankPolicy>;

export type ResolvedAdaptiveSvdConfig = Omit<Defaulted<AdaptiveSvdConfig, MethodOptionalField>, 'rank'> & {
  rank: ResolvedRankPolicy;
};

/** A method entry with its options filled in, for each method of the union. */
type ResolvedEntry<M extends MethodConfig> = M extends AdaptiveSvdConfig
  ? ResolvedAdaptiveSvdConfig
  : Defaulted<M, MethodOptionalField>;

export type ResolvedMethodConfig = ResolvedEntry<MethodConfig>;

/** The resolved entry of the method `M` names (`ResolvedMethod<EwcConfig>`, or of an entry's literal type). */
export type ResolvedMethod<M extends MethodConfig> = Extract<ResolvedMethodConfig, { method: M['method'] }>;

export type ResolvedTask = Defaulted<TaskConfig, 'labels' | 'trainLimit' | 'testLimit'>;

/** Training settings with the divergence checks' settings filled in too. */
export type ResolvedTraining = Omit<Required<TrainingConfig>, 'divergence'> & {
  divergence: Required<DivergenceConfig>;
};

/** The torch section: `python` (found at launch when absent) and `rdzvEndpoint` (one machine) have no default. */
export type ResolvedTorch = Defaulted<TorchConfig, 'python' | 'rdzvEndpoint'>;

/** A config after validation: defaults filled in, paths absolute. */
export type ResolvedConfig = Omit<
  Defaulted<ExperimentConfig, '$schema' | 'orders' | 'seeds' | 'tokenizer'>,
  'tasks' | 'methods' | 'training' | 'eval' | 'checkpoint' | 'compare' | 'torch'
> & {
  torch: ResolvedTorch;
  compare: CompareConfig;
  tasks: ResolvedTask[];
  methods: ResolvedMethodConfig[];
  training: ResolvedTraining;
  eval: Required<EvalConfig>;
  checkpoint: Required<CheckpointPolicy>;
};
