import assert from "node:assert/strict"
import { test } from "node:test"
import { Tokenizer } from "@papo/model"
import { answerTokens } from "../src/Evaluate.js"

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
