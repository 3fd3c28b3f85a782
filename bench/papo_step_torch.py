"""The papo-step workload in eager PyTorch: the peer that bench/papo-step.ts is compared with.

python3 bench/papo_step_torch.py [small|medium ...] [--threads N] [--steps N] [--warmup N]

One PAPO-G step of a small vision-language decoder, and the same step as GRPO, exactly as bench/papo-step.ts
describes it (configs, B = 16 prompts x G = 5 rollouts, KV-cache rollout of 16 tokens, log-prob passes with the
final LayerNorm and head on the response-predicting positions only, PAPO-G loss, AdamW). Prints one JSON line
per config with the same fields as bench/papo-step.ts. Needs torch (Debian: apt-get install python3-torch).
"""
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F

CONFIGS = {"small": dict(d=128, layers=4, heads=4, mlp=512), "medium": dict(d=256, layers=6, heads=8, mlp=1024)}
UPDATE_GFLOP = {"small": 22.8, "medium": 131.7}
B, G, N, TP, TR, V, NP, P = 16, 5, 80, 8, 16, 32, 32, 7


def arg(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


class Block(torch.nn.Module):
    def __init__(self, d, h, f):
        super().__init__()
        self.h = h
        self.ln1, self.ln2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
        self.qkv, self.proj = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
        self.fc, self.out = torch.nn.Linear(d, f), torch.nn.Linear(f, d)

    def forward(self, x, cache=None):
        # x (N, T, d); cache: (k, v) each (N, H, S, hd) of earlier positions, or None
        n, t, d = x.shape
        hd = d // self.h
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(n, t, self.h, hd).transpose(1, 2) for z in (q, k, v))  # (N, H, T, hd)
        if cache is not None:
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        s = q @ k.transpose(-1, -2) / math.sqrt(hd)  # (N, H, T, S)
        if t > 1:
            s = s + torch.full((t, t), float("-inf")).triu(1)
        o = (s.softmax(-1) @ v).transpose(1, 2).reshape(n, t, d)
        x = x + self.proj(o)
        return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh")), (k, v)


class Policy(torch.nn.Module):
    def __init__(self, d, layers, heads, mlp):
        super().__init__()
        self.patch = torch.nn.Linear(P * P, d)
        self.image_pos = torch.nn.Parameter(torch.randn(NP, d) * 0.02)
        self.tok = torch.nn.Parameter(torch.randn(V, d) * 0.02)
        self.text_pos = torch.nn.Parameter(torch.randn(32, d) * 0.02)
        self.blocks = torch.nn.ModuleList(Block(d, heads, mlp) for _ in range(layers))
        self.ln_f = torch.nn.LayerNorm(d)
        self.head = torch.nn.Linear(d, V, bias=False)

    def embed(self, images, ids, offset):
        n = ids.shape[0]
        parts = []
        if images is not None:  # (N, 28, 56) -> 32 row-major 7x7 patches
            patches = images.view(n, 4, P, 8, P).permute(0, 1, 3, 2, 4).reshape(n, NP, P * P)
            parts.append(self.patch(patches) + self.image_pos)
        parts.append(self.tok[ids] + self.text_pos[offset:offset + ids.shape[1]])
        return torch.cat(parts, 1)

    def run(self, x, caches=None):
        new = []
        for i, blk in enumerate(self.blocks):
            x, kv = blk(x, None if caches is None else caches[i])
            new.append(kv)
        return x, new

    def logits(self, x):
        return self.head(self.ln_f(x))


def sample(policy, images, prompts):
    out = []
    x, caches = policy.run(policy.embed(images, prompts, 0))
    tok = torch.multinomial(policy.logits(x[:, -1]).softmax(-1), 1)
    out.append(tok)
    for i in range(1, TR):
        x, caches = policy.run(policy.embed(None, tok, TP + i - 1), caches)
        tok = torch.multinomial(policy.logits(x[:, -1]).softmax(-1), 1)
        out.append(tok)
    return torch.cat(out, 1)


