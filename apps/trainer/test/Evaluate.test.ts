import assert from "node:assert/strict"
import { test } from "node:test"
import { Tokenizer } from "@papo/model"
import { Effect } from "effect"
import * as Evaluate from "../src/Evaluate.js"
import { answerTokens } from "../src/Evaluate.js"
import { Verifier } from "../src/Verifier.js"
import { fixture, session } from "./helpers.js"

const flagged = (text: string, T = 24) => {
  const tok = Tokenizer.make()
  const ids = Tokenizer.encode(tok, text)
  const flags = answerTokens(tok, ids, T, ids.length)
  return Array.from(ids).flatMap((id, j) => (flags[j] === 1 ? [tok.tokens[id]] : []))
}

test("answer tokens: the reading the thinking states first, and the boxed answer", () => {
  assert.deepEqual(flagged("<think>7+3=10</think>\\boxed{10}"), ["7", "1", "0"])
  assert.deepEqual(flagged("<think>12+3=15</think>\\boxed{15}"), ["1", "2", "1", "5"])
})

test("answer tokens: nothing outside them, nothing past the response's length", () => {
  assert.deepEqual(flagged("10</think>\\boxed{10}"), ["1", "0"])
  assert.deepEqual(flagged("<think>+3=4</think>"), [])
  const tok = Tokenizer.make()
  const ids = Tokenizer.encode(tok, "<think>7+3=10</think>\\boxed{10}")
  assert.deepEqual(Array.from(answerTokens(tok, ids, 24, 2)).filter((f) => f === 1).length, 1)
})

test("evaluate: k responses per question, classified per subset; the same seed gives the same result", async () => {
  const f = await fixture(["trainer.valAvgK=3"])
  const run = () =>
    Effect.runPromise(Effect.scoped(Effect.flatMap(session(f), (s) => Evaluate.evaluate(s, f.config, f.test, { step: 7, split: "test" }))).pipe(
      Effect.provide(Verifier.mathRuler)
    ))
  const r = await run()
  assert.deepEqual([r.step, r.k, r.probeK], [7, 3, 1])
  assert.equal(r.overall.questions, f.test.length)
  assert.equal(r.overall.responses, 3 * f.test.length)
  const subsets = Object.values(r.subsets)
  assert.equal(subsets.reduce((n, s) => n + s.responses, 0), r.overall.responses, "the subsets partition the responses")
  const outcomes = Object.values(r.overall.outcomes).reduce((a, b) => a + b, 0)
  assert.equal(outcomes, r.overall.responses, "every response has one outcome")
  assert.deepEqual(await run(), r)
})
