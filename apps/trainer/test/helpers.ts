// Shared setup of the Step, Session and Evaluate tests: the tiny model on a small digit task, its data
// loaded as `papo train` loads it, and a session warmed up with a few SFT steps so rewards vary.
import { initBackend } from "@papo/backend"
import { Optimizer } from "@papo/model"
import { Effect, type Scope } from "effect"
import type { Config } from "../src/Config.js"
import { loadConfig } from "../src/ConfigLoad.js"
import type { Example } from "../src/Example.js"
import * as Rollout from "../src/Rollout.js"
import * as Session from "../src/Session.js"
import * as Sft from "../src/Sft.js"
import { loadData } from "../src/Train.js"
import { Verifier } from "../src/Verifier.js"

export const tinyOverrides = [
  "worker.actor.model=tiny",
  "trainer.backend=wasm",
  "trainer.logger=quiet",
  "trainer.threads=1",
  "data.trainSize=64",
  "data.testSize=8",
  "data.rolloutBatchSize=4",
  "worker.rollout.n=4",
  "worker.actor.globalBatchSize=4",
  "worker.actor.microBatchSizePerDeviceForUpdate=8",
  "worker.actor.optim.lr=1e-3",
  "trainer.valAvgK=2"
]

export interface Fixture {
  readonly config: Config
  readonly train: ReadonlyArray<Example>
  readonly test: ReadonlyArray<Example>
}

/** The config (`preset=…` first, then the tiny overrides, then the others) with its data loaded. */
export const fixture = (overrides: ReadonlyArray<string> = []): Promise<Fixture> =>
  Effect.runPromise(Effect.gen(function*() {
    const given = yield* loadConfig({
      overrides: [...overrides.filter((o) => o.startsWith("preset=")), ...tinyOverrides, ...overrides.filter((o) => !o.startsWith("preset="))]
    })
    yield* Effect.promise(() => initBackend("wasm"))
    const data = yield* loadData(given)
    return { config: data.config, train: data.train.examples, test: data.test.examples }
  }).pipe(Effect.provide(Verifier.mathRuler)))

/** A scoped session for a fixture (with a reference when the config has a reference KL). */
export const session = (f: Fixture, threads = 1): Effect.Effect<Session.Session, Session.SessionError | Session.CheckpointIncompatibleError, Scope.Scope> =>
  Session.acquire(f.config, {
    text: Session.textOf(f.config, [...f.train, ...f.test]),
    optim: { lr: f.config.worker.actor.optim.lr },
    withReference: f.config.algorithm.useKlLoss
  }, threads)

/** `steps` SFT steps of 16 gold traces at lr 1e-2 on the session's policy, with an optimizer of their own. */
export const warmUp = async (s: Session.Session, f: Fixture, steps: number): Promise<void> => {
  const sft = Session.make({ ...s, optimizer: Optimizer.adamW(s.policy, { lr: 1e-2 }) })
  for (let i = 0; i < steps; i++) {
    const examples = Rollout.samplePrompts(f.train, i * 16, 16, 1)
    await Sft.sftStep(sft, Sft.goldRows(sft, f.config, examples, s.modelConfig.maxResponseLength))
  }
  Optimizer.dispose(sft.optimizer)
}
