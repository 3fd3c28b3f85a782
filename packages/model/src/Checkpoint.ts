/**
 * Checkpoints: the weights as safetensors, the optimizer moments as safetensors, and a JSON file with the
 * model config, the tokenizer and the caller's extra state.
 *
 * A checkpoint is a directory:
 *
 *     config.json              {"format": "papo-model/1", "model": ModelConfig, "tokenizer": …, "extra": …,
 *                              "files": {"model.safetensors": {"bytes", "sha256"}, …}}
 *     model.safetensors        one F32 tensor per parameter, named as in `Policy.parameterShapes`
 *     optimizer.safetensors    (optional) `m.<param>`, `v.<param>`; metadata `step`, `skippedSteps`
 *
 * safetensors layout (readable by Python's `safetensors.numpy.load_file`): an 8-byte little-endian header
 * length, a JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {…}}` padded
 * with spaces to a multiple of 8, then the raw little-endian data, tensors contiguous in header order.
 *
 * Saving writes a temporary directory (every file fsynced), then swaps it in with renames. Loading reads
 * and checks everything (sizes, hashes, names, shapes, offsets) before it returns anything, so a truncated
 * or mismatched checkpoint is refused with a {@link CheckpointError} and never half-loaded.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import { endianness } from "node:os"
import * as path from "node:path"
import { validateConfig, type ModelConfig } from "./Config.js"
import * as Optimizer from "./Optimizer.js"
import * as Policy from "./Policy.js"
import * as Tokenizer from "./Tokenizer.js"

/**
 * A checkpoint that cannot be read or written; `path` is the offending file.
 *
 * @category errors
 */
export class CheckpointError extends Error {
  readonly _tag = "CheckpointError"
  constructor(readonly path: string, readonly reason: string) {
    super(`Checkpoint ${path}: ${reason}`)
  }
}

/**
 * One float32 tensor of a safetensors file.
 *
 * @category models
 */
export interface NamedTensor {
  readonly shape: ReadonlyArray<number>
  readonly data: Float32Array
}

if (endianness() !== "LE") throw new Error("@papo/model checkpoints need a little-endian host")

/**
 * Serializes float32 tensors (in the record's order) to safetensors bytes.
 *
 * @category constructors
 */
export const encodeSafetensors = (
  tensors: Readonly<Record<string, NamedTensor>>,
  metadata: Readonly<Record<string, string>> = {}
): Uint8Array => {
  const header: Record<string, unknown> = {}
  if (Object.keys(metadata).length > 0) header["__metadata__"] = metadata
  let offset = 0
  for (const [name, t] of Object.entries(tensors)) {
    const size = t.shape.reduce((a, b) => a * b, 1)
    if (size !== t.data.length) throw new Error(`encodeSafetensors: "${name}" has ${t.data.length} values for shape [${t.shape.join(", ")}]`)
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + 4 * size] }
    offset += 4 * size
  }
  let json = JSON.stringify(header)
  const raw = new TextEncoder().encode(json)
  json += " ".repeat((8 - (raw.length % 8)) % 8)
  const headerBytes = new TextEncoder().encode(json)
  const out = new Uint8Array(8 + headerBytes.length + offset)
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true)
  out.set(headerBytes, 8)
  let at = 8 + headerBytes.length
  for (const t of Object.values(tensors)) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at)
    at += t.data.byteLength
  }
  return out
}

/**
 * Parses safetensors bytes (F32 tensors only). Throws a {@link CheckpointError} naming `source` if the
 * header is malformed, an offset is out of range, tensors overlap or leave gaps, or the file is truncated.
 *
 * @category constructors
 */