def log_probs(policy, images, prompts, responses):
    ids = torch.cat([prompts, responses], 1)
    x, _ = policy.run(policy.embed(images, ids, 0))
    lp = policy.logits(x[:, NP + TP - 1:NP + TP + TR - 1]).log_softmax(-1)  # positions 39..54
    return lp.gather(-1, responses.unsqueeze(-1)).squeeze(-1)


def k3(d):
    d = d.clamp(-20, 20)
    return (d.exp() - d - 1).clamp(max=10)


def step(policy, ref, opt, images, masked, prompts, papo):
    t0 = time.perf_counter()
    with torch.no_grad():
        responses = sample(policy, images, prompts)
    t1 = time.perf_counter()
    with torch.no_grad():
        if papo:
            both = log_probs(policy, torch.cat([images, masked()]), torch.cat([prompts, prompts]), torch.cat([responses, responses]))
            old, masked_lp = both[:N], both[N:]
        else:
            old = log_probs(policy, images, prompts, responses)
        ref_lp = log_probs(ref, images, prompts, responses)
    t2 = time.perf_counter()
    rewards = (torch.rand(B, G) < 0.5).float()
    adv = ((rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-6)).view(N, 1)
    t3 = time.perf_counter()
    lp = log_probs(policy, images, prompts, responses)
    ratio = (lp - old).exp()
    pg = torch.max(-adv * ratio, -adv * ratio.clamp(1 - 0.2, 1 + 0.3))
    pg = torch.where(adv < 0, torch.min(pg, -adv * 3.0), pg)
    loss = pg.mean() + 0.01 * k3(ref_lp - lp).mean()
    if papo:
        loss = loss - 0.02 * k3(masked_lp - lp).mean()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
    opt.step()
    t4 = time.perf_counter()
    return dict(total=t4 - t0, rollout=t1 - t0, logprob=t2 - t1, update=t4 - t3)


def main():
    threads, steps, warmup = arg("--threads", 2), arg("--steps", 10), arg("--warmup", 2)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    names = [a for a in sys.argv[1:] if a in CONFIGS] or list(CONFIGS)
    for name in names:
        policy = Policy(**CONFIGS[name])
        ref = Policy(**CONFIGS[name])
        ref.load_state_dict(policy.state_dict())
        ref.requires_grad_(False)
        opt = torch.optim.AdamW(policy.parameters(), lr=1e-6, weight_decay=0.01)
        prompt_images = torch.rand(B, 28, 56)
        images = prompt_images.repeat_interleave(G, 0)
        prompts = torch.randint(0, V, (B, TP)).repeat_interleave(G, 0)

        def masked():  # 14-px patches blacked out i.i.d. with probability 0.6
            keep = (torch.rand(N, 2, 1, 4, 1) >= 0.6).float()
            return (images.view(N, 2, 14, 4, 14) * keep).view(N, 28, 56)

        for _ in range(warmup):
            step(policy, ref, opt, images, masked, prompts, True)
            step(policy, ref, opt, images, masked, prompts, False)
        papo_runs, grpo_runs = [], []
        for _ in range(steps):
            papo_runs.append(step(policy, ref, opt, images, masked, prompts, True))
            grpo_runs.append(step(policy, ref, opt, images, masked, prompts, False))
        med = lambda key, runs: statistics.median(r[key] for r in runs) * 1000
        step_ms, grpo_ms, rollout_ms, update_ms = med("total", papo_runs), med("total", grpo_runs), med("rollout", papo_runs), med("update", papo_runs)
        print(json.dumps(dict(
            config=name, impl=f"pytorch {torch.__version__}", threads=threads, step_ms=round(step_ms, 1),
            rollout_ms=round(rollout_ms, 1), logprob_ms=round(med("logprob", papo_runs), 1), update_ms=round(update_ms, 1),
            grpo_step_ms=round(grpo_ms, 1), papo_overhead=round(step_ms / grpo_ms, 3),
            rollout_tok_s=round(N * TR / (rollout_ms / 1000)), update_gflops=round(UPDATE_GFLOP[name] / (update_ms / 1000), 1))),
            flush=True)


if __name__ == "__main__":
    main()
