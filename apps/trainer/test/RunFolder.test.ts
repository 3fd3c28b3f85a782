import assert from "node:assert/strict"
import { link, mkdir, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { before, describe, it } from "node:test"
import { initBackend } from "@papo/backend"
import { Config as ModelConfigs, Optimizer, Policy, Tokenizer } from "@papo/model"
import { Effect, Schema } from "effect"
import { defaultConfig, toYaml } from "../src/Config.js"
import * as RunFolder from "../src/RunFolder.js"

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)
const failure = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(Effect.flip(effect))
const fresh = () => mkdtemp(join(tmpdir(), "papo-runfolder-"))
const Line = Schema.Struct({ step: Schema.Int })

describe("RunFolder: files", () => {
  it("writeAtomic replaces a file whole and leaves no temporary; a failed rename keeps the old content and names the path", async () => {
    const dir = await fresh()
    const file = join(dir, "eval.json")
    await run(RunFolder.writeAtomic(file, "old\n"))
    await run(RunFolder.writeAtomic(file, "new\n"))
    assert.equal(await readFile(file, "utf8"), "new\n")
    assert.deepEqual(await readdir(dir), ["eval.json"])
    // A non-empty folder where the file should go: the rename fails, nothing is half-written.
    const blocked = join(dir, "blocked")
    await mkdir(join(blocked, "inside"), { recursive: true })
    const e = await failure(RunFolder.writeAtomic(blocked, "x"))
    assert.equal(e._tag, "RunFolderError")
    assert.equal(e.path, blocked)
    assert.deepEqual(await readdir(blocked), ["inside"])
  })

  it("readJsonl names the file and the line of a bad line (not JSON, or not the schema)", async () => {
    const dir = await fresh()
    const file = join(dir, "metrics.jsonl")
    await writeFile(file, `{"step":1}\n\n{"step":2}\n{"step":3,\n{"step":4}\n`)
    const notJson = await failure(RunFolder.readJsonl(file, Line))
    assert.equal(notJson._tag, "JsonlLineError")
    assert.ok(notJson._tag === "JsonlLineError" && notJson.line === 4 && notJson.path === file)
    assert.match(notJson.message, new RegExp(`^${file}:4: not JSON`))
    await writeFile(file, `{"step":1}\n{"step":"two"}\n`)
    const wrong = await failure(RunFolder.readJsonl(file, Line))
    assert.ok(wrong._tag === "JsonlLineError" && wrong.line === 2, wrong.message)
    assert.match(wrong.message, /metrics\.jsonl:2: .*step/)
  })

  it("a torn last line (no newline after it) is dropped and reported, the lines before it kept", async () => {
    const dir = await fresh()
    const file = join(dir, "metrics.jsonl")
    await writeFile(file, `{"step":1}\n{"step":2}\n{"ste`)
    const { rows, tornLine } = await run(RunFolder.readJsonl(file, Line))
    assert.deepEqual(rows, [{ step: 1 }, { step: 2 }])
    assert.equal(tornLine, 3)
    // Complete, with its newline: not torn.
    await writeFile(file, `{"step":1}\n`)
    assert.equal((await run(RunFolder.readJsonl(file, Line))).tornLine, null)
  })

  it("metrics: null reads back as NaN; keepMetrics keeps the prefix through a new file and warns about a torn line", async () => {
    const dir = await fresh()
    for (const step of [1, 2, 3]) await run(RunFolder.appendMetrics(dir, step, { "actor/pg_loss": step === 2 ? Number.NaN : step / 10 }))
    const read = await run(RunFolder.readMetrics(dir))
    assert.deepEqual(read.map((m) => m.step), [1, 2, 3])
    assert.ok(Number.isNaN(read[1]!["actor/pg_loss"]))
    const file = join(dir, "metrics.jsonl")
    const before = (await readFile(file, "utf8")) + `{"step":4,"actor/pg`
    await writeFile(file, before)
    // A hard link sees the old file: truncating in place would cut it too.
    await link(file, join(dir, "before.jsonl"))
    const warnings: Array<string> = []
    await run(RunFolder.keepMetrics(dir, 2, (l) => warnings.push(l), "dropped.jsonl"))
    assert.deepEqual((await run(RunFolder.readMetrics(dir))).map((m) => m.step), [1, 2])
    assert.equal(await readFile(join(dir, "before.jsonl"), "utf8"), before, "the old file was replaced, not truncated")
    assert.deepEqual(warnings, [`${file}:4: dropped a torn last line (the run was killed while writing it)`])
    assert.equal((await readFile(join(dir, "dropped.jsonl"), "utf8")).trim(), `{"step":3,"actor/pg_loss":0.3}`)
  })

  it("ensureWritable fails before any work where the folder cannot be made, naming it", async () => {
    const dir = await fresh()
    await writeFile(join(dir, "file"), "")
    const e = await failure(RunFolder.ensureWritable(join(dir, "file", "run")))
    assert.equal(e.path, join(dir, "file", "run"))
    assert.match(e.message, /not writable/)
    await run(RunFolder.ensureWritable(join(dir, "ok")))
    assert.deepEqual(await readdir(join(dir, "ok")), [], "the probe is removed")
  })
})

