// Node-API entry points of @papo/kernels. Every kernel reads and writes an ArrayBuffer in place (the tfjs wasm
// backend's heap): JS passes byte offsets and element strides, nothing is copied.
#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attend.h"
#include "attention.h"
#include "optim.h"
#include "rows.h"
#include "sgemm.h"

namespace {

int threads = 2;

napi_value throw_error(napi_env env, const std::string& message) {
  napi_throw_error(env, "PAPO_KERNELS", message.c_str());
  return nullptr;
}

napi_value string(napi_env env, const char* s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

napi_value number(napi_env env, double x) {
  napi_value v;
  napi_create_double(env, x, &v);
  return v;
}

// Highest element index + 1 that a strided matrix view touches.
int64_t extent(int64_t batch, int64_t batch_stride, int64_t rows, int64_t rs, int64_t cols, int64_t cs) {
  if (batch == 0 || rows == 0 || cols == 0) return 0;
  return (batch - 1) * batch_stride + (rows - 1) * rs + (cols - 1) * cs + 1;
}

// The ArrayBuffer `v` (the wasm heap) as floats, or false after throwing.
bool heap_of(napi_env env, napi_value v, const char* fn, float** base, int64_t* floats) {
  void* heap = nullptr;
  size_t bytes = 0;
  if (napi_get_arraybuffer_info(env, v, &heap, &bytes) != napi_ok) {
    throw_error(env, std::string(fn) + ": argument 0 must be an ArrayBuffer");
    return false;
  }
  *base = static_cast<float*>(heap);
  *floats = static_cast<int64_t>(bytes / sizeof(float));
  return true;
}

// The Float64Array `v` of `count` integer parameters, non-negative before index `signed_from` and ≥ −1 from
// it on; nullptr after throwing.
const double* params_of(napi_env env, napi_value v, const char* fn, size_t count, size_t signed_from) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_float64_array ||
      length < count) {
    throw_error(env, std::string(fn) + ": its parameters must be a Float64Array of " + std::to_string(count));
    return nullptr;
  }
  const double* p = static_cast<const double*>(data);
  for (size_t i = 0; i < count; i++)
    if (!std::isfinite(p[i]) || p[i] != std::floor(p[i]) || p[i] < (i < signed_from ? 0 : -1)) {
      throw_error(env, std::string(fn) + ": parameter " + std::to_string(i) + " is not an integer in range");
      return nullptr;
    }
  return p;
}

// The arguments (heap: ArrayBuffer, params: Float64Array) of an entry point over the wasm heap.
struct HeapCall {
  float* base = nullptr;
  int64_t floats = 0;
  const double* p = nullptr;
};

// Reads (heap, params) for entry point `fn` (see params_of); false after throwing.
bool heap_call(napi_env env, napi_callback_info info, const char* fn, size_t count, size_t signed_from, HeapCall* c) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 2) {
    throw_error(env, std::string(fn) + ": takes (heap, params)");
    return false;
  }
  return heap_of(env, argv[0], fn, &c->base, &c->floats) && (c->p = params_of(env, argv[1], fn, count, signed_from)) != nullptr;
}

