/**
 * A watch for "KL_prcp hacking", the collapse the PAPO paper describes (§ "KL_prcp hacking"): the policy
 * learns to make the masked and original views disagree by emitting unrelated tokens. Its signs, in the
 * reference's metric names:
 *
 * - `actor/kl_prcp_loss` (logged as −KL) drops sharply: the perception KL blows up;
 * - `reward/accuracy` (or `reward/overall`) collapses;
 * - `actor/pg_clipfrac_higher` rises;
 * - both entropies (`actor/ori_entropy_loss` or `actor/entropy_loss`, and `actor/aug_entropy_loss`) rise.
 *
 * Each signal compares the latest step with a baseline: the median of the `window` steps before the
 * current streak of alarms (so a slow collapse cannot drag its own baseline along). The KL signal is
 * required; with it, `minSignals` signals in total raise a warning, and a warning that lasts `patience`
 * steps in a row is a collapse. What to do about it (warn, or roll back to the last good checkpoint and
 * lower γ) is the trainer's decision; this module is pure.
 *
 * @since 0.1.0
 */

/**
 * Thresholds of the guard. The defaults were chosen so that ordinary RL noise on the built-in tasks does
 * not trip it, while the paper's collapse (KL up several-fold, reward halved) does.
 *
 * @category configuration
 */
export interface CollapseGuardConfig {
  /** Steps in the baseline. */
  readonly window: number
  /** Steps before the first verdict (the baseline needs history). */
  readonly warmup: number
  /** KL signal: KL_prcp above `klRatio` × its baseline and above `klFloor`. */
  readonly klRatio: number
  readonly klFloor: number
  /** Reward signal: reward below (1 − rewardDrop) × its baseline. */
  readonly rewardDrop: number
  /** Clip signal: `pg_clipfrac_higher` above its baseline + `clipfracRise`. */
  readonly clipfracRise: number
  /** Entropy signal: both entropies above `entropyRatio` × their baselines. */
  readonly entropyRatio: number
  /** Signals (the KL one included) that make a warning. */
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
  window: 8,
  warmup: 5,
  klRatio: 3,
  klFloor: 0.02,
  rewardDrop: 0.4,
  clipfracRise: 0.05,
  entropyRatio: 1.3,
  minSignals: 2,
  patience: 3
}

/**
 * The guard's memory: the steps seen (their signal values) and the current streak of warnings.
 *
 * @category models
 */
export interface CollapseGuardState {
  readonly history: ReadonlyArray<Observation>
  readonly streak: number
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
  readonly augEntropy: number
}

/**
 * The guard's verdict on the latest step.
 *
 * @category models
 */
export interface Verdict {
  readonly level: "ok" | "warning" | "collapse"
  /** The signals that fired, each with the value and its baseline, for the log. */
  readonly signals: ReadonlyArray<{ readonly name: "kl_prcp" | "reward" | "clipfrac" | "entropy"; readonly value: number; readonly baseline: number }>
}

/**
 * A guard that has seen nothing.
 *
 * @category constructors
 */
export const initialState: CollapseGuardState = { history: [], streak: 0 }

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
  entropy: num(metrics, "actor/ori_entropy_loss", "actor/entropy_loss"),
  augEntropy: num(metrics, "actor/aug_entropy_loss")
})

const median = (xs: ReadonlyArray<number>): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

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
  const now = observation(metrics)
  const history = [...state.history, now]
  // Baseline: the window before the current streak (the alarmed steps are excluded).
  const end = history.length - 1 - state.streak
  const base = history.slice(Math.max(0, end - config.window), end)
  if (base.length < config.warmup || !Number.isFinite(now.klPrcp)) {
    return { state: { history, streak: 0 }, verdict: { level: "ok", signals: [] } }
  }
  const b = {
    klPrcp: median(base.map((o) => o.klPrcp)),
    reward: median(base.map((o) => o.reward)),
    clipfrac: median(base.map((o) => o.clipfrac)),
    entropy: median(base.map((o) => o.entropy)),
    augEntropy: median(base.map((o) => o.augEntropy))
  }
  const signals: Array<Verdict["signals"][number]> = []
  if (now.klPrcp > config.klFloor && now.klPrcp > config.klRatio * Math.max(b.klPrcp, 0)) {
    signals.push({ name: "kl_prcp", value: now.klPrcp, baseline: b.klPrcp })
  }
  if (signals.length > 0) {
    if (now.reward < (1 - config.rewardDrop) * b.reward) signals.push({ name: "reward", value: now.reward, baseline: b.reward })
    if (now.clipfrac > b.clipfrac + config.clipfracRise) signals.push({ name: "clipfrac", value: now.clipfrac, baseline: b.clipfrac })
    const entropyUp = now.entropy > config.entropyRatio * b.entropy &&
      (!Number.isFinite(now.augEntropy) || now.augEntropy > config.entropyRatio * b.augEntropy)
    if (entropyUp) signals.push({ name: "entropy", value: now.entropy, baseline: b.entropy })
  }
  const warning = signals.length >= config.minSignals
  const streak = warning ? state.streak + 1 : 0
  // Keep only what the next baseline can need.
  const kept = history.slice(-(config.window + streak + 1))
  return {
    state: { history: kept, streak },
    verdict: { level: !warning ? "ok" : streak >= config.patience ? "collapse" : "warning", signals }
  }
}