describe("RunFolder: the folder", () => {
  it("open removes stale temporaries of a killed run and puts back a checkpoint set aside mid-replacement", async () => {
    const dir = await fresh()
    const cks = join(dir, "checkpoints")
    await mkdir(join(cks, ".tmp-step-000004-123", "actor"), { recursive: true })
    await mkdir(join(cks, "step-000002"), { recursive: true })
    await mkdir(join(cks, ".tmp-old-step-000003-77"), { recursive: true })
    await writeFile(join(cks, ".tmp-old-step-000003-77", "marker"), "")
    await writeFile(join(dir, ".tmp-eval.json-99"), "{")
    await writeFile(join(dir, "config.yaml"), toYaml(defaultConfig))
    const logged: Array<string> = []
    await run(RunFolder.open(dir, { resume: true, overwrite: false }, (l) => logged.push(l)))
    assert.deepEqual((await readdir(cks)).sort(), ["step-000002", "step-000003"])
    assert.deepEqual(await readdir(join(cks, "step-000003")), ["marker"])
    assert.deepEqual((await readdir(dir)).sort(), ["checkpoints", "config.yaml"])
    assert.equal(logged.length, 1)
    assert.match(logged[0]!, /removed 2 temporary file\(s\).*\.tmp-eval\.json-99.*\.tmp-step-000004-123/)
  })

  it("a fresh run into a used folder is refused with what is there; overwrite removes the run's files only", async () => {
    const dir = await fresh()
    await mkdir(join(dir, "checkpoints", "step-000001"), { recursive: true })
    await writeFile(join(dir, "metrics.jsonl"), `{"step":1}\n`)
    await writeFile(join(dir, "eval-step-000001.json"), "{}")
    await writeFile(join(dir, "notes.txt"), "mine")
    const e = await failure(RunFolder.open(dir, { resume: false, overwrite: false }, () => {}))
    assert.equal(e._tag, "RunFolderNotEmptyError")
    assert.ok(e._tag === "RunFolderNotEmptyError" && e.dir === dir)
    assert.deepEqual(e._tag === "RunFolderNotEmptyError" && e.entries, ["checkpoints", "eval-step-000001.json", "metrics.jsonl"])
    assert.equal((await readdir(dir)).length, 4, "nothing removed")
    await run(RunFolder.open(dir, { resume: false, overwrite: true }, () => {}))
    assert.deepEqual((await readdir(dir)).sort(), ["checkpoints", "notes.txt"])
    assert.deepEqual(await readdir(join(dir, "checkpoints")), [])
    // An empty or missing folder is fine without overwrite.
    await run(RunFolder.open(join(dir, "new"), { resume: false, overwrite: false }, () => {}))
  })

  it("resume: changed model or algorithm keys are refused and listed, config.yaml untouched; run length and logging may change", async () => {
    const dir = await fresh()
    await mkdir(dir, { recursive: true })
    await run(RunFolder.writeConfig(dir, defaultConfig))
    const saved = await readFile(join(dir, "config.yaml"), "utf8")
    const given = {
      ...defaultConfig,
      algorithm: { ...defaultConfig.algorithm, klPrcpCoef: defaultConfig.algorithm.klPrcpCoef * 2 },
      worker: { ...defaultConfig.worker, actor: { ...defaultConfig.worker.actor, model: "tiny" as const } },
      trainer: { ...defaultConfig.trainer, maxSteps: defaultConfig.trainer.maxSteps + 50, logger: "quiet" as const, valFreq: 7, threads: 1 }
    }
    const e = await failure(RunFolder.checkConfig(dir, given, false))
    assert.equal(e._tag, "ConfigChangedError")
    assert.deepEqual(e._tag === "ConfigChangedError" && e.keys.map((k) => k.key), ["algorithm.klPrcpCoef", "worker.actor.model"])
    assert.match(e.message, /worker\.actor\.model "small" → "tiny"/)
    assert.equal(await readFile(join(dir, "config.yaml"), "utf8"), saved)
    await run(RunFolder.checkConfig(dir, given, true))
    await run(RunFolder.checkConfig(dir, { ...defaultConfig, trainer: given.trainer }, false))
  })
})

