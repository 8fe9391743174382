// One generic kernel, instantiated per weight type through a BlockDecoder and
// compiled once per Highway target (this file includes itself via foreach_target).
#include "kernels/matmul.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/aligned.h"
#include "heed/error.h"
#include "kernels/fp16.h"
#include "kernels/qdot.h"
#include "kernels/quant.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace heed {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Elements decoded at a time in the decode (GEMV) path: one K-quant super-block
// or eight 32-element blocks, small enough to stay in L1 next to x.
constexpr int64_t kChunk = 256;
// Target bytes of one decoded row tile in the prefill path (fits L2 with x rows).
constexpr int64_t kTileBytes = 96 * 1024;

// Block decoding for the matmul: the scalar layout code from quant.h (compiled
// here for this target, so the compiler may vectorise it), with hand-written
// SIMD versions for the hottest types. All agree with dequantize_row up to
// float rounding (FMA).
template <typename Block>
HWY_INLINE void decode_block_simd(const Block& b, float* y) {
  decode_block(b, y);
}

HWY_INLINE void decode_block_simd(const BlockQ8_0& b, float* y) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<int32_t, decltype(df)> di32;
  const hn::Rebind<int8_t, decltype(df)> di8;
  const auto d = hn::Set(df, fp16_to_f32(b.d));
  const size_t lanes = hn::Lanes(df);
  for (size_t j = 0; j < kQK; j += lanes) {
    const auto q = hn::ConvertTo(df, hn::PromoteTo(di32, hn::LoadU(di8, b.qs + j)));
    hn::StoreU(hn::Mul(q, d), df, y + j);
  }
}

HWY_INLINE void decode_block_simd(const BlockQ4_K& b, float* y) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<int32_t, decltype(df)> di32;
  const hn::Rebind<uint8_t, decltype(df)> du8;
  const float d = fp16_to_f32(b.d);
  const float min = fp16_to_f32(b.dmin);
  const size_t lanes = hn::Lanes(df);
  const auto low_mask = hn::Set(di32, 0xF);
  const uint8_t* q = b.qs;
  for (int is = 0; is < 8; is += 2, q += 32, y += 64) {
    uint8_t sc, m;
    get_scale_min_k4(is, b.scales, &sc, &m);
    const auto d1 = hn::Set(df, d * sc), m1 = hn::Set(df, min * m);
    get_scale_min_k4(is + 1, b.scales, &sc, &m);
    const auto d2 = hn::Set(df, d * sc), m2 = hn::Set(df, min * m);
    for (size_t l = 0; l < 32; l += lanes) {
      const auto bytes = hn::PromoteTo(di32, hn::LoadU(du8, q + l));
      hn::StoreU(hn::MulSub(hn::ConvertTo(df, hn::And(bytes, low_mask)), d1, m1), df, y + l);
      hn::StoreU(hn::MulSub(hn::ConvertTo(df, hn::ShiftRight<4>(bytes)), d2, m2), df, y + 32 + l);
    }
  }
}

// BlockDecoder contract: kBlock = elements per block; decode(row, c0, n, out)
// returns n floats for elements [c0, c0 + n) of the row (c0 and n multiples of
// kBlock), written to `out` or, when already f32, pointing into the row.
template <typename Block, int kElems>
struct QuantDecoder {
  static constexpr int64_t kBlock = kElems;
  static const float* decode(const uint8_t* row, int64_t c0, int64_t n, float* out) {
    const Block* blocks = reinterpret_cast<const Block*>(row) + c0 / kElems;
    for (int64_t b = 0; b < n / kElems; ++b) decode_block_simd(blocks[b], out + b * kElems);
    return out;
  }
};

struct F32Decoder {
  static constexpr int64_t kBlock = 1;
  static const float* decode(const uint8_t* row, int64_t c0, int64_t, float*) {
    return reinterpret_cast<const float*>(row) + c0;
  }
};

