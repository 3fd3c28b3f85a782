/**
 * Invariants of the loss as fast-check properties (issue 14), one invariant per property. Each was run
 * once against a deliberately broken implementation and failed there (see the package README).
 * Tensor-heavy properties use few runs; every float arbitrary is bounded.
 */
import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import { Advantage, Aggregation, Entropy, Kl, PapoLoss, PerceptionKl, PolicyLoss, Schedule } from "../src/index.js"
import { close, mask, matrix, prcpConfig, read, shape, t2 } from "./arbitraries.js"


/** A batch with log-probs spread wide enough to reach the clamps, and both ratios' clip regions. */
const wideBatch = shape.chain(({ b, t }) =>
  fc.record({
    logProbs: matrix(b, t, -30, 0),
    other: matrix(b, t, -30, 0),
    rowAdvantages: fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: b, maxLength: b }),
    mask: mask(b, t)
  })
)

const readAll = (x: tf.Tensor) => x.arraySync() as Array<Array<number>>
const broadcast = (rowAdvantages: ReadonlyArray<number>, m: ReadonlyArray<ReadonlyArray<number>>) =>
  m.map((r, i) => r.map((v) => v * rowAdvantages[i]!))

// --- perception KL --------------------------------------------------------------------------------

test("KL_prcp is ≥ 0, and exactly 0 when both images give the same log-probs", () => {
  fc.assert(
    fc.property(wideBatch, ({ logProbs, other, mask: m }) => {
      tf.tidy(() => {
        const differ = PerceptionKl.perceptionKl({ logProbs: t2(logProbs), maskedLogProbs: t2(other), responseMask: t2(m), coef: 0.02 }, prcpConfig)
        assert.ok(read(differ.klPrcpLoss) >= 0, `KL_prcp ${read(differ.klPrcpLoss)}`)
        assert.ok(readAll(differ.perTokenKl).flat().every((v) => v >= 0))
        const same = PerceptionKl.perceptionKl({ logProbs: t2(logProbs), maskedLogProbs: t2(logProbs), responseMask: t2(m), coef: 0.02 }, prcpConfig)
        assert.equal(read(same.klPrcpLoss), 0)
      })
    }),
    { numRuns: 30 }
  )
})

test("the clipped KL_prcp stays within [0, c] per token and in aggregate", () => {
  fc.assert(
    fc.property(wideBatch, fc.double({ min: 0.01, max: 5, noNaN: true }), ({ logProbs, other, mask: m }, c) => {
      tf.tidy(() => {
        const out = PerceptionKl.perceptionKl(
          { logProbs: t2(logProbs), maskedLogProbs: t2(other), responseMask: t2(m), coef: 0.02 },
          { ...prcpConfig, useKlPrcpClipping: true, klPrcpClipping: c }
        )
        const cf = Math.fround(c)
        assert.ok(readAll(out.perTokenKlFinal).flat().every((v) => v >= 0 && v <= cf), `clip ${c}`)
        const agg = read(out.klPrcpLoss)
        assert.ok(agg >= 0 && agg <= cf * (1 + 1e-6), `aggregate ${agg} vs ${c}`)
      })
    }),
    { numRuns: 30 }
  )
})

test("the token top-p mask keeps a fraction p of each row's valid tokens (within one token), the largest always", () => {
  const row = fc.uniqueArray(fc.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 12 })
  fc.assert(
    fc.property(fc.array(row, { minLength: 1, maxLength: 4 }), fc.double({ min: 0.05, max: 1, noNaN: true }), fc.nat(), (rows, p, pad) => {
      // valid tokens first, then padding with values that must not matter
      const t = Math.max(...rows.map((r) => r.length)) + (pad % 3)
      const values = rows.map((r) => [...r.map((v) => v / 100), ...Array.from({ length: t - r.length }, (_, j) => 50 - j)])
      const valid = rows.map((r) => Array.from({ length: t }, (_, j) => (j < r.length ? 1 : 0)))
      const kept = tf.tidy(() => readAll(PerceptionKl.tokenTopPMask(t2(values), t2(valid), p)))
      rows.forEach((r, i) => {
        const n = r.length
        const k = kept[i]!.slice(0, n).filter((v) => v === 1).length
        assert.ok(Math.abs(k / n - p) <= 1 / n + 1e-6, `row ${i}: kept ${k} of ${n} at p=${p}`)
        assert.equal(kept[i]![r.indexOf(Math.max(...r))], 1, "the largest KL is kept")
      })
    }),
    { numRuns: 60 }
  )
})

// --- KL estimators --------------------------------------------------------------------------------