// gemm(heap: ArrayBuffer, p: Float64Array): see src/Native.ts (`GemmParams`) for the layout of p. With
// `epilogue`, p has three more values: the epilogue op (rows.h's Epilogue) and the byte offsets of its input
// and output (−1: none), each a dense m × n like C.
napi_value gemm_call(napi_env env, napi_callback_info info, bool epilogue) {
  const char* fn = epilogue ? "gemmEpilogue" : "gemm";
  HeapCall call;
  if (!heap_call(env, info, fn, epilogue ? 17 : 14, 13, &call)) return nullptr;
  const auto [base, floats, p] = call;
  const int64_t batch = p[0], m = p[1], n = p[2], k = p[3];
  const int64_t a_off = p[4], a_batch = p[5], a_rs = p[6], a_cs = p[7];
  const int64_t b_off = p[8], b_batch = p[9], b_rs = p[10], b_cs = p[11];
  const int64_t c_off = p[12], bias_off = p[13];
  const auto inside = [&](int64_t byte_off, int64_t count) {
    return byte_off % 4 == 0 && byte_off / 4 + count <= floats;
  };
  if (!inside(a_off, extent(batch, a_batch, m, a_rs, k, a_cs)) || !inside(b_off, extent(batch, b_batch, k, b_rs, n, b_cs)) ||
      !inside(c_off, batch * m * n) || (bias_off >= 0 && !inside(bias_off, n)))
    return throw_error(env, "gemm: an operand lies outside the heap or is not 4-byte aligned");
  papo::Gemm g{batch, m, n, k,
               base + a_off / 4, a_batch, a_rs, a_cs,
               base + b_off / 4, b_batch, b_rs, b_cs,
               base + c_off / 4, m * n, n,
               bias_off >= 0 ? base + bias_off / 4 : nullptr};
  if (epilogue) {
    const int64_t op = p[14], in_off = p[15], out_off = p[16];
    const bool needs_in = op == static_cast<int>(papo::Epilogue::Add) || op == static_cast<int>(papo::Epilogue::GeluGrad);
    if (op > static_cast<int>(papo::Epilogue::GeluGrad) || batch != 1)
      return throw_error(env, "gemmEpilogue: unknown epilogue " + std::to_string(op) + " or a batch other than 1");
    if ((needs_in ? in_off < 0 || !inside(in_off, m * n) : in_off >= 0) || (out_off >= 0 && !inside(out_off, m * n)))
      return throw_error(env, "gemmEpilogue: the epilogue's operands lie outside the heap, are not 4-byte aligned or do not match the op");
    g.epilogue = static_cast<papo::Epilogue>(op);
    g.e_in = in_off >= 0 ? base + in_off / 4 : nullptr;
    g.e_out = out_off >= 0 ? base + out_off / 4 : nullptr;
  }
  papo::gemm(g, threads);
  return nullptr;
}

napi_value gemm(napi_env env, napi_callback_info info) { return gemm_call(env, info, false); }

// --- fused products (an epilogue in the product's store) and column sums ---

napi_value gemm_epilogue(napi_env env, napi_callback_info info) { return gemm_call(env, info, true); }

// columnSums(heap: ArrayBuffer, p: Float64Array [rows, cols, x, out]): out[j] = Σ_i x[i, j] (byte offsets).
napi_value column_sums(napi_env env, napi_callback_info info) {
  HeapCall call;
  if (!heap_call(env, info, "columnSums", 4, 4, &call)) return nullptr;
  const auto [base, floats, p] = call;
  const int64_t n_rows = p[0], cols = p[1], x_off = p[2], out_off = p[3];
  if (x_off % 4 != 0 || x_off / 4 + n_rows * cols > floats || out_off % 4 != 0 || out_off / 4 + cols > floats)
    return throw_error(env, "columnSums: an operand lies outside the heap or is not 4-byte aligned");
  papo::column_sums(base + x_off / 4, n_rows, cols, base + out_off / 4, threads);
  return nullptr;
}

// --- end fused products ---

// rows(heap: ArrayBuffer, p: Float64Array [op, rows, cols, in0, in1, in2, out0, out1]): byte
// offsets, −1 for an operand the op does not take. See rows.h for the ops and their operands.
napi_value rows(napi_env env, napi_callback_info info) {
  HeapCall call;
  if (!heap_call(env, info, "rows", 8, 3, &call)) return nullptr;
  const auto [base, floats, p] = call;
  if (p[0] >= papo::kRowOps) return throw_error(env, "rows: unknown op " + std::to_string(static_cast<int>(p[0])));
  const auto op = static_cast<papo::RowOp>(static_cast<int>(p[0]));
  const int64_t n_rows = p[1], cols = p[2];
  // Per op, each operand's size: 2 = rows × cols, 1 = cols (γ, β), 0 = not taken.
  static const int sizes[papo::kRowOps][5] = {
      {2, 0, 0, 2, 0}, {2, 2, 0, 2, 0}, {2, 1, 1, 2, 0}, {2, 1, 2, 2, 2}};
  float* ptr[5];
  for (int i = 0; i < 5; i++) {
    const int kind = sizes[static_cast<int>(op)][i];
    const int64_t off = p[3 + i], count = kind == 2 ? n_rows * cols : kind == 1 ? cols : 0;
    if (kind == 0) {
      ptr[i] = nullptr;
      continue;
    }
    if (off < 0 || off % 4 != 0 || off / 4 + count > floats)
      return throw_error(env, "rows: operand " + std::to_string(i) + " lies outside the heap or is not 4-byte aligned");
    ptr[i] = base + off / 4;
  }
  papo::rows({op, n_rows, cols, {ptr[0], ptr[1], ptr[2]}, {ptr[3], ptr[4]}}, threads);
  return nullptr;
}

