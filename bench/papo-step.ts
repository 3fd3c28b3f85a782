/**
 * npm run bench -- papo-step [small|medium ...] [--threads 1|2] [--steps N] [--warmup N] [--cpu] [--no-peer]
 *
 * After our lines, runs the PyTorch peer (bench/papo_step_torch.py, same --threads) on the same configs in the
 * same run and prints its lines and one `ratio_vs_pytorch` line per config (ours / peer; skipped, with a
 * note on stderr, where python3 has no torch).
 *
 * `--cpu` adds a second line per config with the same stages in CPU milliseconds of this process (all its
 * threads), for a machine shared with other work, where wall-clock time is inflated.
 *
 * `--threads 2` (default) uses both cores as the trainer does: under the native kernels of @papo/kernels,
 * inside each matMul (one replica); on plain wasm, by running every stage data-parallel on the main thread
 * and one worker thread (`Parallel` in @papo/model, `replicas: 2`). `--threads 1` runs it all on one
 * thread (the native kernels too). The `backend` field names
 * the path: wasm with the native matMul kernels of @papo/kernels (2 threads inside each kernel), or plain
 * wasm and why (`PAPO_NATIVE=0` turns native off).
 *
 * One PAPO-G reinforcement-learning step of the @papo/model policy, and the same step as plain GRPO, as
 * fixed by the workload spec (copied here, since the spec file is not in the repo):
 *
 * - configs: `small` d 128, 4 layers, 4 heads, MLP 512 (≈ 0.82 M params); `medium` d 256, 6 layers, 8 heads,
 *   MLP 1024 (≈ 4.8 M). Image [B, 28, 56, 1] float32 in [0, 1] (random pixels), patch 7 → 32 patch tokens,
 *   vocab 32, 32 text positions; sequence = [32 image][8 prompt][16 response] = 56 tokens.
 * - B = 16 prompts × G = 5 rollouts = 80 sequences.
 *   1. rollout: sampling at temperature 1.0 of exactly 16 tokens per sequence (no early stop) with a KV
 *      cache: one prefill of the 40-token prefix (over all 80 sequences, as the peer does) that samples the
 *      first token, then 15 one-token decode steps.
 *   2. logprob: no-grad passes over the 56-token sequences gathering the 16 response log-probs: (a) old
 *      policy, original image; (b) old policy, masked image (14-px patches blacked out i.i.d. with p 0.6;
 *      PAPO only); (c) frozen reference, original image. (a) and (b) run as one batch of 160 rows. Final
 *      LayerNorm + LM head only on the positions predicting response tokens.
 *   3. advantages: random {0, 1} rewards, GRPO group advantages over groups of 5 (unbiased std, eps 1e-6).
 *   4. update: one AdamW step over all 80 sequences (lr 1e-6, weight decay 0.01, grad-norm clip 1.0),
 *      PAPO-G loss = token-mean clipped surrogate (ε 0.2 / 0.3, dual clip 3) + 0.01·k3 KL to the reference
 *      − 0.02·k3 perception KL (@papo/loss `presets["papo-g"]`; GRPO: `presets.grpo`, no pass (b)).
 * - Output: median over 10 timed steps after 2 warm-up steps (this bench times 20 by default: `--steps`); one
 *   JSON line per config with config, threads, step_ms, rollout_ms, logprob_ms, update_ms, grpo_step_ms,
 *   papo_overhead (= step_ms / grpo_step_ms), papo_overhead_iqr (not in the spec: the first and third
 *   quartiles of the per-pair ratios PAPO step i / GRPO step i, the overhead's spread), grpo_logprob_ms and grpo_update_ms (the GRPO step's stages: where the overhead comes
 *   from), rollout_tok_s (= 80·16 / rollout s), update_gflops (= 22.8 GFLOP small, 131.7 GFLOP medium,
 *   the matmul FLOPs of the update's forward + backward, / update s), update_gflops_executed (not in the spec:
 *   the same for the FLOPs this implementation executes, 20.3 small and 121.6 medium: it skips the last
 *   block's MLP where no loss term reads it).
 * - The peer (eager PyTorch 1.13, OpenBLAS, 2 threads) on this kind of machine: small step ≈ 570–590 ms
 *   (rollout ≈ 130, logprob ≈ 215, update ≈ 230, GRPO ≈ 505, overhead ≈ 1.15, ≈ 100 GFLOP/s);
 *   medium ≈ 2420–2440 ms (rollout ≈ 490, logprob ≈ 950, update ≈ 980, GRPO ≈ 2095, overhead ≈ 1.16,
 *   ≈ 135 GFLOP/s). Machine fp32 peak ≈ 200 GFLOP/s on both cores.
 */
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import * as tf from "@tensorflow/tfjs"
import { describe, initBackend } from "@papo/backend"
import { Native } from "@papo/kernels"
import { Advantage, PapoLoss } from "@papo/loss"
import { Masking } from "@papo/masking"
import { Config, Optimizer, Parallel, Policy, Sampling } from "@papo/model"
import { Mt19937, Xoshiro128 } from "@papo/random"
import { B, dispose, G, models, N, TP, TR } from "./lib/workload.js"
import { args, flag, names } from "./lib/args.js"
import { median, quantile } from "./lib/stats.js"