test("the vocabulary KL is unchanged by a constant added to either side's logits", () => {
  fc.assert(
    fc.property(matrix(2, 5, -8, 8), matrix(2, 5, -8, 8), fc.double({ min: -30, max: 30, noNaN: true }), (p, q, c) => {
      tf.tidy(() => {
        const base = readAll(Kl.fullVocabularyKl(t2(p), t2(q)).expandDims(1)).flat()
        const shiftedP = readAll(Kl.fullVocabularyKl(tf.add(t2(p), c), t2(q)).expandDims(1)).flat()
        const shiftedQ = readAll(Kl.fullVocabularyKl(t2(p), tf.add(t2(q), c)).expandDims(1)).flat()
        base.forEach((v, i) => {
          close(shiftedP[i]!, v, 1e-3, `P + ${c}`)
          close(shiftedQ[i]!, v, 1e-3, `Q + ${c}`)
        })
      })
    }),
    { numRuns: 20 }
  )
})

test("k3 is clamped to [0, 10] for any pair of log-probs", () => {
  fc.assert(
    fc.property(matrix(2, 4, -60, 0), matrix(2, 4, -60, 0), (a, b) => {
      const v = tf.tidy(() => readAll(Kl.lowVarKl(t2(a), t2(b)))).flat()
      assert.ok(v.every((x) => x >= 0 && x <= 10), `${v}`)
    }),
    { numRuns: 40 }
  )
})

// --- policy loss ----------------------------------------------------------------------------------

const pgConfig: PolicyLoss.PolicyLossConfig = { clipRatioLow: 0.2, clipRatioHigh: 0.3, clipRatioDual: 3, lossAggMode: "token" }

test("dual clip: a token with a negative advantage loses at most −A·C", () => {
  fc.assert(
    fc.property(wideBatch, fc.double({ min: 1.01, max: 10, noNaN: true }), ({ logProbs, other, rowAdvantages, mask: m }, dual) => {
      const adv = broadcast(rowAdvantages, m)
      const loss = tf.tidy(() =>
        readAll(PolicyLoss.policyLoss({ logProbs: t2(logProbs), oldLogProbs: t2(other), advantages: t2(adv), responseMask: t2(m) }, { ...pgConfig, clipRatioDual: dual }).perTokenLoss)
      )
      adv.forEach((r, i) => r.forEach((a, j) => {
        if (a < 0) assert.ok(loss[i]![j]! <= -a * dual * (1 + 1e-6) + 1e-6, `A=${a}, C=${dual}: ${loss[i]![j]}`)
      }))
    }),
    { numRuns: 40 }
  )
})

test("clip fractions are in [0, 1]", () => {
  fc.assert(
    fc.property(wideBatch, ({ logProbs, other, rowAdvantages, mask: m }) => {
      const { higher, lower } = tf.tidy(() => {
        const out = PolicyLoss.policyLoss({ logProbs: t2(logProbs), oldLogProbs: t2(other), advantages: t2(broadcast(rowAdvantages, m)), responseMask: t2(m) }, pgConfig)
        return { higher: read(out.metrics.pg_clipfrac_higher), lower: read(out.metrics.pg_clipfrac_lower) }
      })
      for (const f of [higher, lower]) assert.ok(f >= 0 && f <= 1, `${f}`)
    }),
    { numRuns: 40 }
  )
})

// --- advantages -----------------------------------------------------------------------------------

/** Rewards of `groups` groups of `size` responses, ids g0, g1, …, rows interleaved. */
const grouped = fc.record({ groups: fc.integer({ min: 1, max: 4 }), size: fc.integer({ min: 2, max: 6 }) }).chain(({ groups, size }) =>
  fc.record({
    // multiples of 1/64: scaling them neither underflows nor loses the differences between them
    rewards: fc.array(fc.integer({ min: -320, max: 320 }).map((k) => k / 64), { minLength: groups * size, maxLength: groups * size }),
    ids: fc.constant(Array.from({ length: groups * size }, (_, i) => `g${i % groups}`))
  })
)

test("advantages follow their rows under any permutation of the batch", () => {
  fc.assert(
    fc.property(grouped, fc.nat(), ({ rewards, ids }, seed) => {
      const order = rewards.map((_, i) => i).sort((a, b) => ((a * 7919 + seed) % 101) - ((b * 7919 + seed) % 101) || a - b)
      const base = Advantage.groupAdvantages(rewards, ids)
      const permuted = Advantage.groupAdvantages(order.map((i) => rewards[i]!), order.map((i) => ids[i]!))
      order.forEach((i, k) => close(permuted[k]!, base[i]!, 1e-9, `row ${i}`))
    }),
    { numRuns: 100 }
  )
})

