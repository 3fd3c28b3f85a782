/**
 * Stages 1–4 of a step, and what evaluation samples with: the prompts of the data order (sample), one masked
 * copy of each prompt's image (mask), G responses per prompt from the policy (roll out), and their grades
 * (reward). Rows are prompt-major: row `b·G + g` is sample g of prompt b.
 *
 * @since 0.1.0
 */
import { Masking } from "@papo/masking"
import { Tokenizer } from "@papo/model"
import type { Mt19937, Xoshiro128 } from "@papo/random"
import { Effect } from "effect"
import type { Config } from "./Config.js"
import * as Dataset from "./Dataset.js"
import type { Example } from "./Example.js"
import * as Session from "./Session.js"
import { type Grade, Verifier } from "./Verifier.js"

/**
 * Rollouts of a set of B prompts, N = B·G rows.
 *
 * @category models
 */
export interface Rollouts {
  /** [B] */
  readonly examples: ReadonlyArray<Example>
  /** [B] × [H·W·C]: one masked image per prompt, shared by its G rows. */
  readonly maskedImages: ReadonlyArray<Float32Array>
  /** images [N, H, W, C], promptIds [N, Tp], responseIds and responseMask [N, T]. */
  readonly rows: Session.Rows
  /** [N] response tokens (EOS included). */
  readonly lengths: Int32Array
  /** [N] */
  readonly responses: ReadonlyArray<string>
  /** [N] */
  readonly grades: ReadonlyArray<Grade>
  /** [N] group id of each row. */
  readonly uids: ReadonlyArray<string>
}

/**
 * The masking config of a run (the reference's random patch blackening with the configured p and patch).
 *
 * @example
 * maskingConfig(config).prob // => config.algorithm.maskRatio
 *
 * @category configuration
 */
export const maskingConfig = (config: Config): Masking.MaskingConfig =>
  Masking.makeConfig({ prob: config.algorithm.maskRatio, patchSize: config.algorithm.maskPatchSize })

/**
 * Stage 1 (sample): the next `count` prompts of the seeded training order, from `cursor`.
 *
 * @example
 * samplePrompts(train, 0, 16, 1).length // => 16
 *
 * @category math
 */
export const samplePrompts = (train: ReadonlyArray<Example>, cursor: number, count: number, seed: number): Array<Example> =>
  Dataset.batchAt(train.length, count, cursor, seed).map((i) => train[i]!)

/**
 * Stage 2 (mask): one masked copy of each prompt's image, [B] × [H·W·C], from the prompts' stacked images
 * `[B, H, W, C]` (drawn before the prompts are repeated G times).
 *
 * @example
 * maskPrompts(session, Session.stackImages(examples.map((e) => e.image.data)), maskingConfig(config), rng).length // => examples.length
 *
 * @category math
 */
export const maskPrompts = (
  session: Session.Session,
  images: Float32Array,
  config: Masking.MaskingConfig,
  rng: Mt19937
): Array<Float32Array> => {
  const c = session.modelConfig
  const size = c.imageHeight * c.imageWidth * c.imageChannels
  const b = images.length / size
  const { image } = Masking.maskBatch({ data: images, shape: [b, c.imageHeight, c.imageWidth, c.imageChannels] }, config, rng)
  return Array.from({ length: b }, (_, i) => image.data.slice(i * size, (i + 1) * size))
}

/**
 * Sampling settings of a rollout: G (`n`) responses per prompt at a temperature and top-p.
 *
 * @category configuration
 */
export interface RolloutOptions {
  readonly n: number
  readonly temperature: number
  readonly topP: number
}

/**
 * Stage 3 (roll out): G responses per prompt for the images `[B, H, W, C]` (the originals in training; blank
 * or masked ones in evaluation's probes), on both threads with a worker replica. Returns the rows
 * (N = B·G), the response lengths and the decoded responses.
 *
 * @example
 * const r = yield* rollOut(session, config, examples, Session.stackImages(examples.map((e) => e.image.data)), { n: 5, temperature: 1, topP: 1 }, rng)
 * r.rows.n // => examples.length * 5
 *
 * @category math
 */
