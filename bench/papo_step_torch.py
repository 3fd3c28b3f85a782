"""The papo-step workload in eager PyTorch: the peer that bench/papo-step.ts is compared with.

python3 bench/papo_step_torch.py [small|medium ...] [--threads N] [--steps N] [--warmup N] [--torch-threads N]

One PAPO-G step of a small vision-language decoder, and the same step as GRPO, exactly as bench/papo-step.ts
describes it (configs, B = 16 prompts x G = 5 rollouts, KV-cache rollout of 16 tokens, log-prob passes with the
final LayerNorm and head on the response-predicting positions only, PAPO-G loss, AdamW). Prints one JSON line
per config with the same fields as bench/papo-step.ts. Needs torch (Debian: apt-get install python3-torch
libopenblas0-pthread).

Threads: this torch (BLAS_INFO=generic) runs every matmul in OpenBLAS, whose own pthread pool is sized by
OPENBLAS_NUM_THREADS when the library loads, so the script sets it to --threads before importing torch (an
explicit OPENBLAS_NUM_THREADS wins). torch's OpenMP pool (the element-wise ops) gets --torch-threads: by default
1 under OpenBLAS-pthread, whose own spinning pool would fight torch's (see bench/README.md), and --threads under
OpenBLAS-OpenMP (`libopenblas0-openmp`, loaded with LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp),
which shares torch's pool. The JSON line says which: `blas`, `threads` (OpenBLAS) and `torch_threads`.

Written as a performance-aware PyTorch user would for this torch build (see bench/README.md, "The PyTorch
peer"): the same arithmetic, shapes and precision, in eager mode (no torch.jit), with
- the causal mask built once and added by the attention's batched matmul (`baddbmm`, scale as its alpha);
- a preallocated KV cache written in place, and one-token decode attention as broadcast multiply + sum:
  without MKL, CPU `bmm` runs one BLAS call per (row, head) matrix, 320 calls for 64 KFLOP;
- tanh-GELU as x * sigmoid(2u) (u the tanh argument: 0.5 (1 + tanh u) = sigmoid(2u)) with its derivative
  written out: Debian's build computes `tanh` with scalar libm, 3.5x slower than its vectorized `sigmoid`;
- torch.inference_mode for the no-grad passes and the multi-tensor (foreach) AdamW.
"""
import json
import math
import os
import statistics
import sys
import time