const configsToRun = names.length > 0 ? names : (["small", "medium"] as const)
const timedSteps = flag("--steps", 20)
const warmup = flag("--warmup", 2)
const threads = flag("--threads", 2)
const cpu = args.includes("--cpu")
if (threads !== 1 && threads !== 2) throw new Error(`--threads must be 1 or 2, got ${threads}`)
const updateGflop = { small: 22.8, medium: 131.7 } as const
/**
 * The matmul GFLOP our update executes: the spec's count less the last block's MLP on the 40 of 56 positions per
 * sequence that no loss term reads (`@papo/model` skips them: `lastBlockAt`), forward and both backward products
 * (3 × 2 × N·40 × 2·d·dMlp). The spec's `update_gflops` divides the full count, so it flatters a run that skips work;
 * `update_gflops_executed` is the rate the kernels reach.
 */
const executedGflop = (name: "small" | "medium"): number => {
  const c = Config.configs[name]
  const skippedRows = N * (Config.numPatches(c) + TP) // the sequence's positions but the TR that predict responses
  return updateGflop[name] - (3 * 2 * skippedRows * 2 * c.dModel * c.dMlp) / 1e9
}


/** The first and third quartiles of xs, rounded to 3 places: the spread of a per-step ratio. */
const quartiles = (xs: ReadonlyArray<number>): [number, number] => [+quantile(xs, 0.25).toFixed(3), +quantile(xs, 0.75).toFixed(3)]

const choice = await initBackend("wasm")
const backend = describe(threads === 1 && choice.native?.available ? { ...choice, native: Native.configure({ threads: 1 }) } : choice)