describe("RunFolder: checkpoints", () => {
  const tokenizer = Tokenizer.make()
  const c = { ...ModelConfigs.configs.tiny, vocabSize: tokenizer.tokens.length }
  const input = (step: number): RunFolder.SaveInput => {
    const policy = Policy.create(c, step)
    return { policy, reference: null, optimizer: Optimizer.adamW(policy, { lr: 1e-3 }), tokenizer, state: { kind: "sft", step, cursor: step * 8 } }
  }
  before(() => initBackend("wasm"))

  it("saveCheckpoint replaces a checkpoint of the same name whole and keeps the newest `keep`", async () => {
    const dir = await fresh()
    for (const step of [1, 2, 3]) await run(RunFolder.saveCheckpoint(dir, step, input(step), 2))
    await run(RunFolder.saveCheckpoint(dir, 3, { ...input(3), state: { kind: "sft", step: 3, cursor: 99 } }, 2))
    assert.deepEqual(await readdir(join(dir, "checkpoints")), ["step-000002", "step-000003"], "no temporary left, step 1 pruned")
    assert.equal((await run(RunFolder.verifyCheckpoint(join(dir, "checkpoints", "step-000003")))).cursor, 99)
  })

  it("a corrupt newest checkpoint falls back to the newest intact one, with a warning naming it", async () => {
    const dir = await fresh()
    for (const step of [1, 2, 3]) await run(RunFolder.saveCheckpoint(dir, step, input(step), 3))
    const weights = join(dir, "checkpoints", "step-000003", "actor", "model.safetensors")
    const bytes = await readFile(weights)
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1)
    await writeFile(weights, bytes)
    const warnings: Array<string> = []
    const folder = await run(RunFolder.newestIntactCheckpoint(dir, (l) => warnings.push(l)))
    assert.equal(folder, join(dir, "checkpoints", "step-000002"))
    assert.equal(warnings.length, 1)
    assert.match(warnings[0]!, /step-000003: corrupt checkpoint: .*sha256.*falling back to an older checkpoint/)
    const e = await failure(RunFolder.verifyCheckpoint(join(dir, "checkpoints", "step-000003")))
    assert.equal(e._tag, "CheckpointCorruptError")
    // A trainer state that does not decode is corrupt too.
    await run(RunFolder.saveCheckpoint(dir, 4, { ...input(4), state: { kind: "sft", step: 4.5, cursor: 0 } }, 3))
    assert.equal(await run(RunFolder.newestIntactCheckpoint(dir, () => {})), join(dir, "checkpoints", "step-000002"))
  })
})
