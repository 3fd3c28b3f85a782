/**
 * DAPO's dynamic sampling (`ray_trainer.py::_make_batch_data`, "online filtering"): drop the groups whose
 * responses are all right or all wrong, since their advantages are 0, and keep generating until the
 * batch is full.
 *
 * - A group is kept iff `filterLow < mean(score) < filterHigh`, both strict (reference: 0.01 / 0.99 on
 *   `accuracy`, not `overall`).
 * - If no group of a chunk survives, the whole chunk is kept.
 * - Chunks are appended until `⌊kept / n⌋ ≥ rolloutBatchSize`, then the batch is cut to `rolloutBatchSize·n`.
 * - After `maxTryMakeBatch` chunks (≤ 0: unlimited) without a full batch, the reference raises.
 *
 * The reference has no overlong reward shaping and no overlong filtering; neither is here.
 *
 * @since 0.1.0
 */

/**
 * One generated chunk: the group id and filter score of each response.
 *
 * @category models
 */
export interface Chunk {
  readonly uids: ReadonlyArray<string>
  readonly filterScores: ReadonlyArray<number>
}

/**
 * Hyperparameters of dynamic sampling.
 *
 * @category configuration
 */
export interface DynamicSamplingConfig {
  readonly filterLow: number
  readonly filterHigh: number
  /** Responses per prompt (G). */
  readonly n: number
  /** Prompts per batch. */
  readonly rolloutBatchSize: number
  /** Chunks to try before giving up; ≤ 0 means unlimited. */
  readonly maxTryMakeBatch: number
}

/**
 * How {@link makeBatch} ended. `Full`: `finalBatch` holds `[chunkIndex, indexInChunk]` pairs.
 * `OutOfTries`: the reference's ValueError. `Exhausted`: the chunk source ran dry first.
 *
 * @category models
 */
export type BatchResult =
  | { readonly _tag: "Full"; readonly keptIndicesPerChunk: Array<Array<number>>; readonly finalBatch: Array<[number, number]>; readonly numTries: number }
  | { readonly _tag: "OutOfTries" | "Exhausted"; readonly keptIndicesPerChunk: Array<Array<number>>; readonly numTries: number }

/**
 * The indices of a chunk that survive the filter, in order (all of them if none survive).
 *
 * @example
 * filterGroups({ uids: ["a", "a", "b", "b"], filterScores: [1, 0, 1, 1] }, 0.01, 0.99) // => [0, 1]
 *
 * @category math
 */
export const filterGroups = (chunk: Chunk, filterLow: number, filterHigh: number): Array<number> => {
  if (chunk.uids.length !== chunk.filterScores.length) {
    throw new Error(`Error in filterGroups: ${chunk.uids.length} uids but ${chunk.filterScores.length} scores`)
  }
  const sums = new Map<string, { sum: number; count: number }>()
  chunk.uids.forEach((uid, i) => {
    const s = sums.get(uid) ?? { sum: 0, count: 0 }
    s.sum += chunk.filterScores[i]!
    s.count += 1
    sums.set(uid, s)
  })
  const kept = chunk.uids.flatMap((uid, i) => {
    const s = sums.get(uid)!
    const mean = s.sum / s.count
    return filterLow < mean && mean < filterHigh ? [i] : []
  })
  return kept.length > 0 ? kept : chunk.uids.map((_, i) => i)
}

/**
 * Consumes chunks (lazily: a generator may generate them on demand) until the batch is full.
 *
 * @category math
 */
export const makeBatch = (chunks: Iterable<Chunk>, config: DynamicSamplingConfig): BatchResult => {
  const keptIndicesPerChunk: Array<Array<number>> = []
  const batch: Array<[number, number]> = []
  let numTries = 0
  for (const chunk of chunks) {
    numTries += 1
    const kept = filterGroups(chunk, config.filterLow, config.filterHigh)
    keptIndicesPerChunk.push(kept)
    for (const i of kept) batch.push([numTries - 1, i])
    if (Math.floor(batch.length / config.n) >= config.rolloutBatchSize) {
      return { _tag: "Full", keptIndicesPerChunk, finalBatch: batch.slice(0, config.rolloutBatchSize * config.n), numTries }
    }
    if (config.maxTryMakeBatch > 0 && numTries >= config.maxTryMakeBatch) {
      return { _tag: "OutOfTries", keptIndicesPerChunk, numTries }
    }
  }
  return { _tag: "Exhausted", keptIndicesPerChunk, numTries }
}
