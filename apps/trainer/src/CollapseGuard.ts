/**
 * A watch for "KL_prcp hacking", the collapse the PAPO paper describes (§ "KL_prcp hacking"): the policy
 * learns to make the masked and original views disagree by emitting unrelated tokens. Its signs, in the
 * reference's metric names:
 *
 * - `actor/kl_prcp_loss` (logged as −KL) drops sharply: the perception KL blows up;
 * - `reward/accuracy` (or `reward/overall`) collapses;
 * - `actor/pg_clipfrac_higher` rises;
 * - the entropy (`actor/ori_entropy_loss`, else `actor/entropy_loss`) rises.
 *
 * Single steps are noisy (16 prompts), so each signal reads the running median of the last `recent` steps
 * and compares it with the best level seen so far in the run: the peak of the reward, the floor of the
 * KL, the clip fraction and the entropy. A collapse is a drawdown from those levels, however slowly it
 * comes (a moving baseline would follow a slow collapse down). `minSignals` signals at once make a
 * warning, `patience` warnings in a row a collapse; alarmed steps do not move the reference levels. No
 * single signal is required: on this repo's small model the γ = 0.5 collapse showed the reward and entropy
 * signs while KL_prcp stayed flat and then fell to 0 (the policy stopped depending on the image at all).
 * What to do about it (warn, or roll back and lower γ) is the trainer's decision; this module is pure.
 *
 * @since 0.1.0
 */

/**
 * Thresholds of the guard. The defaults were tuned on this repo's runs: no alarm in six healthy GRPO,
 * PAPO-G (γ = 0.02, 0.04) runs of 60–150 steps, and a collapse about ten steps into the γ = 0.5 run's fall.
 *
 * @category configuration
 */
export interface CollapseGuardConfig {
  /** Steps in the running median each signal reads. */
  readonly recent: number
  /** Full medians to see before the first verdict. */
  readonly warmup: number
  /** KL signal: KL_prcp above `klRatio` × its floor so far and above `klFloor`. */
  readonly klRatio: number
  readonly klFloor: number
  /** Reward signal: reward below (1 − rewardDrop) × its peak so far. */
  readonly rewardDrop: number
  /** Clip signal: `pg_clipfrac_higher` above its floor so far + `clipfracRise`. */
  readonly clipfracRise: number
  /** Entropy signal: entropy above `entropyRatio` × its floor so far. */
  readonly entropyRatio: number
  /** Signals at once that make a warning. */
  readonly minSignals: number
  /** Consecutive warnings that make a collapse. */
  readonly patience: number
}

/**
 * The defaults (see {@link CollapseGuardConfig}).
 *
 * @category configuration
 */
export const defaultCollapseGuardConfig: CollapseGuardConfig = {
  recent: 10,
  warmup: 5,
  klRatio: 3,
  klFloor: 0.02,
  rewardDrop: 0.5,
  clipfracRise: 0.05,
  entropyRatio: 1.5,
  minSignals: 2,
  patience: 3
}

/**
 * The values the guard reads from one step's metrics (NaN where a metric is absent).
 *
 * @category models
 */
export interface Observation {
  readonly klPrcp: number
  readonly reward: number
  readonly clipfrac: number
  readonly entropy: number
}

/**
 * The guard's memory: the last steps, the reference levels, and the current streak of warnings.
 *
 * @category models
 */
export interface CollapseGuardState {
  readonly recent: ReadonlyArray<Observation>
  /** Full medians seen. */
  readonly seen: number
  /** Peak reward; floors of KL, clip fraction and entropy (NaN until seen). */
  readonly levels: Observation
  readonly streak: number
}

/**
 * The guard's verdict on the latest step.
 *
 * @category models
 */
export interface Verdict {
  readonly level: "ok" | "warning" | "collapse"
  /** The signals that fired, each with the running median and the reference level, for the log. */
  readonly signals: ReadonlyArray<{ readonly name: "kl_prcp" | "reward" | "clipfrac" | "entropy"; readonly value: number; readonly baseline: number }>
}

