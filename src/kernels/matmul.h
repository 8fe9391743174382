// y = x · Wᵀ for a weight matrix stored in any GGML compute type.
//
// Weights stay quantized in memory: the kernel decodes one block (decode,
// n_tokens == 1) or one tile of rows (prefill) at a time into thread-local
// scratch and runs SIMD f32 dot products on it (F16 rows are widened as loaded).
// The SIMD code is compiled for every Highway target (AVX-512, AVX2, SSE4, ...,
// scalar) and picked at run time.
#pragma once
#include <cstddef>
#include <cstdint>

#include "common/ggml_types.h"
#include "common/thread_pool.h"

namespace heed {

// A 2-D weight tensor: n_out rows of n_in elements (GGUF ne[0] = n_in, ne[1] = n_out).
struct WeightView {
  DType type;
  int64_t n_in;
  int64_t n_out;
  const uint8_t* data;
  size_t row_stride_bytes;
};

// How activations enter the product with a non-F32 weight matrix.
enum class MatmulMode {
  // Float activations against exactly dequantized weights (matches golden/dequant_ref).
  Exact,
  // Activations converted to the weight type's vec_dot_type first and integer
  // block dot products, as ggml-cpu does (matches llama.cpp's logits); see qdot.h.
  LlamaCpp,
};

// y[t][r] = sum_c W[r][c] * x[t][c] for x [n_tokens][n_in] and y [n_tokens][n_out]
// (row strides n_in and n_out). Accumulates in f32; rows are split over the pool.
// Throws heed::Error for an unsupported type or an n_in that is not a multiple of
// the block size, a row stride smaller than a row, or rows not aligned to 4
// bytes (F32) / 2 bytes (all other types), as GGUF data always is.
// F32 weights use float activations in both modes (ggml keeps F32 x F32).
void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            MatmulMode mode = MatmulMode::Exact);

// out[i] = f32_to_fp16(x[i]) for i < n, vectorised (F16C on x86): the same bits.
void round_to_half(const float* x, uint16_t* out, int64_t n);

// matmul for F16 weights and activations given as f16 bits x_half [n_tokens][n_in]
// (ggml's f16 path, whose activations are rounded to f16 first): the prefill
// kernel of qdot_matmul, the same sums as matmul on the widened activations.
void half_prefill(const WeightView& w, const uint16_t* x_half, int64_t n_tokens, float* y,
                  ThreadPool& pool);

// Dequantizes row r into out[n_in] (embedding lookup with quantized token_embd).
void dequantize_row_of(const WeightView& w, int64_t r, float* out);

// Name of the instruction set matmul dispatches to on this CPU (e.g. "AVX3"), for logs and
// benchmarks.
const char* matmul_target_name();

}  // namespace heed