struct F16Decoder {
  static constexpr int64_t kBlock = 1;
  static const float* decode(const uint8_t* row, int64_t c0, int64_t n, float* out) {
    const hn::ScalableTag<float> df;
    const hn::Rebind<hwy::float16_t, decltype(df)> dh;
    const auto* src = reinterpret_cast<const hwy::float16_t*>(row) + c0;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
    int64_t i = 0;
    for (; i + lanes <= n; i += lanes)
      hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, src + i)), df, out + i);
    const auto* bits = reinterpret_cast<const uint16_t*>(row) + c0;
    for (; i < n; ++i) out[i] = fp16_to_f32(bits[i]);
    return out;
  }
};

struct BF16Decoder {
  static constexpr int64_t kBlock = 1;
  static const float* decode(const uint8_t* row, int64_t c0, int64_t n, float* out) {
    const hn::ScalableTag<float> df;
    const hn::RebindToUnsigned<decltype(df)> du32;
    const hn::Rebind<uint16_t, decltype(df)> du16;
    const auto* src = reinterpret_cast<const uint16_t*>(row) + c0;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
    int64_t i = 0;
    for (; i + lanes <= n; i += lanes) {
      const auto wide = hn::ShiftLeft<16>(hn::PromoteTo(du32, hn::LoadU(du16, src + i)));
      hn::StoreU(hn::BitCast(df, wide), df, out + i);
    }
    for (; i < n; ++i) out[i] = bf16_to_f32(src[i]);
    return out;
  }
};

// Calls fn(Decoder{}) with the decoder of `type` (validated by the caller).
template <typename Fn>
void with_decoder(DType type, Fn&& fn) {
  switch (type) {
    case DType::F32:
      return fn(F32Decoder{});
    case DType::F16:
      return fn(F16Decoder{});
    case DType::BF16:
      return fn(BF16Decoder{});
    case DType::Q4_0:
      return fn(QuantDecoder<BlockQ4_0, kQK>{});
    case DType::Q4_1:
      return fn(QuantDecoder<BlockQ4_1, kQK>{});
    case DType::Q5_0:
      return fn(QuantDecoder<BlockQ5_0, kQK>{});
    case DType::Q5_1:
      return fn(QuantDecoder<BlockQ5_1, kQK>{});
    case DType::Q8_0:
      return fn(QuantDecoder<BlockQ8_0, kQK>{});
    case DType::Q2_K:
      return fn(QuantDecoder<BlockQ2_K, kQK_K>{});
    case DType::Q3_K:
      return fn(QuantDecoder<BlockQ3_K, kQK_K>{});
    case DType::Q4_K:
      return fn(QuantDecoder<BlockQ4_K, kQK_K>{});
    case DType::Q5_K:
      return fn(QuantDecoder<BlockQ5_K, kQK_K>{});
    case DType::Q6_K:
      return fn(QuantDecoder<BlockQ6_K, kQK_K>{});
    case DType::IQ4_NL:
      return fn(QuantDecoder<BlockIQ4_NL, kQK>{});
    default:
      return;
  }
}

// A vector of weights or activations, widened from f16 where they are kept as halves.
template <class D>
HWY_INLINE auto load_widened(D d, const float* p) {
  return hn::LoadU(d, p);
}
template <class D>
HWY_INLINE auto load_widened(D d, const hwy::float16_t* p) {
  return hn::PromoteTo(d, hn::LoadU(hn::Rebind<hwy::float16_t, D>(), p));
}
HWY_INLINE float widened(float v) {
  return v;
}
HWY_INLINE float widened(hwy::float16_t v) {
  uint16_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  return fp16_to_f32(bits);
}