// Float32Array's data and length in floats, or nullptr.
float* floats_of(napi_env env, napi_value v, int64_t* length) {
  napi_typedarray_type type;
  size_t n = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, &type, &n, &data, nullptr, nullptr) != napi_ok || type != napi_float32_array) return nullptr;
  *length = static_cast<int64_t>(n);
  return static_cast<float*>(data);
}

// attend(qkv, k, v, out: Float32Array, p: Float64Array [rows, heads, hd, capacity, pos]): see attend.h.
napi_value attend(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int64_t n[4] = {};
  float* f[4] = {};
  for (int i = 0; i < 4; i++)
    if (argc < 5 || (f[i] = floats_of(env, argv[i], &n[i])) == nullptr)
      return throw_error(env, "attend: arguments 0-3 must be Float32Arrays");
  const double* p = params_of(env, argv[4], "attend", 5, 5);
  if (p == nullptr) return nullptr;
  const int64_t rows = p[0], heads = p[1], hd = p[2], cap = p[3], pos = p[4], d = heads * hd;
  if (pos >= cap || n[0] < rows * 3 * d || n[1] < rows * heads * cap * hd || n[2] < rows * heads * cap * hd || n[3] < rows * d)
    return throw_error(env, "attend: an array is too short for its shape, or the cache is full");
  papo::attend({rows, heads, hd, cap, pos, f[0], f[1], f[2], f[3]}, threads);
  return nullptr;
}

// attention(heap: ArrayBuffer, p: Float64Array [backward, n, t, heads, hd, q, k, v, ld_in, o, ld_o, dq, dk,
// dv, ld_grad, probs]): byte offsets and row strides (in floats) of attention.h's operands; o is the output of
// the forward (backward = 0) and dO of the backward (1), which writes dq, dk, dv (−1 in the forward); probs
// [n, heads, t, t] is written by the forward (−1: not kept) and read by the backward.
napi_value attention(napi_env env, napi_callback_info info) {
  HeapCall call;
  if (!heap_call(env, info, "attention", 16, 11, &call)) return nullptr;
  const auto [base, floats, p] = call;
  const bool backward = p[0] != 0;
  const int64_t n = p[1], t = p[2], heads = p[3], hd = p[4], d = heads * hd, ld_in = p[8], ld_o = p[10], ld_grad = p[14];
  const auto at = [&](int64_t byte_off, int64_t ld) -> float* {
    const int64_t count = extent(1, 0, n * t, ld, d, 1);
    if (byte_off < 0 || byte_off % 4 != 0 || byte_off / 4 + count > floats || (count > 0 && ld < d)) return nullptr;
    return base + byte_off / 4;
  };
  const float *q = at(p[5], ld_in), *k = at(p[6], ld_in), *v = at(p[7], ld_in);
  float* o = at(p[9], ld_o);
  float *dq = backward ? at(p[11], ld_grad) : nullptr, *dk = backward ? at(p[12], ld_grad) : nullptr, *dv = backward ? at(p[13], ld_grad) : nullptr;
  const int64_t probs_off = p[15], probs_count = n * heads * t * t;
  const bool probs_ok = probs_off < 0 ? !backward : probs_off % 4 == 0 && probs_off / 4 + probs_count <= floats;
  if (q == nullptr || k == nullptr || v == nullptr || o == nullptr || (backward && (dq == nullptr || dk == nullptr || dv == nullptr)) || !probs_ok)
    return throw_error(env, "attention: an operand lies outside the heap, is not 4-byte aligned, or has a row stride under heads·hd");
  float* probs = probs_off < 0 ? nullptr : base + probs_off / 4;
  papo::Attention a{n, t, heads, hd, q, k, v, ld_in, o, o, ld_o, dq, dk, dv, ld_grad, probs};
  if (backward) papo::attention_backward(a, threads);
  else papo::attention_forward(a, threads);
  return nullptr;
}

