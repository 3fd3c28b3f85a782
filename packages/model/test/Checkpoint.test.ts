import assert from "node:assert/strict"
import * as fs from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { after, before, test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import { Checkpoint, Config, Optimizer, Policy, Tokenizer } from "../src/index.js"
import { setup } from "./helpers.js"

let root = ""
before(async () => {
  await setup()
  root = await fs.mkdtemp(path.join(tmpdir(), "papo-ckpt-"))
})
after(() => fs.rm(root, { recursive: true, force: true }))
const c = Config.configs.tiny

const trained = (config: Config.ModelConfig = c): { policy: Policy.Policy; opt: Optimizer.AdamW } => {
  const policy = Policy.create(config, 3)
  const opt = Optimizer.adamW(policy, { lr: 1e-2 })
  for (let i = 0; i < 3; i++) Optimizer.applyGradients(policy, opt, () => tf.sum(tf.square(policy.params["lm_head.weight"]!)) as tf.Scalar)
  return { policy, opt }
}

test("safetensors bytes follow the format: u64 LE header length, JSON header, contiguous LE data", () => {
  const bytes = Checkpoint.encodeSafetensors({ a: { shape: [2], data: Float32Array.of(1.5, -2) }, b: { shape: [1, 1], data: Float32Array.of(3) } }, { k: "v" })
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true))
  assert.equal((8 + n) % 8, 0)
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)))
  assert.deepEqual(header, {
    __metadata__: { k: "v" },
    a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    b: { dtype: "F32", shape: [1, 1], data_offsets: [8, 12] }
  })
  assert.equal(bytes.length, 8 + n + 12)
  const view = new DataView(bytes.buffer, 8 + n)
  assert.deepEqual([view.getFloat32(0, true), view.getFloat32(4, true), view.getFloat32(8, true)], [1.5, -2, 3])
  const back = Checkpoint.decodeSafetensors(bytes)
  assert.deepEqual(back.metadata, { k: "v" })
  assert.deepEqual(Array.from(back.tensors["a"]!.data), [1.5, -2])
})

test("save → load restores weights, optimizer state, tokenizer and extra state bit for bit", async () => {
  const first = trained()
  const tok = Tokenizer.extend(Tokenizer.make(), "αβ")
  const { policy, opt } = trained({ ...c, vocabSize: tok.tokens.length })
  const dir = path.join(root, "ckpt")
  await Checkpoint.save(dir, { policy: first.policy, optimizer: first.opt, extra: { step: 1 } })
  await assert.rejects(Checkpoint.save(path.join(root, "x"), { policy: first.policy, tokenizer: tok }), /tokenizer has 103 tokens but vocabSize is 12/)
  await Checkpoint.save(dir, { policy, optimizer: opt, tokenizer: tok, extra: { step: 3 } }) // replaces the first one
  const r = await Checkpoint.restore(dir, { lr: 1e-2 })
  const a = Policy.getWeights(policy), b = Policy.getWeights(r.policy)
  for (const k of Object.keys(a)) assert.deepEqual(new Uint32Array(b[k]!.buffer), new Uint32Array(a[k]!.buffer), k)
  const sa = Optimizer.getState(opt), sb = Optimizer.getState(r.adamW!)
  assert.equal(sb.step, 3)
  for (const k of Object.keys(sa.m)) {
    assert.deepEqual(sb.m[k], sa.m[k])
    assert.deepEqual(sb.v[k], sa.v[k])
  }
  assert.deepEqual(r.tokenizer, tok)
  assert.deepEqual(r.extra, { step: 3 })
  assert.deepEqual(r.config, policy.config)
  assert.deepEqual((await fs.readdir(root)).sort(), ["ckpt"]) // no temporary or old directories left
  for (const p of [policy, first.policy, r.policy]) Policy.dispose(p)
  for (const o of [opt, first.opt, r.adamW!]) Optimizer.dispose(o)
})

test("a truncated, corrupted or mismatched checkpoint is refused with a clear error", async () => {
  const { policy, opt } = trained()
  const dir = path.join(root, "bad")
  const fresh = async (): Promise<void> => Checkpoint.save(dir, { policy, optimizer: opt })
  await fresh()
  const model = path.join(dir, "model.safetensors")
  const bytes = await fs.readFile(model)
  await fs.writeFile(model, bytes.subarray(0, bytes.length - 10))
  await assert.rejects(Checkpoint.load(dir), /model\.safetensors: has \d+ bytes, config\.json says \d+ \(truncated/)
  // Truncated inside the data, decoded directly: the tensor that runs past the end is named.
  assert.throws(() => Checkpoint.decodeSafetensors(bytes.subarray(0, bytes.length - 10), "x"), /Checkpoint x: truncated: tensor "lm_head.weight" ends at byte/)
  assert.throws(() => Checkpoint.decodeSafetensors(bytes.subarray(0, 20), "x"), /truncated: header says/)
  // Same size, flipped byte: the hash catches it.
  await fresh()
  const flipped = Buffer.from(bytes)
  flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 0xff
  await fs.writeFile(model, flipped)
  await assert.rejects(Checkpoint.load(dir), /does not match the sha256/)
  // A config that disagrees with the tensors (hash updated, so only the shape check can catch it).
  await fresh()
  const cfgPath = path.join(dir, "config.json")
  const cfg = JSON.parse(await fs.readFile(cfgPath, "utf8"))
  cfg.model.dMlp = 64
  await fs.writeFile(cfgPath, JSON.stringify(cfg))
  await assert.rejects(Checkpoint.load(dir), /does not match the model config: "blocks\.0\.mlp\.fc\.weight" has shape \[16, 32\], the config needs \[16, 64\]/)
  await assert.rejects(Checkpoint.load(path.join(root, "missing")), /config\.json: cannot read/)
  // setWeights refuses a foreign weight set without touching the policy.
  const before = Policy.getWeights(policy)
  const other = Policy.create({ ...c, dMlp: 64 }, 0)
  assert.throws(() => Policy.setWeights(policy, Policy.getWeights(other)), /do not match the config/)
  assert.deepEqual(Policy.getWeights(policy), before)
  Policy.dispose(policy)
  Policy.dispose(other)
  Optimizer.dispose(opt)
})