export const decodeSafetensors = (
  bytes: Uint8Array,
  source = "<buffer>"
): { readonly tensors: Record<string, NamedTensor>; readonly metadata: Record<string, string> } => {
  const fail = (reason: string): never => {
    throw new CheckpointError(source, reason)
  }
  if (bytes.length < 8) fail(`truncated: ${bytes.length} bytes, no header length`)
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true))
  if (8 + n > bytes.length) fail(`truncated: header says ${n} bytes but the file has ${bytes.length - 8} after the length`)
  let header: Record<string, unknown>
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>
  } catch (e) {
    return fail(`malformed header JSON (${e instanceof Error ? e.message : String(e)})`)
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) fail("header is not a JSON object")
  const dataStart = 8 + n
  const dataLength = bytes.length - dataStart
  const metadata = (header["__metadata__"] ?? {}) as Record<string, string>
  const entries = Object.entries(header).filter(([k]) => k !== "__metadata__")
  const spans: Array<[number, number, string]> = []
  const tensors: Record<string, NamedTensor> = {}
  for (const [name, info] of entries) {
    const { dtype, shape, data_offsets: off } = (info ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown }
    if (dtype !== "F32") fail(`tensor "${name}" has dtype ${String(dtype)}; only F32 is supported`)
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) fail(`tensor "${name}" has an invalid shape`)
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0)) fail(`tensor "${name}" has invalid data_offsets`)
    const [begin, end] = off as [number, number]
    const size = (shape as Array<number>).reduce((a, b) => a * b, 1)
    if (end - begin !== 4 * size) fail(`tensor "${name}" spans ${end - begin} bytes but shape [${(shape as Array<number>).join(", ")}] needs ${4 * size}`)
    if (end > dataLength) fail(`truncated: tensor "${name}" ends at byte ${end} of the data but only ${dataLength} are present`)
    spans.push([begin, end, name])
    const copy = bytes.slice(dataStart + begin, dataStart + end) // aligned copy
    tensors[name] = { shape: shape as Array<number>, data: new Float32Array(copy.buffer, copy.byteOffset, size) }
  }
  spans.sort((a, b) => a[0] - b[0])
  let expected = 0
  for (const [begin, end, name] of spans) {
    if (begin !== expected) fail(`tensor "${name}" starts at ${begin}, expected ${expected} (gap or overlap)`)
    expected = end
  }
  if (expected !== dataLength) fail(`${dataLength - expected} trailing bytes after the last tensor`)
  return { tensors, metadata }
}

const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex")

/**
 * Writes a file (or, with `flag` "a", appends to it) and fsyncs it: the first half of an atomic save (write a
 * temporary, sync, rename), or a durable append.
 *
 * @category constructors
 */
export const writeSynced = async (file: string, data: Uint8Array | string, flag: "w" | "a" = "w"): Promise<void> => {
  const h = await fs.open(file, flag)
  try {
    await h.writeFile(data)
    await h.sync()
  } finally {
    await h.close()
  }
}

/**
 * Fsyncs a folder, so a rename into it survives a crash: the second half of an atomic save.
 *
 * @category constructors
 */
export const syncDir = async (dir: string): Promise<void> => {
  const h = await fs.open(dir, "r")
  try {
    await h.sync()
  } finally {
    await h.close()
  }
}

/**
 * What to save: a policy, and optionally its tokenizer, optimizer and any JSON-serializable extra state
 * (e.g. the trainer's step and generator state).
 *
 * @category models
 */
export interface SaveInput {
  readonly policy: Policy.Policy
  readonly tokenizer?: Tokenizer.Tokenizer
  readonly optimizer?: Optimizer.AdamW
  readonly extra?: unknown
}

const FORMAT = "papo-model/1"

/**
 * Writes a checkpoint directory atomically (see the module doc). An existing checkpoint at `dir` is
 * replaced.
 *
 * @example
 * await save("runs/x/step-100", { policy, tokenizer, optimizer, extra: { step: 100 } })
 *
 * @category constructors
 */