// --- decode (attend.h) ---

// A rollout's native decoder (attend.h's Decoder) behind a JS external: freed by decoderFree, or when collected.
struct DecoderHandle {
  std::unique_ptr<papo::Decoder> decoder;
};
const napi_type_tag kDecoderTag = {0x7061706f64656364ULL, 0x6f6465722d763100ULL};

void free_decoder(napi_env, void* data, void*) { delete static_cast<DecoderHandle*>(data); }

// The handle `v`, or nullptr after throwing (not a decoder's).
DecoderHandle* handle_of(napi_env env, napi_value v, const char* fn) {
  bool tagged = false;
  void* data = nullptr;
  if (napi_check_object_type_tag(env, v, &kDecoderTag, &tagged) != napi_ok || !tagged || napi_get_value_external(env, v, &data) != napi_ok) {
    throw_error(env, std::string(fn) + ": argument 0 must be a decoder from decoderCreate");
    return nullptr;
  }
  return static_cast<DecoderHandle*>(data);
}

// The decoder behind `v`, or nullptr after throwing (not a decoder, or freed).
papo::Decoder* decoder_of(napi_env env, napi_value v, const char* fn) {
  DecoderHandle* h = handle_of(env, v, fn);
  if (h != nullptr && h->decoder == nullptr) throw_error(env, std::string(fn) + ": the decoder was freed");
  return h != nullptr ? h->decoder.get() : nullptr;
}

// Reads the N arguments of decoder entry point `fn` (`usage` names them), a decoder first: the decoder, or
// nullptr after throwing.
template <size_t N>
papo::Decoder* decoder_call(napi_env env, napi_callback_info info, const char* fn, const char* usage, napi_value (&argv)[N]) {
  size_t argc = N;
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < N) {
    throw_error(env, std::string(fn) + ": takes " + usage);
    return nullptr;
  }
  return decoder_of(env, argv[0], fn);
}

// decoderCreate(heap: ArrayBuffer, p: Float64Array [rows, heads, hd, d_mlp, layers, vocab, positions, capacity,
// then byte offsets: per layer the block's twelve (ln1_g … b_out, as attend.h's Decoder takes them), then ln_f γ, β,
// the head [d, vocab], the token table [vocab, d], the text positions [positions, d]]) → a decoder holding packed
// copies of them.
napi_value decoder_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  float* base = nullptr;
  int64_t floats = 0;
  if (argc < 2) return throw_error(env, "decoderCreate: takes (heap, params)");
  if (!heap_of(env, argv[0], "decoderCreate", &base, &floats)) return nullptr;
  const double* head = params_of(env, argv[1], "decoderCreate", 8, 8);
  if (head == nullptr) return nullptr;
  const papo::DecoderShape s{static_cast<int64_t>(head[0]), static_cast<int64_t>(head[1]), static_cast<int64_t>(head[2]), static_cast<int64_t>(head[3]),
                             static_cast<int64_t>(head[4]), static_cast<int64_t>(head[5]), static_cast<int64_t>(head[6]), static_cast<int64_t>(head[7])};
  for (int i = 0; i < 8; i++)
    if (head[i] < 1) return throw_error(env, "decoderCreate: every size must be at least 1");
  const size_t count = 8 + 12 * s.layers + 5;
  const double* p = params_of(env, argv[1], "decoderCreate", count, count);
  if (p == nullptr) return nullptr;
  const int64_t d = s.heads * s.hd;
  const int64_t layer_sizes[12] = {d, d, d * 3 * d, 3 * d, d * d, d, d, d, d * s.d_mlp, s.d_mlp, s.d_mlp * d, d};
  const int64_t rest[5] = {d, d, d * s.vocab, s.vocab * d, s.positions * d};
  std::vector<const float*> tensors(count - 8);
  for (size_t i = 0; i < tensors.size(); i++) {
    const int64_t j = static_cast<int64_t>(i), off = p[8 + i], size = j < 12 * s.layers ? layer_sizes[j % 12] : rest[j - 12 * s.layers];
    if (off % 4 != 0 || off / 4 + size > floats)
      return throw_error(env, "decoderCreate: tensor " + std::to_string(i) + " lies outside the heap or is not 4-byte aligned");
    tensors[i] = base + off / 4;
  }
  auto* handle = new DecoderHandle{std::make_unique<papo::Decoder>(s, tensors.data())};
  napi_value out;
  napi_create_external(env, handle, free_decoder, nullptr, &out);
  napi_type_tag_object(env, out, &kDecoderTag);
  return out;
}