// acc[r][t] += dot(w[r][0..n), x[t][0..n)) for NR rows and NT tokens: each
// loaded weight vector is reused NT times and each x vector NR times.
template <int NR, int NT, class W, class X>
HWY_INLINE void dot_tile(const W* const* w, const X* const* x, int64_t n, float out[NR][NT]) {
  const hn::ScalableTag<float> d;
  using V = decltype(hn::Zero(d));
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  V acc[NR][NT];
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) acc[r][t] = hn::Zero(d);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    V wv[NR];
    for (int r = 0; r < NR; ++r) wv[r] = load_widened(d, w[r] + i);
    for (int t = 0; t < NT; ++t) {
      const V xv = load_widened(d, x[t] + i);
      for (int r = 0; r < NR; ++r) acc[r][t] = hn::MulAdd(wv[r], xv, acc[r][t]);
    }
  }
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) {
      float s = hn::GetLane(hn::SumOfLanes(d, acc[r][t]));
      for (int64_t j = i; j < n; ++j) s += widened(w[r][j]) * widened(x[t][j]);
      out[r][t] = s;
    }
  }
}

// Decode path: one fused decode+dot per row, chunk by chunk, four independent
// accumulators to hide FMA latency. Uses only a stack buffer.
template <class Dec>
void gemv_rows(const WeightView& w, const float* x, float* y, int64_t r0, int64_t r1) {
  const hn::ScalableTag<float> d;
  using V = decltype(hn::Zero(d));
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  HWY_ALIGN float buf[kChunk];
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w.data + static_cast<size_t>(r) * w.row_stride_bytes;
    V a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
    float tail = 0.f;
    for (int64_t c0 = 0; c0 < w.n_in; c0 += kChunk) {
      const int64_t n = std::min(kChunk, w.n_in - c0);
      const float* wp = Dec::decode(row, c0, n, buf);
      const float* xp = x + c0;
      int64_t i = 0;
      for (; i + 4 * lanes <= n; i += 4 * lanes) {
        a0 = hn::MulAdd(hn::LoadU(d, wp + i), hn::LoadU(d, xp + i), a0);
        a1 = hn::MulAdd(hn::LoadU(d, wp + i + lanes), hn::LoadU(d, xp + i + lanes), a1);
        a2 = hn::MulAdd(hn::LoadU(d, wp + i + 2 * lanes), hn::LoadU(d, xp + i + 2 * lanes), a2);
        a3 = hn::MulAdd(hn::LoadU(d, wp + i + 3 * lanes), hn::LoadU(d, xp + i + 3 * lanes), a3);
      }
      for (; i + lanes <= n; i += lanes)
        a0 = hn::MulAdd(hn::LoadU(d, wp + i), hn::LoadU(d, xp + i), a0);
      for (; i < n; ++i) tail += wp[i] * xp[i];
    }
    y[r] = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)))) + tail;
  }
}

// Tokens per register tile in the prefill path: 4 rows x 6 tokens fill AVX-512's 32
// registers (+5 % on Zen 5), 16-register targets keep 4 x 4.
constexpr int kTokenTile = HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL ? 6 : 4;

// y[k][i] = dot(rows[i], x[k]) for nr rows and NT tokens (x and y rows of
// stride n_in / n_out), in 4-row x NT-token register tiles.
template <int NT, class W, class X>
void sweep_tile(const W* const* rows, int64_t nr, const X* x, int64_t n_in, float* y,
                int64_t n_out) {
  const X* xs[NT];
  for (int k = 0; k < NT; ++k) xs[k] = x + k * n_in;
  int64_t i = 0;
  for (; i + 4 <= nr; i += 4) {
    float out[4][NT];
    dot_tile<4, NT>(rows + i, xs, n_in, out);
    for (int r = 0; r < 4; ++r)
      for (int k = 0; k < NT; ++k) y[k * n_out + i + r] = out[r][k];
  }
  for (; i < nr; ++i) {
    float out[1][NT];
    dot_tile<1, NT>(rows + i, xs, n_in, out);
    for (int k = 0; k < NT; ++k) y[k * n_out + i] = out[0][k];
  }
}