test("group-std advantages are unchanged by a positive scaling of the rewards", () => {
  fc.assert(
    fc.property(grouped, fc.double({ min: 0.01, max: 100, noNaN: true }), ({ rewards, ids }, s) => {
      const base = Advantage.groupAdvantages(rewards, ids, { eps: 0 })
      const scaled = Advantage.groupAdvantages(rewards.map((r) => r * s), ids, { eps: 0 })
      base.forEach((v, i) => close(scaled[i]!, v, 1e-7, `×${s} row ${i}`))
    }),
    { numRuns: 100 }
  )
})

test("a group of equal rewards gets advantage 0, in every scaling", () => {
  fc.assert(
    fc.property(fc.double({ min: -5, max: 5, noNaN: true }), fc.integer({ min: 2, max: 8 }), fc.array(fc.double({ min: -5, max: 5, noNaN: true }), { minLength: 2, maxLength: 6 }), (r, n, others) => {
      const rewards = [...Array.from({ length: n }, () => r), ...others]
      const ids = [...Array.from({ length: n }, () => "same"), ...others.map(() => "other")]
      for (const scaling of Advantage.advantageScalings) {
        const a = Advantage.groupAdvantages(rewards, ids, { scaling })
        for (let i = 0; i < n; i++) assert.equal(a[i], 0, `${scaling}: r=${r}`)
      }
    }),
    { numRuns: 100 }
  )
})

// --- aggregation and entropy ----------------------------------------------------------------------

/** Values clustered around a centre at least 2 from 0 (a wrong denominator leaves their range), and a mask. */
const clustered = shape.chain(({ b, t }) =>
  fc.integer({ min: 2, max: 20 }).chain((k) => fc.constantFrom(-k, k)).chain((c) => fc.record({ logProbs: matrix(b, t, c - 0.5, c + 0.5), mask: mask(b, t) }))
)

test("a mean aggregate lies between the smallest and the largest valid value", () => {
  fc.assert(
    fc.property(clustered, fc.constantFrom<Aggregation.LossAggMode>("token", "seq", "token-mean", "seq-mean-token-mean"), ({ logProbs, mask: m }, mode) => {
      // padding holds values far outside the valid range: it must not pull the aggregate
      const values = logProbs.map((r, i) => r.map((v, j) => (m[i]![j] === 1 ? v : 1e6)))
      const validRows = values.map((r, i) => r.filter((_, j) => m[i]![j] === 1)).filter((r) => r.length > 0)
      const flat = validRows.flat().map(Math.fround)
      const agg = tf.tidy(() => read(Aggregation.averageLoss(t2(values), t2(m), mode)))
      // "seq" averages over every row, an all-padding row counting 0
      const lo = Math.min(...flat, ...(mode.startsWith("seq") && validRows.length < m.length ? [0] : []))
      const hi = Math.max(...flat, ...(mode.startsWith("seq") && validRows.length < m.length ? [0] : []))
      assert.ok(agg >= lo - 1e-5 * (1 + Math.abs(lo)) && agg <= hi + 1e-5 * (1 + Math.abs(hi)), `${mode}: ${agg} not in [${lo}, ${hi}]`)
    }),
    { numRuns: 60 }
  )
})

test("the vocabulary entropy lies in [0, log V]", () => {
  fc.assert(
    fc.property(fc.integer({ min: 2, max: 12 }).chain((v) => matrix(3, v, -20, 20)), fc.double({ min: 0.2, max: 3, noNaN: true }), (logits, temp) => {
      const v = logits[0]!.length
      const h = tf.tidy(() => Array.from(Entropy.trueEntropy(t2(logits), temp).dataSync()))
      h.forEach((x) => assert.ok(x >= -1e-5 && x <= Math.log(v) + 1e-5, `H=${x}, V=${v}`))
    }),
    { numRuns: 40 }
  )
})

// --- schedule -------------------------------------------------------------------------------------

test("the annealed γ moves monotonically from its start to its end value, with a discount in [0, 1]", () => {
  const coef = fc.double({ min: 0, max: 0.1, noNaN: true })
  fc.assert(
    fc.property(coef, coef, fc.double({ min: 0.05, max: 1, noNaN: true }), fc.integer({ min: 1, max: 200 }), (a, b, ratio, steps) => {
      const schedule: Schedule.KlPrcpSchedule = { kind: "annealing", klPrcpCoef: Math.max(a, b, 1e-3), startValue: a, endValue: b, annealingRatio: ratio, trainingSteps: steps }
      let prev = Schedule.klPrcpCoefAt(schedule, 1).coef
      close(prev, a, 1e-12, "γ at step 1")
      for (let k = 1; k <= steps + 3; k++) {
        const { coef: c, discountRatio } = Schedule.klPrcpCoefAt(schedule, k)
        assert.ok(discountRatio >= 0 && discountRatio <= 1, `discount ${discountRatio} at step ${k}`)
        assert.ok(b >= a ? c >= prev - 1e-15 : c <= prev + 1e-15, `γ not monotone at step ${k}: ${prev} → ${c}`)
        assert.ok(c >= Math.min(a, b) - 1e-15 && c <= Math.max(a, b) + 1e-15, `γ ${c} outside [${a}, ${b}]`)
        prev = c
      }
      close(prev, b, 1e-12, "γ after the annealing")
    }),
    { numRuns: 100 }
  )
})