// decoderFill(decoder, heap: ArrayBuffer, p: Float64Array [layer, k, k_ld, v, v_ld, prompts, length, group]): byte
// offsets of a pass's keys and values (row strides in floats); see Decoder::fill.
napi_value decoder_fill(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  papo::Decoder* dec = decoder_call(env, info, "decoderFill", "(decoder, heap, params)", argv);
  float* base = nullptr;
  int64_t floats = 0;
  if (dec == nullptr || !heap_of(env, argv[1], "decoderFill", &base, &floats)) return nullptr;
  const double* p = params_of(env, argv[2], "decoderFill", 8, 8);
  if (p == nullptr) return nullptr;
  const papo::DecoderShape& s = dec->shape;
  const int64_t layer = p[0], k_off = p[1], k_ld = p[2], v_off = p[3], v_ld = p[4], prompts = p[5], length = p[6], group = p[7], d = s.heads * s.hd;
  if (layer >= s.layers || prompts * group != s.rows || length < 1 || length > s.capacity)
    return throw_error(env, "decoderFill: a layer out of range, prompts × group other than the rows, or a length outside 1 … capacity");
  const auto inside = [&](int64_t off, int64_t ld) { return off % 4 == 0 && ld >= d && off / 4 + (prompts * length - 1) * ld + d <= floats; };
  if (!inside(k_off, k_ld) || !inside(v_off, v_ld))
    return throw_error(env, "decoderFill: the keys or values lie outside the heap, are not 4-byte aligned or have a row stride under heads·hd");
  dec->fill(layer, base + k_off / 4, k_ld, base + v_off / 4, v_ld, prompts, length, group);
  return nullptr;
}

// decoderStep(decoder, ids: Int32Array [rows], offset: number, logits: Float32Array [rows·vocab]): see Decoder::step.
napi_value decoder_step(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  papo::Decoder* dec = decoder_call(env, info, "decoderStep", "(decoder, ids, offset, logits)", argv);
  if (dec == nullptr) return nullptr;
  const papo::DecoderShape& s = dec->shape;
  napi_typedarray_type type;
  size_t n_ids = 0;
  void* ids = nullptr;
  double offset = -1;
  int64_t n_logits = 0;
  float* logits = floats_of(env, argv[3], &n_logits);
  if (napi_get_typedarray_info(env, argv[1], &type, &n_ids, &ids, nullptr, nullptr) != napi_ok || type != napi_int32_array ||
      static_cast<int64_t>(n_ids) < s.rows || napi_get_value_double(env, argv[2], &offset) != napi_ok || offset != std::floor(offset) ||
      logits == nullptr || n_logits < s.rows * s.vocab)
    return throw_error(env, "decoderStep: takes an Int32Array of the rows' ids, an integer offset and a Float32Array of rows × vocab");
  const char* error = dec->step(static_cast<const int32_t*>(ids), static_cast<int64_t>(offset), logits, threads);
  if (error != nullptr) return throw_error(env, std::string("decoderStep: ") + error + " (" + std::to_string(s.capacity) + " positions, " +
                                                    std::to_string(s.positions) + " text positions, vocabulary " + std::to_string(s.vocab) + ")");
  return nullptr;
}