// Prefill path: decode a tile of rows once into thread-local scratch (F16 rows
// are read in place), then sweep all tokens over it in 4-row x kTokenTile tiles.
template <class Dec, class X>
void gemm_tiles(const WeightView& w, const X* x, int64_t n_tokens, float* y, int64_t tile_rows,
                int64_t tile_begin, int64_t tile_end) {
  // F16 rows stay halves (widened as loaded): half the cache traffic of a float tile.
  using Elem = std::conditional_t<std::is_same_v<Dec, F16Decoder>, hwy::float16_t, float>;
  thread_local AlignedVector<float> scratch;
  const int64_t n_in = w.n_in;
  if (std::is_same_v<Elem, float> && scratch.size() < static_cast<size_t>(tile_rows * n_in))
    scratch.resize(tile_rows * n_in);
  thread_local std::vector<const Elem*> rows;
  if (rows.size() < static_cast<size_t>(tile_rows)) rows.resize(tile_rows);
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    const int64_t r0 = tile * tile_rows;
    const int64_t nr = std::min(tile_rows, w.n_out - r0);
    for (int64_t i = 0; i < nr; ++i) {
      const uint8_t* row = w.data + static_cast<size_t>(r0 + i) * w.row_stride_bytes;
      if constexpr (std::is_same_v<Elem, float>) {
        rows[i] = Dec::decode(row, 0, n_in, scratch.data() + i * n_in);
      } else {
        rows[i] = reinterpret_cast<const Elem*>(row);
      }
    }
    for (int64_t t = 0; t < n_tokens; t += kTokenTile) {
      if (n_tokens - t >= kTokenTile) {
        sweep_tile<kTokenTile>(rows.data(), nr, x + t * n_in, n_in, y + t * w.n_out + r0, w.n_out);
      } else {
        for (int64_t k = t; k < n_tokens; ++k) {
          sweep_tile<1>(rows.data(), nr, x + k * n_in, n_in, y + k * w.n_out + r0, w.n_out);
        }
      }
    }
  }
}

template <class Dec, class X>
void gemm(const WeightView& w, const X* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  // F16 rows stay halves in the tile (see gemm_tiles).
  const int64_t tile_row_bytes =
      w.n_in * static_cast<int64_t>(std::is_same_v<Dec, F16Decoder> ? 2 : sizeof(float));
  const int64_t tile_rows = std::clamp<int64_t>(kTileBytes / tile_row_bytes / 4 * 4, 4, 64);
  const int64_t n_tiles = (w.n_out + tile_rows - 1) / tile_rows;
  pool.parallel_chunks(static_cast<size_t>(n_tiles), 1, [&](size_t begin, size_t end, int) {
    gemm_tiles<Dec>(w, x, n_tokens, y, tile_rows, static_cast<int64_t>(begin),
                    static_cast<int64_t>(end));
  });
}

void MatmulTarget(const WeightView& w, const float* x, int64_t n_tokens, float* y,
                  ThreadPool& pool) {
  with_decoder(w.type, [&](auto decoder) {
    using Dec = decltype(decoder);
    if (n_tokens == 1) {
      pool.parallel_chunks(static_cast<size_t>(w.n_out), 16, [&](size_t begin, size_t end, int) {
        gemv_rows<Dec>(w, x, y, static_cast<int64_t>(begin), static_cast<int64_t>(end));
      });
      return;
    }
    gemm<Dec>(w, x, n_tokens, y, pool);
  });
}

// F16 weights times activations already rounded to f16 (prefill of ggml's f16
// path): both sides stay halves in cache, each widened exactly as loaded.
void HalfPrefillTarget(const WeightView& w, const uint16_t* x, int64_t n_tokens, float* y,
                       ThreadPool& pool) {
  gemm<F16Decoder>(w, reinterpret_cast<const hwy::float16_t*>(x), n_tokens, y, pool);
}

const char* TargetName() {
  return hwy::TargetName(HWY_TARGET);
}