// --- total loss -----------------------------------------------------------------------------------

/** A full loss input, log-probs within the clamps, advantages per row. */
const lossBatch = shape.chain(({ b, t }) =>
  fc.record({
    logProbs: matrix(b, t, -4, -0.1),
    old: matrix(b, t, -4, -0.1),
    ref: matrix(b, t, -4, -0.1),
    masked: matrix(b, t, -4, -0.1),
    rowAdvantages: fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: b, maxLength: b }),
    mask: mask(b, t)
  })
)
type Rows = Array<Array<number>>
const inputOf = (x: { logProbs: Rows; old: Rows; ref: Rows; masked: Rows; rowAdvantages: Array<number>; mask: Rows }) => ({
  logProbs: t2(x.logProbs),
  oldLogProbs: t2(x.old),
  refLogProbs: t2(x.ref),
  maskedLogProbs: t2(x.masked),
  advantages: t2(broadcast(x.rowAdvantages, x.mask)),
  responseMask: t2(x.mask)
})
const presetNames = Object.keys(PapoLoss.presets) as Array<PapoLoss.PresetName>

test("the total loss is invariant to padding and to the order of the rows, in every preset", () => {
  fc.assert(
    fc.property(lossBatch, fc.constantFrom(...presetNames), fc.constantFrom<Aggregation.LossAggMode>("token", "seq"), fc.integer({ min: 1, max: 3 }), (x, preset, mode, extra) => {
      const config = { ...PapoLoss.presets[preset], lossAggMode: mode }
      const loss = (y: typeof x) => tf.tidy(() => read(PapoLoss.papoLoss(inputOf(y), config).loss))
      const base = loss(x)
      // padding: `extra` more columns, masked out, holding junk
      const pad = (m: Rows, v: number) => m.map((r) => [...r, ...Array.from({ length: extra }, () => v)])
      const padded = { ...x, logProbs: pad(x.logProbs, -0.5), old: pad(x.old, -9), ref: pad(x.ref, -0.01), masked: pad(x.masked, -7), mask: pad(x.mask, 0) }
      close(loss(padded), base, 1e-4, `${preset}/${mode} padded`)
      // row order: reversed
      const rev = <A>(a: Array<A>) => [...a].reverse()
      const reversed = { logProbs: rev(x.logProbs), old: rev(x.old), ref: rev(x.ref), masked: rev(x.masked), rowAdvantages: rev(x.rowAdvantages), mask: rev(x.mask) }
      close(loss(reversed), base, 1e-4, `${preset}/${mode} reversed`)
    }),
    { numRuns: 15 }
  )
})

test("PAPO's loss is GRPO's minus γ·KL_prcp plus the Double Entropy terms, on the same batch", () => {
  fc.assert(
    fc.property(lossBatch, fc.double({ min: 0.001, max: 0.1, noNaN: true }), fc.double({ min: 0, max: 0.1, noNaN: true }), fc.double({ min: 0, max: 0.1, noNaN: true }), (x, gamma, eta1, eta2) => {
      tf.tidy(() => {
        const input = inputOf(x)
        // GRPO has no masked branch: its trainer computes no masked log-probs
        const grpo = read(PapoLoss.papoLoss({ ...input, maskedLogProbs: null }, PapoLoss.presets.grpo).pgLoss)
        const papoConfig = { ...PapoLoss.presets.grpo, useKlPrcp: true, klPrcpCoef: gamma, useOriEntropyLoss: true, oriEntropyLossCoef: eta1, useAugEntropyLoss: true, augEntropyLossCoef: eta2 }
        const papo = read(PapoLoss.papoLoss(input, papoConfig).pgLoss)
        // the terms from their definitions: token-mean k3(ℓ, a), and −mean(ℓ), −mean(a) over valid tokens
        const klPrcp = read(Aggregation.maskedMean(Kl.lowVarKl(input.logProbs, input.maskedLogProbs), input.responseMask))
        const entropy = -read(Aggregation.maskedMean(input.logProbs, input.responseMask))
        const augEntropy = -read(Aggregation.maskedMean(input.maskedLogProbs, input.responseMask))
        close(papo, grpo - gamma * klPrcp + eta1 * entropy + eta2 * augEntropy, 1e-5, `γ=${gamma}`)
      })
    }),
    { numRuns: 20 }
  )
})