export const rollOut = (
  session: Session.Session,
  config: Config,
  examples: ReadonlyArray<Example>,
  images: Float32Array,
  options: RolloutOptions,
  rng: Xoshiro128
): Effect.Effect<{ readonly rows: Session.Rows; readonly lengths: Int32Array; readonly responses: Array<string> }> =>
  // Sampling on prompts checked at load (Dataset.load): a throw here is a bug, a defect.
  Effect.promise(async () => {
    const T = session.modelConfig.maxResponseLength
    const prompts = Session.encodePrompts(session, config, examples) // [B, Tp]
    const out = await Session.sample(session, images, prompts, {
      groupSize: options.n,
      maxNewTokens: T,
      padId: session.tokenizer.padId,
      temperature: options.temperature,
      topP: options.topP,
      stopTokens: [session.tokenizer.eosId]
    }, rng)
    const n = examples.length * options.n
    const responses = Array.from({ length: n }, (_, r) => Tokenizer.decode(session.tokenizer, out.ids.subarray(r * T, r * T + out.lengths[r]!)))
    return {
      rows: {
        n,
        images: Session.repeatRows(images, images.length / examples.length, options.n), // [N, H, W, C]
        promptIds: Session.repeatRows(prompts.ids, prompts.length, options.n), // [N, Tp]
        promptLength: prompts.length,
        responseIds: out.ids, // [N, T]
        responseMask: out.responseMask, // [N, T]
        responseLength: T
      },
      lengths: out.lengths,
      responses
    }
  })

/**
 * Stage 4 (reward): grades of the N = B·G responses against their prompts' answers.
 *
 * @example
 * const grades = yield* grade(["<think>7+3=10</think>\\boxed{10}"], [example], 1)
 * grades[0].accuracy // => 1 when example.answer is "10"
 *
 * @category math
 */
export const grade = (
  responses: ReadonlyArray<string>,
  examples: ReadonlyArray<Example>,
  n: number
): Effect.Effect<ReadonlyArray<Grade>, never, Verifier> =>
  Effect.gen(function*() {
    const verifier = yield* Verifier
    return yield* verifier.grade(responses.map((response, r) => ({ response, answer: examples[Math.floor(r / n)]!.answer })))
  })

/**
 * Keeps the given rows (whole groups) of rollouts.
 *
 * @example
 * selectRows(r, [5, 6, 7, 8, 9], 5).examples // => [r.examples[1]]
 *
 * @category math
 */
export const selectRows = (r: Rollouts, rows: ReadonlyArray<number>, n: number): Rollouts => {
  const prompts = [...new Set(rows.map((x) => Math.floor(x / n)))]
  return {
    examples: prompts.map((p) => r.examples[p]!),
    maskedImages: prompts.map((p) => r.maskedImages[p]!),
    rows: {
      ...r.rows,
      n: rows.length,
      images: Session.takeRows(r.rows.images, r.rows.images.length / r.rows.n, rows),
      promptIds: Session.takeRows(r.rows.promptIds, r.rows.promptLength, rows),
      responseIds: Session.takeRows(r.rows.responseIds, r.rows.responseLength, rows),
      responseMask: Session.takeRows(r.rows.responseMask, r.rows.responseLength, rows)
    },
    lengths: Int32Array.from(rows, (x) => r.lengths[x]!),
    responses: rows.map((x) => r.responses[x]!),
    grades: rows.map((x) => r.grades[x]!),
    uids: rows.map((x) => r.uids[x]!)
  }
}

/**
 * Joins rollouts (DAPO's generation rounds), left-padding every part's prompts to the longest.
 *
 * @example
 * concatRollouts([a, b]).rows.n // => a.rows.n + b.rows.n
 *
 * @category math
 */
export const concatRollouts = (parts: ReadonlyArray<Rollouts>): Rollouts => {
  const cat = <A extends Float32Array | Int32Array>(xs: ReadonlyArray<A>): A => {
    const out = new (xs[0]!.constructor as new (n: number) => A)(xs.reduce((s, x) => s + x.length, 0))
    let o = 0
    for (const x of xs) {
      out.set(x, o)
      o += x.length
    }
    return out
  }
  const promptLength = Math.max(...parts.map((p) => p.rows.promptLength))
  const padded = parts.map((p) => {
    if (p.rows.promptLength === promptLength) return p.rows.promptIds
    const out = new Int32Array(p.rows.n * promptLength)
    for (let r = 0; r < p.rows.n; r++) {
      out.set(p.rows.promptIds.subarray(r * p.rows.promptLength, (r + 1) * p.rows.promptLength), r * promptLength + promptLength - p.rows.promptLength)
    }
    return out
  })
  return {
    examples: parts.flatMap((p) => p.examples),
    maskedImages: parts.flatMap((p) => p.maskedImages),
    rows: {
      n: parts.reduce((s, p) => s + p.rows.n, 0),
      images: cat(parts.map((p) => p.rows.images)),
      promptIds: cat(padded),
      promptLength,
      responseIds: cat(parts.map((p) => p.rows.responseIds)),
      responseMask: cat(parts.map((p) => p.rows.responseMask)),
      responseLength: parts[0]!.rows.responseLength
    },
    lengths: cat(parts.map((p) => p.lengths)),
    responses: parts.flatMap((p) => p.responses),
    grades: parts.flatMap((p) => p.grades),
    uids: parts.flatMap((p) => p.uids)
  }
}