// f32 -> f16 bits, round to nearest even: F16C's vcvtps2ph on x86 (what ggml
// uses), f32_to_fp16 (its exact software twin) elsewhere and for the tail.
void RoundToHalfTarget(const float* HWY_RESTRICT x, uint16_t* HWY_RESTRICT out, int64_t n) {
  int64_t i = 0;
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
#elif HWY_TARGET == HWY_AVX2
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
#endif
  for (; i < n; ++i) out[i] = f32_to_fp16(x[i]);
}

}  // namespace HWY_NAMESPACE
}  // namespace heed
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace heed {

HWY_EXPORT(MatmulTarget);
HWY_EXPORT(HalfPrefillTarget);
HWY_EXPORT(RoundToHalfTarget);
HWY_EXPORT(TargetName);

namespace {
void check_weight(const WeightView& w, const char* what) {
  const auto traits = dtype_traits(w.type);
  if (!traits || !is_compute_type(w.type)) {
    throw Error(std::string(what) + ": unsupported weight type " + std::string(dtype_name(w.type)) +
                " (id " + std::to_string(static_cast<uint32_t>(w.type)) + ")");
  }
  if (w.n_in <= 0 || w.n_out < 0) {
    throw Error(std::string(what) + ": bad weight shape [" + std::to_string(w.n_in) + ", " +
                std::to_string(w.n_out) + "]");
  }
  const auto bytes = row_bytes(w.type, static_cast<uint64_t>(w.n_in));
  if (!bytes) {
    throw Error(std::string(what) + ": row length " + std::to_string(w.n_in) +
                " is not a multiple of the " + std::string(traits->name) + " block size " +
                std::to_string(traits->block_size));
  }
  // Rows are read as floats / fp16 fields in place, so they must be aligned for them.
  const size_t align = w.type == DType::F32 ? 4 : 2;
  if (w.row_stride_bytes % align != 0 || reinterpret_cast<uintptr_t>(w.data) % align != 0) {
    throw Error(std::string(what) + ": " + std::string(traits->name) + " weights need " +
                std::to_string(align) + "-byte aligned rows (row stride " +
                std::to_string(w.row_stride_bytes) + " bytes)");
  }
  if (w.row_stride_bytes < *bytes) {
    throw Error(std::string(what) + ": row stride " + std::to_string(w.row_stride_bytes) +
                " bytes is smaller than one " + std::string(traits->name) + " row (" +
                std::to_string(*bytes) + " bytes)");
  }
}
}  // namespace

void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            MatmulMode mode) {
  check_weight(w, "matmul");
  if (n_tokens < 0) throw Error("matmul: negative token count " + std::to_string(n_tokens));
  if (n_tokens == 0 || w.n_out == 0) return;
  if (mode == MatmulMode::LlamaCpp && w.type != DType::F32)
    return qdot_matmul(w, x, n_tokens, y, pool);
  HWY_DYNAMIC_DISPATCH(MatmulTarget)(w, x, n_tokens, y, pool);
}

void half_prefill(const WeightView& w, const uint16_t* x_half, int64_t n_tokens, float* y,
                  ThreadPool& pool) {
  check_weight(w, "half_prefill");
  if (w.type != DType::F16) throw Error("half_prefill: F16 weights only");
  if (n_tokens <= 0 || w.n_out == 0) return;
  HWY_DYNAMIC_DISPATCH(HalfPrefillTarget)(w, x_half, n_tokens, y, pool);
}

void round_to_half(const float* x, uint16_t* out, int64_t n) {
  HWY_DYNAMIC_DISPATCH(RoundToHalfTarget)(x, out, n);
}

void dequantize_row_of(const WeightView& w, int64_t r, float* out) {
  check_weight(w, "dequantize_row_of");
  if (r < 0 || r >= w.n_out) {
    throw Error("dequantize_row_of: row " + std::to_string(r) + " out of range [0, " +
                std::to_string(w.n_out) + ")");
  }
  dequantize_row(w.type, w.data + static_cast<size_t>(r) * w.row_stride_bytes, out, w.n_in);
}

const char* matmul_target_name() {
  return HWY_DYNAMIC_DISPATCH(TargetName)();
}

}  // namespace heed
#endif  // HWY_ONCE