// decoderFree(decoder): frees its memory now (a freed decoder refuses every call).
napi_value decoder_free(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  napi_get_cb_info(env, info, &argc, &arg, nullptr, nullptr);
  if (argc < 1) return throw_error(env, "decoderFree: takes (decoder)");
  DecoderHandle* h = handle_of(env, arg, "decoderFree");
  if (h != nullptr) h->decoder.reset();
  return nullptr;
}

// --- end decode ---

// --- optimizer (optim.h) ---

// The Float64Array `v` as doubles with their count, or nullptr after throwing.
const double* doubles_of(napi_env env, napi_value v, const char* fn, size_t* length) {
  napi_typedarray_type type;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, &type, length, &data, nullptr, nullptr) != napi_ok || type != napi_float64_array) {
    throw_error(env, std::string(fn) + ": argument 1 must be a Float64Array");
    return nullptr;
  }
  return static_cast<const double*>(data);
}

// Reads `count` tensors of `fields` byte offsets and a size each (table[first...]) over the heap into `out`
// (field order: p, g, m, v, p_out, m_out, v_out); false after throwing.
bool optim_tensors(napi_env env, const char* fn, float* base, int64_t floats, const double* table, size_t length, size_t first,
                   int fields, std::vector<papo::OptimTensor>* out) {
  const double count = length > 0 ? table[0] : -1;
  if (!(count >= 0 && count == std::floor(count) && first + count * (fields + 1) == length)) {
    throw_error(env, std::string(fn) + ": the table's length does not match its tensor count");
    return false;
  }
  for (int64_t i = 0; i < static_cast<int64_t>(count); i++) {
    const double* row = table + first + i * (fields + 1);
    const double size = row[fields];
    float* ptr[7] = {};
    for (int f = 0; f < fields; f++) {
      const double off = row[f];
      if (!(size >= 0 && size == std::floor(size) && off >= 0 && off == std::floor(off) && std::fmod(off, 4) == 0 &&
            off / 4 + size <= floats)) {
        throw_error(env, std::string(fn) + ": tensor " + std::to_string(i) + " lies outside the heap or is not 4-byte aligned");
        return false;
      }
      ptr[f] = base + static_cast<int64_t>(off) / 4;
    }
    out->push_back({ptr[0], ptr[1], ptr[2], ptr[3], ptr[4], ptr[5], ptr[6], static_cast<int64_t>(size)});
  }
  return true;
}

// Reads the (heap, table) of optimizer entry point `fn`: a header of `first` values (the tensor count first),
// then `fields` byte offsets and a size per tensor, into `t`; the table, or nullptr after throwing.
const double* optim_call(napi_env env, napi_callback_info info, const char* fn, size_t first, int fields,
                         std::vector<papo::OptimTensor>* t) {
  size_t argc = 2, length = 0;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  float* base = nullptr;
  int64_t floats = 0;
  if (argc < 2) {
    throw_error(env, std::string(fn) + ": takes (heap, table)");
    return nullptr;
  }
  if (!heap_of(env, argv[0], fn, &base, &floats)) return nullptr;
  const double* table = doubles_of(env, argv[1], fn, &length);
  if (table == nullptr) return nullptr;
  if (length < first) {
    throw_error(env, std::string(fn) + ": the table is shorter than its header");
    return nullptr;
  }
  return optim_tensors(env, fn, base, floats, table, length, first, fields, t) ? table : nullptr;
}

// sumSquares(heap: ArrayBuffer, table: Float64Array [count, (offset, size) × count]) → Σ g² (double).
napi_value sum_squares(napi_env env, napi_callback_info info) {
  std::vector<papo::OptimTensor> t;
  if (optim_call(env, info, "sumSquares", 1, 1, &t) == nullptr) return nullptr;
  return number(env, papo::sum_squares(t.data(), static_cast<int>(t.size()), threads));
}

