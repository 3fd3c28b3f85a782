/**
 * The policy's architecture: every size is a field, and three named configs.
 *
 * The sequence the decoder sees is `[image patch tokens][prompt tokens][response tokens]`:
 * `(imageHeight / patchSize) · (imageWidth / patchSize)` patch tokens, then up to `maxPromptLength`
 * prompt tokens and `maxResponseLength` response tokens, with a learned position table of
 * `maxPromptLength + maxResponseLength` rows for the text.
 *
 * @since 0.1.0
 */

/**
 * Sizes of the vision-language decoder.
 *
 * @category configuration
 */
export interface ModelConfig {
  readonly imageHeight: number
  readonly imageWidth: number
  readonly imageChannels: number
  /** Side of the square, non-overlapping patches; must divide the image height and width. */
  readonly patchSize: number
  readonly dModel: number
  readonly nLayers: number
  /** Attention heads; must divide `dModel`. */
  readonly nHeads: number
  /** Hidden width of the MLP. */
  readonly dMlp: number
  readonly vocabSize: number
  readonly maxPromptLength: number
  readonly maxResponseLength: number
}

/**
 * The named configs: `tiny` for tests (fast), `small` and `medium` as in the `papo-step` benchmark
 * (image 28×56×1 in patches of 7, vocab 32, 32 text positions). A trainer with its own tokenizer sets
 * `vocabSize: tokenizer.tokens.length`.
 *
 * @example
 * configs.small.dModel // => 128
 *
 * @category configuration
 */
export const configs = {
  tiny: {
    imageHeight: 8,
    imageWidth: 8,
    imageChannels: 1,
    patchSize: 4, // 4 patch tokens
    dModel: 16,
    nLayers: 1,
    nHeads: 2,
    dMlp: 32,
    vocabSize: 12,
    maxPromptLength: 4,
    maxResponseLength: 4
  },
  small: {
    imageHeight: 28,
    imageWidth: 56, // two 28×28 digits side by side
    imageChannels: 1,
    patchSize: 7, // 32 patch tokens of 49 values
    dModel: 128,
    nLayers: 4,
    nHeads: 4,
    dMlp: 512,
    vocabSize: 32,
    maxPromptLength: 16,
    maxResponseLength: 16
  },
  medium: {
    imageHeight: 28,
    imageWidth: 56,
    imageChannels: 1,
    patchSize: 7,
    dModel: 256,
    nLayers: 6,
    nHeads: 8,
    dMlp: 1024,
    vocabSize: 32,
    maxPromptLength: 16,
    maxResponseLength: 16
  }
} as const satisfies Record<string, ModelConfig>

/**
 * A named config.
 *
 * @category configuration
 */
export type ConfigName = keyof typeof configs

/**
 * Number of image patch tokens.
 *
 * @example
 * numPatches(configs.small) // => 32
 *
 * @category math
 */
export const numPatches = (c: ModelConfig): number => (c.imageHeight / c.patchSize) * (c.imageWidth / c.patchSize)

/**
 * Values in one patch (`patchSize² · imageChannels`).
 *
 * @category math
 */
export const patchDim = (c: ModelConfig): number => c.patchSize * c.patchSize * c.imageChannels

/**
 * Checks every field; throws an error naming the field and its value.
 *
 * @example
 * validateConfig({ ...configs.tiny, nHeads: 3 }) // throws: dModel 16 is not divisible by nHeads 3
 *
 * @category constructors
 */
export const validateConfig = (c: ModelConfig): ModelConfig => {
  const fields = [
    "imageHeight",
    "imageWidth",
    "imageChannels",
    "patchSize",
    "dModel",
    "nLayers",
    "nHeads",
    "dMlp",
    "vocabSize",
    "maxPromptLength",
    "maxResponseLength"
  ] as const
  for (const f of fields) {
    const v = (c as unknown as Record<string, unknown>)[f]
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
      throw new Error(`Invalid model config: ${f} must be a positive integer, got ${String(v)}`)
    }
  }
  if (c.imageHeight % c.patchSize !== 0 || c.imageWidth % c.patchSize !== 0) {
    throw new Error(
      `Invalid model config: patchSize ${c.patchSize} must divide the image ${c.imageHeight}×${c.imageWidth}`
    )
  }
  if (c.dModel % c.nHeads !== 0) {
    throw new Error(`Invalid model config: dModel ${c.dModel} is not divisible by nHeads ${c.nHeads}`)
  }
  return c
}

/**
 * Number of parameters of a config.
 *
 * @example
 * parameterCount(configs.small) // => 816128
 *
 * @category math
 */
export const parameterCount = (c: ModelConfig): number => {
  const d = c.dModel
  const block = 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + 2 * d + (d * c.dMlp + c.dMlp) + (c.dMlp * d + d)
  return (
    patchDim(c) * d + d + numPatches(c) * d + c.vocabSize * d + (c.maxPromptLength + c.maxResponseLength) * d +
    c.nLayers * block + 2 * d + d * c.vocabSize
  )
}