/**
 * A guard that has seen nothing.
 *
 * @category constructors
 */
export const initialState: CollapseGuardState = {
  recent: [],
  seen: 0,
  levels: { klPrcp: NaN, reward: NaN, clipfrac: NaN, entropy: NaN },
  streak: 0
}

const num = (m: Readonly<Record<string, unknown>>, ...keys: ReadonlyArray<string>): number => {
  for (const k of keys) {
    const v = m[k]
    if (typeof v === "number" && Number.isFinite(v)) return v
  }
  return NaN
}

/**
 * Reads the guard's inputs from a step's metrics under the reference's names.
 *
 * @category constructors
 */
export const observation = (metrics: Readonly<Record<string, unknown>>): Observation => ({
  klPrcp: -num(metrics, "actor/kl_prcp_loss"),
  reward: num(metrics, "reward/accuracy", "reward/overall"),
  clipfrac: num(metrics, "actor/pg_clipfrac_higher"),
  entropy: num(metrics, "actor/ori_entropy_loss", "actor/entropy_loss")
})

const median = (xs: ReadonlyArray<number>): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** max/min that keep the other value while one is NaN. */
const higher = (a: number, b: number) => (Number.isNaN(a) ? b : Number.isNaN(b) ? a : Math.max(a, b))
const lower = (a: number, b: number) => (Number.isNaN(a) ? b : Number.isNaN(b) ? a : Math.min(a, b))

/**
 * Feeds one step's metrics to the guard.
 *
 * @example
 * let s = initialState
 * for (const m of steps) { const r = observe(s, m); s = r.state; if (r.verdict.level === "collapse") rollBack() }
 *
 * @category math
 */
export const observe = (
  state: CollapseGuardState,
  metrics: Readonly<Record<string, unknown>>,
  config: CollapseGuardConfig = defaultCollapseGuardConfig
): { readonly state: CollapseGuardState; readonly verdict: Verdict } => {
  const recent = [...state.recent, observation(metrics)].slice(-config.recent)
  if (recent.length < config.recent) return { state: { ...state, recent }, verdict: { level: "ok", signals: [] } }
  const now: Observation = {
    klPrcp: median(recent.map((o) => o.klPrcp)),
    reward: median(recent.map((o) => o.reward)),
    clipfrac: median(recent.map((o) => o.clipfrac)),
    entropy: median(recent.map((o) => o.entropy))
  }
  const ref = state.levels
  const signals: Array<Verdict["signals"][number]> = []
  if (state.seen >= config.warmup) {
    if (now.klPrcp > config.klFloor && now.klPrcp > config.klRatio * Math.max(ref.klPrcp, 0)) {
      signals.push({ name: "kl_prcp", value: now.klPrcp, baseline: ref.klPrcp })
    }
    if (now.reward < (1 - config.rewardDrop) * ref.reward) signals.push({ name: "reward", value: now.reward, baseline: ref.reward })
    if (now.clipfrac > ref.clipfrac + config.clipfracRise) signals.push({ name: "clipfrac", value: now.clipfrac, baseline: ref.clipfrac })
    if (now.entropy > config.entropyRatio * ref.entropy) signals.push({ name: "entropy", value: now.entropy, baseline: ref.entropy })
  }
  const warning = signals.length >= config.minSignals
  const streak = warning ? state.streak + 1 : 0
  // Alarmed steps do not move the reference levels: a collapse cannot lower its own bar.
  const levels = warning ? ref : {
    klPrcp: lower(ref.klPrcp, now.klPrcp),
    reward: higher(ref.reward, now.reward),
    clipfrac: lower(ref.clipfrac, now.clipfrac),
    entropy: lower(ref.entropy, now.entropy)
  }
  return {
    state: { recent, seen: state.seen + 1, levels, streak },
    verdict: { level: !warning ? "ok" : streak >= config.patience ? "collapse" : "warning", signals }
  }
}