// adamw(heap: ArrayBuffer, table: Float64Array [count, clip, β1, 1 − β1, β2, 1 − β2, bias1, bias2, ε, decay, lr,
// (p, g, m, v, pOut, mOut, vOut byte offsets, size) × count]): see optim.h.
napi_value adamw(napi_env env, napi_callback_info info) {
  std::vector<papo::OptimTensor> t;
  const double* table = optim_call(env, info, "adamw", 11, 7, &t);
  if (table == nullptr) return nullptr;
  const auto f = [&](int i) { return static_cast<float>(table[i]); };
  const papo::AdamWConstants c{f(1), f(2), f(3), f(4), f(5), f(6), f(7), f(8), f(9), f(10)};
  papo::adamw(t.data(), static_cast<int>(t.size()), c, threads);
  return nullptr;
}

// --- end optimizer ---

// configure({ threads?: 1 | 2, generic?: true }) → { isa, threads }
napi_value configure(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  napi_get_cb_info(env, info, &argc, &arg, nullptr, nullptr);
  napi_valuetype t = napi_undefined;
  if (argc >= 1) napi_typeof(env, arg, &t);
  if (t == napi_object) {
    bool has = false;
    napi_has_named_property(env, arg, "threads", &has);
    if (has) {
      napi_value v;
      double x = 0;
      napi_get_named_property(env, arg, "threads", &v);
      if (napi_get_value_double(env, v, &x) != napi_ok || (x != 1 && x != 2))
        return throw_error(env, "configure: threads must be 1 or 2");
      threads = static_cast<int>(x);
    }
    napi_has_named_property(env, arg, "generic", &has);
    if (has) {
      napi_value v;
      bool generic = false;
      napi_get_named_property(env, arg, "generic", &v);
      napi_get_value_bool(env, v, &generic);
      if (generic) papo::force_generic();
    }
  }
  napi_value out;
  napi_create_object(env, &out);
  napi_set_named_property(env, out, "isa", string(env, papo::isa_name()));
  napi_set_named_property(env, out, "threads", number(env, threads));
  return out;
}

}  // namespace

// --- the LayerNorm backward of a residual sublayer with its column sums (rows.h's LayerNormResidualGrad) ---

namespace {

// layerNormResidualGrad(heap: ArrayBuffer, p: Float64Array [rows, cols, x, gamma, da, dy, dx, dgamma, dbeta, dySums]):
// byte offsets; x, da, dy, dx are rows × cols, the other four cols.
napi_value layer_norm_residual_grad(napi_env env, napi_callback_info info) {
  HeapCall call;
  if (!heap_call(env, info, "layerNormResidualGrad", 10, 10, &call)) return nullptr;
  const auto [base, floats, p] = call;
  const int64_t n_rows = p[0], cols = p[1];
  for (int i = 2; i < 10; i++) {
    const int64_t count = i == 2 || i == 4 || i == 5 || i == 6 ? n_rows * cols : cols;
    if (static_cast<int64_t>(p[i]) % 4 != 0 || static_cast<int64_t>(p[i]) / 4 + count > floats)
      return throw_error(env, "layerNormResidualGrad: an operand lies outside the heap or is not 4-byte aligned");
  }
  const auto at = [&](int i) { return base + static_cast<int64_t>(p[i]) / 4; };
  papo::layer_norm_residual_grad({n_rows, cols, at(2), at(3), at(4), at(5), at(6), at(7), at(8), at(9)}, threads);
  return nullptr;
}

}  // namespace

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"gemm", nullptr, gemm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"rows", nullptr, rows, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"attend", nullptr, attend, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"configure", nullptr, configure, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"attention", nullptr, attention, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sumSquares", nullptr, sum_squares, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamw", nullptr, adamw, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"gemmEpilogue", nullptr, gemm_epilogue, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"columnSums", nullptr, column_sums, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"decoderCreate", nullptr, decoder_create, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"decoderFill", nullptr, decoder_fill, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"decoderStep", nullptr, decoder_step, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"decoderFree", nullptr, decoder_free, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"layerNormResidualGrad", nullptr, layer_norm_residual_grad, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