const ours = new Map<string, { step_ms: number; rollout_ms: number; update_ms: number }>()
for (const name of configsToRun) {
  const workload = models(name)
  const { config, policy, ref, opt } = workload
  const rng = new Xoshiro128(1)
  const maskRng = Mt19937.seed(2)
  const pixels = new Float32Array(B * 28 * 56).map(() => rng.random())
  const prompts = new Int32Array(B * TP).map(() => rng.nextUint32() % config.vocabSize)
  // Each prompt repeated G times (row b·G + g), so the prefill runs over all 80 sequences.
  const rowPixels = new Float32Array(N * 28 * 56)
  const rowPrompts = new Int32Array(N * TP)
  for (let r = 0; r < N; r++) {
    const b = Math.floor(r / G)
    rowPixels.set(pixels.subarray(b * 28 * 56, (b + 1) * 28 * 56), r * 28 * 56)
    rowPrompts.set(prompts.subarray(b * TP, (b + 1) * TP), r * TP)
  }
  const images = tf.tensor4d(rowPixels, [N, 28, 56, 1])
  const promptIds = tf.tensor2d(rowPrompts, [N, TP], "int32")
  const index = Array.from({ length: N }, (_, r) => `p${Math.floor(r / G)}`)

  // As the trainer does: a worker replica only where it pays (not under the native kernels, which use both cores).
  const team = threads === 2 && Parallel.pays() ? await Parallel.start(policy, { reference: ref, optimizer: opt }) : null
  const rollout = (o: Sampling.SampleOptions) =>
    team ? Parallel.sample(team, images, promptIds, o, rng) : Promise.resolve(Sampling.sample(policy, images, promptIds, o, rng))
  const logProbsOf = (model: "policy" | "reference", b: Policy.Batch) =>
    team ? Parallel.logProbs(team, model, b) : Promise.resolve(Policy.logProbs(model === "policy" ? policy : ref, b))

  const cpuMs = (): number => {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1000
  }
  type Timing = { total: number; rollout: number; logprob: number; update: number; cpu: { total: number; rollout: number; logprob: number; update: number } }
  const step = async (papo: boolean): Promise<Timing> => {
    const c0 = cpuMs()
    const t0 = performance.now()
    const r = await rollout({ groupSize: 1, maxNewTokens: TR, padId: 0, temperature: 1 })
    const t1 = performance.now()
    const c1 = cpuMs()
    let oldLogProbs: tf.Tensor2D, maskedLogProbs: tf.Tensor2D | null = null
    const batch = { images, promptIds, responseIds: r.responseIds }
    if (papo) {
      // (a) and (b) as one batch of 2N rows: original images, then masked ones.
      const masked = Masking.maskBatch({ data: rowPixels, shape: [N, 28, 56, 1] }, Masking.defaults, maskRng).image.data
      const both2 = tf.tidy(() => ({
        images: tf.concat([images, tf.tensor4d(masked, [N, 28, 56, 1])], 0),
        promptIds: tf.concat([promptIds, promptIds], 0),
        responseIds: tf.concat([r.responseIds, r.responseIds], 0)
      }))
      const lp = await logProbsOf("policy", both2)
      ;[oldLogProbs, maskedLogProbs] = tf.split(lp, 2, 0) as [tf.Tensor2D, tf.Tensor2D]
      tf.dispose([lp, both2.images, both2.promptIds, both2.responseIds])
    } else {
      oldLogProbs = await logProbsOf("policy", batch)
    }
    const refLogProbs = await logProbsOf("reference", batch)
    const t2 = performance.now()
    const c2 = cpuMs()
    const rewards = Array.from({ length: N }, () => (rng.random() < 0.5 ? 1 : 0))
    const scores = Advantage.groupAdvantages(rewards, index, { eps: 1e-6 })
    const advantages = tf.tidy(() => tf.mul(tf.tensor2d(Float32Array.from(scores), [N, 1]), r.responseMask))
    const t3 = performance.now()
    const c3 = cpuMs()
    const preset = papo ? PapoLoss.presets["papo-g"] : PapoLoss.presets.grpo
    const inputs = { oldLogProbs, advantages, responseMask: r.responseMask, refLogProbs, maskedLogProbs }
    const out = team
      ? await Parallel.step(team, [{ batch, inputs }], { name: "papo", config: preset })
      : Optimizer.applyGradients(policy, opt, () => PapoLoss.papoLoss({ ...inputs, logProbs: Policy.logProbs(policy, batch) }, preset).loss)
    if (out.skipped) throw new Error("update skipped: non-finite gradient")
    const t4 = performance.now()
    const c4 = cpuMs()
    tf.dispose([r.responseIds, r.responseMask, oldLogProbs, refLogProbs, advantages, ...(maskedLogProbs ? [maskedLogProbs] : [])])
    return {
      total: t4 - t0,
      rollout: t1 - t0,
      logprob: t2 - t1,
      update: t4 - t3,
      cpu: { total: c4 - c0, rollout: c1 - c0, logprob: c2 - c1, update: c4 - c3 }
    }
  }

  const papoRuns: Array<Timing> = []
  const grpoRuns: Array<Timing> = []
  for (let i = 0; i < warmup; i++) {
    await step(true)
    await step(false)
  }
  const tensors = tf.memory().numTensors
  for (let i = 0; i < timedSteps; i++) {
    papoRuns.push(await step(true))
    grpoRuns.push(await step(false))
  }
  if (tf.memory().numTensors !== tensors) throw new Error(`tensor leak: ${tensors} → ${tf.memory().numTensors}`)
  const stepMs = median(papoRuns.map((s) => s.total))
  const grpoMs = median(grpoRuns.map((s) => s.total))
  const rolloutMs = median(papoRuns.map((s) => s.rollout))
  const updateMs = median(papoRuns.map((s) => s.update))
  console.log(
    JSON.stringify({
      config: name,
      backend,
      threads,
      replicas: team ? 2 : 1,
      step_ms: +stepMs.toFixed(1),
      rollout_ms: +rolloutMs.toFixed(1),
      logprob_ms: +median(papoRuns.map((s) => s.logprob)).toFixed(1),
      update_ms: +updateMs.toFixed(1),
      grpo_step_ms: +grpoMs.toFixed(1),
      papo_overhead: +(stepMs / grpoMs).toFixed(3),
      papo_overhead_iqr: quartiles(papoRuns.map((s, i) => s.total / grpoRuns[i]!.total)),
      grpo_logprob_ms: +median(grpoRuns.map((s) => s.logprob)).toFixed(1),
      grpo_update_ms: +median(grpoRuns.map((s) => s.update)).toFixed(1),
      rollout_tok_s: Math.round((N * TR) / (rolloutMs / 1000)),
      update_gflops: +(updateGflop[name] / (updateMs / 1000)).toFixed(1),
      update_gflops_executed: +(executedGflop(name) / (updateMs / 1000)).toFixed(1)
    })
  )
  if (cpu) {
    const m = (f: (t: Timing) => number, runs: Array<Timing>) => +median(runs.map(f)).toFixed(1)
    console.log(
      JSON.stringify({
        config: name,
        threads,
        measure: "cpu_ms",
        step_ms: m((t) => t.cpu.total, papoRuns),
        rollout_ms: m((t) => t.cpu.rollout, papoRuns),
        logprob_ms: m((t) => t.cpu.logprob, papoRuns),
        update_ms: m((t) => t.cpu.update, papoRuns),
        grpo_step_ms: m((t) => t.cpu.total, grpoRuns)
      })
    )
  }
  if (team) await Parallel.stop(team)
  tf.dispose([images, promptIds])
  dispose(workload)
  ours.set(name, { step_ms: stepMs, rollout_ms: rolloutMs, update_ms: updateMs })
}

