/**
 * Console output of a run. On a terminal (`bar`), one line redrawn after every step, with ETA; in a log
 * (`lines`: standard output is not a terminal), a line at most every `every` milliseconds (5 s) and one
 * at the end, so a 600-step run does not print 600 lines; `quiet` prints nothing.
 *
 * @since 0.1.0
 */

/**
 * A run's console output.
 *
 * @example
 * const progress: Progress = make("lines", 100, "train")
 * progress.update(1, "acc 0.500") // prints "train step 1/100 (0.3s, ETA 29.7s) acc 0.500"
 *
 * @category models
 */
export interface Progress {
  /** After step `step`: `summary` is the step's headline metrics. */
  readonly update: (step: number, summary: string) => void
  /** A line of its own (a warning, an evaluation). */
  readonly log: (line: string) => void
  /** The loop is over: the last step's line if not printed yet, and the bar's newline. */
  readonly done: () => void
}

/**
 * Seconds as `4.2s`, `3m5s` or `1h12m`.
 *
 * @example
 * formatSeconds(185) // => "3m5s"
 *
 * @category constructors
 */
export const formatSeconds = (s: number): string =>
  s >= 3600 ? `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m` : s >= 60 ? `${Math.floor(s / 60)}m${Math.round(s % 60)}s` : `${s.toFixed(1)}s`

/**
 * Console output for `total` steps; `auto` is `bar` on a terminal and `lines` otherwise. `write` and
 * `now` default to standard output and `performance.now()`.
 *
 * @example
 * const out: Array<string> = []
 * let t = 0
 * const p = make("lines", 3, "sft", { write: (s) => out.push(s), now: () => t, every: 5000 })
 * p.update(1, "loss 1.0"); t = 1000; p.update(2, "loss 0.9"); p.done()
 * out.length // => 2 (step 1, then step 2 at the end)
 *
 * @category constructors
 */
export const make = (
  mode: "auto" | "bar" | "lines" | "quiet",
  total: number,
  label: string,
  options: { readonly write?: (text: string) => void; readonly now?: () => number; readonly every?: number; readonly isTTY?: boolean } = {}
): Progress => {
  const write = options.write ?? ((text: string) => void process.stdout.write(text))
  const now = options.now ?? (() => performance.now())
  const every = options.every ?? 5000
  const resolved = mode === "auto" ? ((options.isTTY ?? process.stdout.isTTY) ? "bar" : "lines") : mode
  const started = now()
  let firstStep: number | null = null
  let printedAt: number | null = null
  let pending: string | null = null
  const line = (step: number, summary: string) => {
    firstStep ??= step - 1
    const done = step - firstStep
    const elapsed = (now() - started) / 1000
    const eta = done > 0 ? (elapsed / done) * (total - step) : 0
    if (resolved === "bar") {
      const width = 24
      const filled = Math.round((step / total) * width)
      return `\r${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${step}/${total} ETA ${formatSeconds(eta)} ${summary}\x1b[K`
    }
    return `${label} step ${step}/${total} (${formatSeconds(elapsed)}, ETA ${formatSeconds(eta)}) ${summary}\n`
  }
  return {
    update: (step, summary) => {
      if (resolved === "quiet") return
      const text = line(step, summary)
      if (resolved === "bar" || printedAt === null || now() - printedAt >= every) {
        write(text)
        printedAt = now()
        pending = null
      } else pending = text
    },
    log: (text) => {
      if (resolved !== "quiet") write(resolved === "bar" ? `\r\x1b[K${text}\n` : `${text}\n`)
    },
    done: () => {
      if (pending !== null) write(pending)
      pending = null
      if (resolved === "bar") write("\n")
    }
  }
}