export const save = async (dir: string, input: SaveInput): Promise<void> => {
  const vocab = input.policy.config.vocabSize
  if (input.tokenizer !== undefined && input.tokenizer.tokens.length > vocab) {
    throw new CheckpointError(dir, `tokenizer has ${input.tokenizer.tokens.length} tokens but vocabSize is ${vocab}`)
  }
  const files: Record<string, Uint8Array> = {}
  const weights = Policy.getWeights(input.policy)
  const shapes = Policy.parameterShapes(input.policy.config)
  files["model.safetensors"] = encodeSafetensors(
    Object.fromEntries(shapes.map(({ name, shape }) => [name, { shape, data: weights[name]! }])),
    { format: FORMAT }
  )
  if (input.optimizer !== undefined) {
    const st = Optimizer.getState(input.optimizer)
    const t: Record<string, NamedTensor> = {}
    for (const { name, shape } of shapes) t[`m.${name}`] = { shape, data: st.m[name]! }
    for (const { name, shape } of shapes) t[`v.${name}`] = { shape, data: st.v[name]! }
    files["optimizer.safetensors"] = encodeSafetensors(t, { step: String(st.step), skippedSteps: String(st.skippedSteps) })
  }
  const config = {
    format: FORMAT,
    model: input.policy.config,
    tokenizer: input.tokenizer ?? null,
    extra: input.extra ?? null,
    files: Object.fromEntries(Object.entries(files).map(([k, b]) => [k, { bytes: b.length, sha256: sha256(b) }]))
  }
  const abs = path.resolve(dir)
  await fs.mkdir(path.dirname(abs), { recursive: true })
  const tmp = `${abs}.tmp-${process.pid}-${Date.now()}`
  await fs.mkdir(tmp)
  for (const [name, b] of Object.entries(files)) await writeSynced(path.join(tmp, name), b)
  await writeSynced(path.join(tmp, "config.json"), JSON.stringify(config, null, 2) + "\n")
  await syncDir(tmp)
  const old = `${abs}.old-${process.pid}-${Date.now()}`
  const existed = await fs.stat(abs).then(() => true, () => false)
  if (existed) await fs.rename(abs, old)
  await fs.rename(tmp, abs)
  await syncDir(path.dirname(abs))
  if (existed) await fs.rm(old, { recursive: true, force: true })
}

/**
 * A loaded checkpoint, checked against its config.
 *
 * @category models
 */
export interface Loaded {
  readonly config: ModelConfig
  readonly tokenizer: Tokenizer.Tokenizer | null
  readonly weights: Record<string, Float32Array>
  readonly optimizer: Optimizer.AdamWState | null
  readonly extra: unknown
}

/**
 * Reads and checks a checkpoint directory; throws a {@link CheckpointError} for a missing, truncated,
 * corrupted or mismatched file.
 *
 * @category constructors
 */