// The peer in the same run: eager PyTorch on 2 threads (bench/papo_step_torch.py), where torch is installed.
if (!args.includes("--no-peer")) {
  // The first python3 with torch: $PAPO_PYTHON, then PATH's, then the system one (Debian's python3-torch).
  const python = [process.env["PAPO_PYTHON"], "python3", "/usr/bin/python3"].find((p) => p && spawnSync(p, ["-c", "import torch"]).status === 0) ?? "python3"
  // The fastest peer measured here: OpenBLAS-OpenMP (Debian's libopenblas0-openmp, where installed), which shares
  // torch's OpenMP pool, loaded for the peer alone; else OpenBLAS-pthread on --threads with torch's pool at one
  // thread. An explicit LD_LIBRARY_PATH or OPENBLAS_NUM_THREADS wins (bench/README.md, "Threads").
  const openmp = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
  const env = process.env["LD_LIBRARY_PATH"] === undefined && existsSync(`${openmp}/libblas.so.3`) ? { ...process.env, LD_LIBRARY_PATH: openmp } : process.env
  const peer = spawnSync(python, ["bench/papo_step_torch.py", ...configsToRun, "--threads", String(threads), "--steps", String(timedSteps), "--warmup", String(warmup)], {
    encoding: "utf8",
    env
  })
  if (peer.status !== 0) {
    console.error(`peer skipped: ${python} bench/papo_step_torch.py failed (${(peer.stderr || String(peer.error)).trim().split("\n").pop()})`)
  } else {
    for (const line of peer.stdout.trim().split("\n")) {
      console.log(line)
      const p = JSON.parse(line) as { config: string; step_ms: number; rollout_ms: number; update_ms: number }
      const o = ours.get(p.config)
      if (o) {
        const ratio = (k: "step_ms" | "rollout_ms" | "update_ms") => +(o[k] / p[k]).toFixed(3)
        console.log(JSON.stringify({ config: p.config, ratio_vs_pytorch: { step: ratio("step_ms"), rollout: ratio("rollout_ms"), update: ratio("update_ms") } }))
      }
    }
  }
}
