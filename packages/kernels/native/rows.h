// Row-wise and element-wise kernels of the transformer block for the @papo/kernels addon (see README.md,
// "Row kernels"): each one replaces a chain of wasm kernels (one pass over memory instead of five to nine).
#pragma once
#include <cstdint>

namespace papo {

enum class RowOp : int {
  Gelu = 0,           // out0 = x·σ(x·(a·x² + b)) (tanh-GELU written exactly through σ);  in0 = x
  GeluGrad = 1,       // out0 = dy·(s + x·s(1 − s)·(3a·x² + b));  in0 = x, in1 = dy
  LayerNorm = 2,      // out0 = (x − mean)·rstd·γ + β per row, rstd = 1/√(var + 1e-5);  in0 = x, in1 = γ, in2 = β
  LayerNormGrad = 3,  // out0 = dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·γ;  out1 = dy·x̂;  in0 = x, in1 = γ, in2 = dy
};
constexpr int kRowOps = 4;

// One kernel over `rows × cols` dense row-major floats; γ and β hold `cols` values.
struct RowJob {
  RowOp op;
  int64_t rows, cols;
  const float* in[3];
  float* out[2];
};

// Runs `j` on up to `threads` threads, split by whole rows. Each element's value depends only on its row's
// inputs, never on where a split falls or which thread runs it: results are bit-identical for any thread
// count, and the generic and AVX2 paths compute the same values (no fused multiply-adds).
void rows(const RowJob& j, int threads);

// An element-wise finish of a matrix product's output (sgemm.h's Gemm::epilogue), computed exactly as the
// separate kernel would compute it from the stored product (the same bits); also the GELU row kernels:
enum class Epilogue : int {
  None = 0,
  Add = 1,       // out = c + in (a residual added to the product)
  Gelu = 2,      // out = gelu(c) (out may be c: the product is then replaced by its GELU; in unused)
  GeluGrad = 3,  // out = geluGrad(x = in, dy = c) (the product is the GELU output's gradient)
};
// On `rows` rows of `cols` elements, row r of c, in and out at r·ld (out may be c, in place). One pass, 8 lanes
// at a time on AVX2, each element computed alone: any cut into tiles or rows gives the same bits.
void epilogue(Epilogue op, const float* c, const float* in, float* out, int64_t ld, int64_t rows, int64_t cols);

// out[j] = Σ_i x[i·cols + j] over the rows: each block of 256 rows summed in double in row order, the blocks'
// sums added in block order, rounded to float once. The blocks depend on the shape only, and whole blocks are
// shared between threads: the same bits on any thread count.
void column_sums(const float* x, int64_t rows, int64_t cols, float* out, int threads);

// The softmax rows of the fused attention (attention.cc), compiled like the row kernels (the generic and AVX2
// paths give the same bits).
// y[0, valid) = softmax(x[0, valid)), y[valid, n) = 0 (as after adding −1e9 to them); x may be y.
void softmax_row(const float* x, float* y, int64_t n, int64_t valid);
// dx = y·dy − y·Σ_j(y·dy) over the n columns.
void softmax_grad_row(const float* y, const float* dy, float* dx, int64_t n);

// The LayerNorm backward of a pre-norm residual sublayer `y = x + f(LN(x))` in one pass over its rows, with the
// sublayer's parameter-gradient column sums taken on the way (rows.cc, after column_sums):
//   dx      = LayerNormGrad(x, γ, da).dx + dy   (the residual's gradient dy added, as a separate Add would)
//   dgamma  = column_sums(da·x̂),  dbeta = column_sums(da),  dy_sums = column_sums(dy)
// with LayerNormGrad's per-element arithmetic and column_sums's blocks of 256 rows and order: the same bits as
// the separate kernels, on any thread count (threads share whole blocks). `da` is LN(x)'s gradient, `dy` y's.
struct LayerNormResidualGrad {
  int64_t rows, cols;
  const float *x, *gamma, *da, *dy;
  float *dx, *dgamma, *dbeta, *dy_sums;
};
void layer_norm_residual_grad(const LayerNormResidualGrad& j, int threads);

}  // namespace papo