export const load = async (dir: string): Promise<Loaded> => {
  const configPath = path.join(dir, "config.json")
  const text = await fs.readFile(configPath, "utf8").catch((e: unknown) => {
    throw new CheckpointError(configPath, `cannot read (${e instanceof Error ? e.message : String(e)})`)
  })
  let json: {
    format?: unknown
    model?: ModelConfig
    tokenizer?: unknown
    extra?: unknown
    files?: Record<string, { bytes: number; sha256: string }>
  }
  try {
    json = JSON.parse(text)
  } catch (e) {
    throw new CheckpointError(configPath, `malformed JSON (${e instanceof Error ? e.message : String(e)})`)
  }
  if (json.format !== FORMAT) throw new CheckpointError(configPath, `format is ${JSON.stringify(json.format)}, expected "${FORMAT}"`)
  let config: ModelConfig
  let tokenizer: Tokenizer.Tokenizer | null
  try {
    config = validateConfig(json.model as ModelConfig)
    tokenizer = json.tokenizer == null ? null : Tokenizer.fromJSON(json.tokenizer)
  } catch (e) {
    throw new CheckpointError(configPath, e instanceof Error ? e.message : String(e))
  }
  if (tokenizer !== null && tokenizer.tokens.length > config.vocabSize) {
    throw new CheckpointError(configPath, `tokenizer has ${tokenizer.tokens.length} tokens but vocabSize is ${config.vocabSize}`)
  }
  const files = json.files ?? {}
  const read = async (name: string): Promise<Uint8Array> => {
    const p = path.join(dir, name)
    const want = files[name]
    if (want === undefined) throw new CheckpointError(configPath, `does not list ${name}`)
    const b = new Uint8Array(await fs.readFile(p).catch((e: unknown) => {
      throw new CheckpointError(p, `cannot read (${e instanceof Error ? e.message : String(e)})`)
    }))
    if (b.length !== want.bytes) throw new CheckpointError(p, `has ${b.length} bytes, config.json says ${want.bytes} (truncated or replaced)`)
    if (sha256(b) !== want.sha256) throw new CheckpointError(p, "content does not match the sha256 in config.json")
    return b
  }
  const shapes = Policy.parameterShapes(config)
  const check = (file: string, tensors: Record<string, NamedTensor>, prefix: string): Record<string, Float32Array> => {
    const problems: Array<string> = []
    const out: Record<string, Float32Array> = {}
    for (const { name, shape } of shapes) {
      const t = tensors[prefix + name]
      if (t === undefined) problems.push(`missing "${prefix + name}"`)
      else if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        problems.push(`"${prefix + name}" has shape [${t.shape.join(", ")}], the config needs [${shape.join(", ")}]`)
      } else out[name] = t.data
    }
    const expected = new Set(shapes.map((s) => prefix + s.name))
    for (const k of Object.keys(tensors)) if (!expected.has(k)) problems.push(`unexpected "${k}"`)
    if (problems.length > 0) throw new CheckpointError(file, `does not match the model config: ${problems.join("; ")}`)
    return out
  }
  const modelFile = path.join(dir, "model.safetensors")
  const weights = check(modelFile, decodeSafetensors(await read("model.safetensors"), modelFile).tensors, "")
  let optimizer: Optimizer.AdamWState | null = null
  if (files["optimizer.safetensors"] !== undefined) {
    const optFile = path.join(dir, "optimizer.safetensors")
    const { tensors, metadata } = decodeSafetensors(await read("optimizer.safetensors"), optFile)
    const m = check(optFile, Object.fromEntries(Object.entries(tensors).filter(([k]) => k.startsWith("m."))), "m.")
    const v = check(optFile, Object.fromEntries(Object.entries(tensors).filter(([k]) => k.startsWith("v."))), "v.")
    const stray = Object.keys(tensors).filter((k) => !k.startsWith("m.") && !k.startsWith("v."))
    if (stray.length > 0) throw new CheckpointError(optFile, `unexpected tensors ${stray.join(", ")}`)
    const step = Number(metadata["step"]), skippedSteps = Number(metadata["skippedSteps"])
    if (!Number.isInteger(step) || !Number.isInteger(skippedSteps)) throw new CheckpointError(optFile, "metadata lacks integer step/skippedSteps")
    optimizer = { step, skippedSteps, m, v }
  }
  return { config, tokenizer, weights, optimizer, extra: json.extra ?? null }
}

/**
 * Loads a checkpoint into a new trainable policy (and, if saved, a restored optimizer with `optimizerConfig`).
 *
 * @category constructors
 */
export const restore = async (
  dir: string,
  optimizerConfig?: Optimizer.AdamWConfig
): Promise<Loaded & { readonly policy: Policy.Policy; readonly adamW: Optimizer.AdamW | null }> => {
  const loaded = await load(dir)
  const policy = Policy.create(loaded.config, 0)
  Policy.setWeights(policy, loaded.weights)
  let adamW: Optimizer.AdamW | null = null
  if (optimizerConfig !== undefined) {
    adamW = Optimizer.adamW(policy, optimizerConfig)
    if (loaded.optimizer !== null) Optimizer.setState(adamW, loaded.optimizer)
  }
  return { ...loaded, policy, adamW }
}
