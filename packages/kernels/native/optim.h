// The optimizer's kernels for the @papo/kernels addon (see README.md, "Optimizer"): the global gradient
// norm and one AdamW step over every parameter of a model, each in one call instead of several wasm kernels
// per parameter.
#pragma once
#include <cstdint>

namespace papo {

// One tensor of `size` floats: where it is read (and, for AdamW, where its new values go).
struct OptimTensor {
  const float* p;  // parameter (AdamW) or gradient (sum of squares)
  const float* g;  // gradient
  const float* m;  // first moment
  const float* v;  // second moment
  float* p_out;
  float* m_out;
  float* v_out;
  int64_t size;
};

// AdamW's constants, each rounded to float once, as the wasm kernels see them as scalar operands.
struct AdamWConstants {
  float clip, beta1, one_minus_beta1, beta2, one_minus_beta2, bias1, bias2, eps, decay, lr;
};

// Σ g² over the gradients `t[i].p` in double precision. The sum is cut into fixed chunks of every tensor
// (independent of the thread count), each summed in a fixed order, and the chunk sums are added in order:
// the result is bit-identical for any thread count.
double sum_squares(const OptimTensor* t, int count, int threads);

// One AdamW step, elementwise (each operation rounded to float as written, no fused multiply-adds):
//   g' = g·clip;  m' = m·β1 + g'·(1 − β1);  v' = v·β2 + (g'·g')·(1 − β2);
//   p' = p·decay − ((m'/bias1) / (√(v'/bias2) + ε))·lr,  decay = 1 − lr·wd.
// Outputs may alias their inputs (p_out = p: in place).
void adamw(const OptimTensor* t, int count, const AdamWConstants& c, int threads);

}  // namespace papo