def arg(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


os.environ.setdefault("OPENBLAS_NUM_THREADS", str(arg("--threads", 2)))
import torch  # noqa: E402 (after OPENBLAS_NUM_THREADS)
import torch.nn.functional as F

# The OpenBLAS build this process loaded ("openmp" or "pthread"), from its mapped path.
with open("/proc/self/maps") as maps:
    BLAS = next(("openmp" if "openmp" in line else "pthread" for line in maps if "libopenblas" in line), "unknown")

CONFIGS = {"small": dict(d=128, layers=4, heads=4, mlp=512), "medium": dict(d=256, layers=6, heads=8, mlp=1024)}
UPDATE_GFLOP = {"small": 22.8, "medium": 131.7}
B, G, N, TP, TR, V, NP, P = 16, 5, 80, 8, 16, 32, 32, 7
T = NP + TP + TR  # 56 tokens; the rollout's cache holds the first T - 1
GELU_C = 2 * math.sqrt(2 / math.pi)  # 2u = GELU_C * (x + 0.044715 x^3)


class TanhGelu(torch.autograd.Function):
    """tanh-GELU, 0.5 x (1 + tanh u) with u = sqrt(2/pi) (x + 0.044715 x^3), computed as x * sigmoid(2u)."""

    @staticmethod
    def forward(ctx, x):
        s = torch.sigmoid_((x * x).mul_(GELU_C * 0.044715).add_(GELU_C).mul_(x))
        ctx.save_for_backward(x, s)
        return s * x

    @staticmethod
    def backward(ctx, g):
        # d/dx x s(w) = s + x s (1 - s) w',  w' = GELU_C (1 + 3 * 0.044715 x^2)
        x, s = ctx.saved_tensors
        dw = (x * x).mul_(GELU_C * 3 * 0.044715).add_(GELU_C).mul_(x)
        return (1 - s).mul_(s).mul_(dw).add_(s).mul_(g)


def gelu(x):
    if torch.is_grad_enabled():
        return TanhGelu.apply(x)
    return torch.sigmoid_((x * x).mul_(GELU_C * 0.044715).add_(GELU_C).mul_(x)).mul_(x)


class Block(torch.nn.Module):
    def __init__(self, d, h, f):
        super().__init__()
        self.h = h
        self.ln1, self.ln2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
        self.qkv, self.proj = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
        self.fc, self.out = torch.nn.Linear(d, f), torch.nn.Linear(f, d)

    def heads(self, x):
        # (N, t, d) -> q, k, v each (N, H, t, hd), views of one qkv matmul
        n, t, d = x.shape
        return self.qkv(self.ln1(x)).view(n, t, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)

    def mlp(self, x, o):
        x = x + self.proj(o)
        return x + self.out(gelu(self.fc(self.ln2(x))))

    def forward(self, x, mask, cache=None):
        # x (N, t, d) from position 0, causal over its t positions; cache (k, v), each (N, H, T - 1, hd): filled
        n, t, d = x.shape
        hd = d // self.h
        q, k, v = self.heads(x)
        if cache is not None:
            cache[0][:, :, :t], cache[1][:, :, :t] = k, v
        q, k, v = (z.reshape(n * self.h, t, hd) for z in (q, k, v))
        s = torch.baddbmm(mask[:t, :t], q, k.transpose(1, 2), alpha=1 / math.sqrt(hd))
        o = torch.bmm(s.softmax(-1), v).view(n, self.h, t, hd).transpose(1, 2).reshape(n, t, d)
        return self.mlp(x, o)

    def decode(self, x, cache, pos):
        # x (N, 1, d) at position pos, attending to the cache's positions < pos and itself
        n, _, d = x.shape
        hd = d // self.h
        q, k, v = self.heads(x)
        cache[0][:, :, pos:pos + 1], cache[1][:, :, pos:pos + 1] = k, v
        keys, values = cache[0][:, :, :pos + 1], cache[1][:, :, :pos + 1]  # (N, H, S, hd)
        p = (q * keys).sum(-1).mul_(1 / math.sqrt(hd)).softmax(-1)  # (N, H, S)
        o = (p.unsqueeze(-1) * values).sum(-2)  # (N, H, hd)
        return self.mlp(x, o.view(n, 1, d))


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
        self.register_buffer("mask", torch.full((T, T), float("-inf")).triu(1), persistent=False)

    def embed(self, images, ids, offset):
        text = self.tok[ids] + self.text_pos[offset:offset + ids.shape[1]]
        if images is None:
            return text
        n = ids.shape[0]  # (N, 28, 56) -> 32 row-major 7x7 patches
        patches = images.view(n, 4, P, 8, P).permute(0, 1, 3, 2, 4).reshape(n, NP, P * P)
        return torch.cat([self.patch(patches) + self.image_pos, text], 1)

    def run(self, x, caches=None):
        for i, blk in enumerate(self.blocks):
            x = blk(x, self.mask, None if caches is None else caches[i])
        return x

    def logits(self, x):
        return self.head(self.ln_f(x))


def sample(policy, images, prompts):
    d, h = policy.ln_f.normalized_shape[0], policy.blocks[0].h
    caches = [tuple(torch.empty(N, h, T - 1, d // h) for _ in range(2)) for _ in policy.blocks]
    out = torch.empty(N, TR, dtype=torch.long)
    x = policy.run(policy.embed(images, prompts, 0), caches)
    out[:, :1] = torch.multinomial(policy.logits(x[:, -1]).softmax(-1), 1)
    for i in range(1, TR):
        x = policy.embed(None, out[:, i - 1:i], TP + i - 1)
        for blk, cache in zip(policy.blocks, caches):
            x = blk.decode(x, cache, NP + TP + i - 1)
        out[:, i:i + 1] = torch.multinomial(policy.logits(x[:, -1]).softmax(-1), 1)
    return out


def log_probs(policy, images, prompts, responses):
    ids = torch.cat([prompts, responses], 1)
    x = policy.run(policy.embed(images, ids, 0))
    lp = policy.logits(x[:, NP + TP - 1:T - 1]).log_softmax(-1)  # positions 39..54
    return lp.gather(-1, responses.unsqueeze(-1)).squeeze(-1)


def k3(d):
    d = d.clamp(-20, 20)
    return (d.exp() - d - 1).clamp(max=10)


def step(policy, ref, opt, images, masked, prompts, papo):
    t0 = time.perf_counter()
    with torch.inference_mode():
        responses = sample(policy, images, prompts)
    responses = responses.clone()  # a normal tensor: the update's gather saves it for backward
    t1 = time.perf_counter()
    with torch.inference_mode():
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


def quartiles(xs):
    """The first and third quartiles of xs, as [q1, q3] rounded to 3 places."""
    q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return [round(q1, 3), round(q3, 3)]


def main():
    threads, torch_threads, steps, warmup = arg("--threads", 2), arg("--torch-threads", arg("--threads", 2) if BLAS == "openmp" else 1), arg("--steps", 20), arg("--warmup", 2)
    torch.set_num_threads(torch_threads)
    torch.manual_seed(0)
    names = [a for a in sys.argv[1:] if a in CONFIGS] or list(CONFIGS)
    for name in names:
        policy = Policy(**CONFIGS[name])
        ref = Policy(**CONFIGS[name])
        ref.load_state_dict(policy.state_dict())
        ref.requires_grad_(False)
        opt = torch.optim.AdamW(policy.parameters(), lr=1e-6, weight_decay=0.01, foreach=True)
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
            config=name, impl=f"pytorch {torch.__version__}", blas=f"openblas-{BLAS}", threads=int(os.environ["OPENBLAS_NUM_THREADS"]),
            torch_threads=torch_threads, step_ms=round(step_ms, 1),
            rollout_ms=round(rollout_ms, 1), logprob_ms=round(med("logprob", papo_runs), 1), update_ms=round(update_ms, 1),
            grpo_step_ms=round(grpo_ms, 1), papo_overhead=round(step_ms / grpo_ms, 3),
            papo_overhead_iqr=quartiles([p["total"] / g["total"] for p, g in zip(papo_runs, grpo_runs)]),
            rollout_tok_s=round(N * TR / (rollout_ms / 1000)), update_gflops=round(UPDATE_GFLOP[name] / (update_ms / 1000), 1))),
            flush=True)


if __name__ == "__main__":
    main()
