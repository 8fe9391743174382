// One generic quantized-activation kernel, instantiated per weight type through
// a traits struct and compiled once per Highway target (this file includes
// itself via foreach_target).
//
// Every weight block is unpacked to int16 values in element order with its
// sub-block scale already multiplied in (|scale * q| <= 4096 for every type),
// so the integer part of ggml's block formula, sum_sub scale_sub * sum(q * a),
// becomes one int16 x int8 dot per block, exact in int32. The float part (block
// scale products, Q4_1/Q5_1 and K-quant min terms) follows ggml per block.
#include "kernels/qdot.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "common/aligned.h"
#include "heed/error.h"
#include "kernels/fp16.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/qdot.cc"
#include "hwy/cache_control.h"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace heed {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// x86 targets with AVX2 (AVX-512 included, through its 256-bit ops): the direct
// kernels below use their intrinsics; every other target runs the portable path.
#undef HEED_QDOT_X86
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define HEED_QDOT_X86 1
#else
#define HEED_QDOT_X86 0
#endif
// AVX-512 VNNI (Ice Lake, Zen 4 / 5): the prefill tiles and decode lanes below use
// full zmm width. Highway 1.0.3's AVX3_DL target string lacks avx512vnni, which
// the target requires of the CPU: the functions with VNNI instructions, and the
// decode row loop they inline into, add it (HEED_ZMM_TARGET).
#undef HEED_QDOT_ZMM
#undef HEED_ZMM_TARGET
#if HWY_TARGET == HWY_AVX3_DL
#define HEED_QDOT_ZMM 1
#define HEED_VNNI __attribute__((target("avx512vnni")))
#define HEED_ZMM_TARGET HEED_VNNI
#else
#define HEED_QDOT_ZMM 0
#define HEED_ZMM_TARGET
#endif

// fp16 -> f32 for block scales in the hot loops: one multiply by 2^112 rescales
// normal and subnormal halves exactly; inf / NaN take the exact slow path.
HWY_INLINE float half(uint16_t h) {
#if HEED_QDOT_X86
  return _cvtsh_ss(h);  // F16C: exact, one instruction
#endif
  if ((h & 0x7c00u) == 0x7c00u) return fp16_to_f32(h);
  const float magnitude = f32_from_bits(static_cast<uint32_t>(h & 0x7fffu) << 13) * 0x1p112f;
  return f32_from_bits(f32_to_bits(magnitude) | (static_cast<uint32_t>(h & 0x8000u) << 16));
}

// ---- Activation blocks --------------------------------------------------------

struct ActQ8_0 {
  using Block = BlockQ8_0;
  static float d(const Block& a) { return half(a.d); }
};
struct ActQ8_1 {
  using Block = BlockQ8_1;
  static float d(const Block& a) { return half(a.d); }
};
struct ActQ8_K {
  using Block = BlockQ8_K;
  static float d(const Block& a) { return a.d; }
};

// ---- Weight traits ------------------------------------------------------------
// Each: W (weight block), Act, kElems, Params (per-block floats), unpack(b, q, p)
// writing kElems int16 values, and kBias.

struct ScaleParams {
  float d;
};
struct ScaleMinParams {
  float d, m;
};
struct KMinParams {
  float d, dmin;
  int16_t mins[16];       // Q2_K: min per 16 elements
  uint8_t scales[8];      // Q4_K / Q5_K: scale per 32 elements
  uint8_t group_mins[8];  // Q4_K / Q5_K: min per 32 elements
};

// The block's float term besides d_w * d_a * sum(q * a), added the way ggml's
// AVX2 kernel for the type adds it (m: the min scales per 16 elements, bs: the
// activation bsums, dmin' = -d_a * dmin_w):
enum class Bias {
  None,
  MinTimesSum,  // Q4_1 / Q5_1: scalar summs = fma(m_w, s_a, summs) per block
  Q2K,          // acc lane k += dmin' * (m[2k] bs[2k] + m[2k+1] bs[2k+1]), before the block's dot
  Q4K,          // 4-lane acc_m[k] += dmin' * sum_{i<4} m[4k+i] bs[4k+i]
  Q5K,          // scalar summs = fma(dmin', sum m bs, summs)
};
template <Bias kB>
struct WithBias {
  static constexpr Bias kBias = kB;
};
// Block params of the types whose only float besides the scale is none / a min.
struct NoBias : WithBias<Bias::None> {
  template <class W>
  static void params(const W& b, ScaleParams* p) {
    p->d = half(b.d);
  }
};
struct MinTimesSum : WithBias<Bias::MinTimesSum> {
  template <class W>
  static void params(const W& b, ScaleMinParams* p) {
    p->d = half(b.d);
    p->m = half(b.m);
  }
};

struct TQ4_0 : NoBias {
  using W = BlockQ4_0;
  using Act = ActQ8_0;
  using Params = ScaleParams;
  static constexpr int kElems = kQK;
  static void unpack(const W& b, int16_t* HWY_RESTRICT q, Params* p) {
    p->d = half(b.d);
    for (int j = 0; j < 16; ++j) {
      q[j] = static_cast<int16_t>((b.qs[j] & 0xF) - 8);
      q[j + 16] = static_cast<int16_t>((b.qs[j] >> 4) - 8);
    }
  }
};

struct TQ4_1 : MinTimesSum {
  using W = BlockQ4_1;
  using Act = ActQ8_1;
  using Params = ScaleMinParams;
  static constexpr int kElems = kQK;
  static void unpack(const W& b, int16_t* HWY_RESTRICT q, Params* p) {
    p->d = half(b.d);
    p->m = half(b.m);
    for (int j = 0; j < 16; ++j) {
      q[j] = static_cast<int16_t>(b.qs[j] & 0xF);
      q[j + 16] = static_cast<int16_t>(b.qs[j] >> 4);
    }
  }
};

struct TQ5_0 : NoBias {
  using W = BlockQ5_0;
  using Act = ActQ8_0;
  using Params = ScaleParams;
  static constexpr int kElems = kQK;
  static void unpack(const W& b, int16_t* HWY_RESTRICT q, Params* p) {
    p->d = half(b.d);
    uint32_t qh;
    std::memcpy(&qh, b.qh, sizeof(qh));
    for (int j = 0; j < 16; ++j) {
      q[j] = static_cast<int16_t>(((b.qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - 16);
      q[j + 16] = static_cast<int16_t>(((b.qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16);
    }
  }
};

struct TQ5_1 : MinTimesSum {
  using W = BlockQ5_1;
  using Act = ActQ8_1;
  using Params = ScaleMinParams;
  static constexpr int kElems = kQK;
  static void unpack(const W& b, int16_t* HWY_RESTRICT q, Params* p) {
    p->d = half(b.d);
    p->m = half(b.m);
    uint32_t qh;
    std::memcpy(&qh, b.qh, sizeof(qh));
    for (int j = 0; j < 16; ++j) {
      q[j] = static_cast<int16_t>((b.qs[j] & 0xF) | (((qh >> j) & 1) << 4));
      q[j + 16] = static_cast<int16_t>((b.qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
    }
  }
};

struct TQ8_0 : NoBias {
  using W = BlockQ8_0;
  using Act = ActQ8_0;
  using Params = ScaleParams;
  static constexpr int kElems = kQK;
  static void unpack(const W& b, int16_t* HWY_RESTRICT q, Params* p) {
    p->d = half(b.d);
    for (int j = 0; j < kQK; ++j) q[j] = b.qs[j];
  }
};

struct TIQ4_NL : NoBias {
  using W = BlockIQ4_NL;
  using Act = ActQ8_0;
  using Params = ScaleParams;
  static constexpr int kElems = kQK;
  static void unpack(const W& b, int16_t* HWY_RESTRICT q, Params* p) {
    p->d = half(b.d);
    for (int j = 0; j < 16; ++j) {
      q[j] = kIQ4NLValues[b.qs[j] & 0xF];
      q[j + 16] = kIQ4NLValues[b.qs[j] >> 4];
    }
  }
};

// Q2_K: element e = 128h + 32k + 16part + l sits in bits 2k of qs[32h + 16part + l];
// scale and min of its 16-element group are scales[e / 16].
struct TQ2_K : WithBias<Bias::Q2K> {
  using W = BlockQ2_K;
  using Act = ActQ8_K;
  using Params = KMinParams;
  static constexpr int kElems = kQK_K;
  static void params(const W& b, Params* p) {
    p->d = half(b.d);
    p->dmin = half(b.dmin);
    for (int j = 0; j < 16; ++j) p->mins[j] = static_cast<int16_t>(b.scales[j] >> 4);
  }
  static void unpack(const W& b, int16_t* HWY_RESTRICT q, Params* p) {
    params(b, p);
    // Loops shaped like the layout (16 elements share a scale) so they vectorise.
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k)
        for (int part = 0; part < 2; ++part) {
          const int g = 8 * h + 2 * k + part;
          const int sc = b.scales[g] & 0xF;
          const uint8_t* src = b.qs + 32 * h + 16 * part;
          for (int l = 0; l < 16; ++l)
            q[16 * g + l] = static_cast<int16_t>(sc * ((src[l] >> (2 * k)) & 3));
        }
  }
};

// Q3_K: Q2_K's low bits, high bit in hmask[e % 32] bit e / 32 (clear: -4), signed scales.
struct TQ3_K : NoBias {
  using W = BlockQ3_K;
  using Act = ActQ8_K;
  using Params = ScaleParams;
  static constexpr int kElems = kQK_K;
  static void unpack(const W& b, int16_t* HWY_RESTRICT q, Params* p) {
    p->d = half(b.d);
    int8_t scales[16];
    unpack_q3_k_scales(b.scales, scales);
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k)
        for (int part = 0; part < 2; ++part) {
          const int g = 8 * h + 2 * k + part;
          const int sc = scales[g];
          const uint8_t* src = b.qs + 32 * h + 16 * part;
          const uint8_t* hm = b.hmask + 16 * part;
          const int bit = 4 * h + k;
          for (int l = 0; l < 16; ++l) {
            const int low = (src[l] >> (2 * k)) & 3;
            const int high = (hm[l] >> bit) & 1;
            q[16 * g + l] = static_cast<int16_t>(sc * (low - 4 + 4 * high));
          }
        }
  }
};

// Q4_K / Q5_K: eight 32-element groups; element 64s + l is the low nibble of
// qs[32s + l], 64s + 32 + l the high nibble (Q5_K: fifth bit qh[l] bit 2s / 2s+1).
// The 12 packed scale bytes of a Q4_K / Q5_K block give 8 six-bit scales and 8
// six-bit mins (get_scale_min_k4 for every j at once, on 32-bit words).
template <class Block>
HWY_INLINE void k4_params(const Block& b, KMinParams* p) {
  p->d = half(b.d);
  p->dmin = half(b.dmin);
  uint32_t w[3];
  std::memcpy(w, b.scales, sizeof(w));
  constexpr uint32_t kLow6 = 0x3f3f3f3f, kLow4 = 0x0f0f0f0f, kTop2 = 0x03030303;
  const uint64_t sc =
      (w[0] & kLow6) | static_cast<uint64_t>((w[2] & kLow4) | (((w[0] >> 6) & kTop2) << 4)) << 32;
  const uint64_t mn =
      (w[1] & kLow6) | static_cast<uint64_t>(((w[2] >> 4) & kLow4) | (((w[1] >> 6) & kTop2) << 4))
                           << 32;
  // Byte j of the word is value j (little-endian, as GGUF itself). One 8-byte
  // store each, so that the kernels' 8-byte loads forward from it.
  std::memcpy(p->scales, &sc, sizeof(p->scales));
  std::memcpy(p->group_mins, &mn, sizeof(p->group_mins));
}

// The 256 unscaled quants of a Q4_K / Q5_K block in element order.
template <bool kFifthBit, class Block>
void k4_quants(const Block& b, const uint8_t* qh, uint8_t* HWY_RESTRICT q) {
  for (int s = 0; s < 4; ++s) {
    const uint8_t* qs = b.qs + 32 * s;
    for (int l = 0; l < 32; ++l) {
      int lo = qs[l] & 0xF, hi = qs[l] >> 4;
      if constexpr (kFifthBit) {
        lo |= ((qh[l] >> (2 * s)) & 1) << 4;
        hi |= ((qh[l] >> (2 * s + 1)) & 1) << 4;
      }
      q[64 * s + l] = static_cast<uint8_t>(lo);
      q[64 * s + 32 + l] = static_cast<uint8_t>(hi);
    }
  }
}

// Int16 tile values: each quant times its group scale.
template <class Block>
void unpack_k4(const Block& b, const uint8_t* quants, int16_t* HWY_RESTRICT q, KMinParams* p) {
  k4_params(b, p);
  for (int e = 0; e < kQK_K; ++e) q[e] = static_cast<int16_t>(p->scales[e / 32] * quants[e]);
}

struct TQ4_K : WithBias<Bias::Q4K> {
  using W = BlockQ4_K;
  using Act = ActQ8_K;
  using Params = KMinParams;
  static constexpr int kElems = kQK_K;
  static void params(const W& b, Params* p) { k4_params(b, p); }
  static void quants(const W& b, uint8_t* q) { k4_quants<false>(b, nullptr, q); }
  static void unpack(const W& b, int16_t* HWY_RESTRICT q, Params* p) {
    uint8_t quants_[kQK_K];
    k4_quants<false>(b, nullptr, quants_);
    unpack_k4(b, quants_, q, p);
  }
};

struct TQ5_K : WithBias<Bias::Q5K> {
  using W = BlockQ5_K;
  using Act = ActQ8_K;
  using Params = KMinParams;
  static constexpr int kElems = kQK_K;
  static void params(const W& b, Params* p) { k4_params(b, p); }
  static void quants(const W& b, uint8_t* q) { k4_quants<true>(b, b.qh, q); }
  static void unpack(const W& b, int16_t* HWY_RESTRICT q, Params* p) {
    uint8_t quants_[kQK_K];
    k4_quants<true>(b, b.qh, quants_);
    unpack_k4(b, quants_, q, p);
  }
};

// Q6_K: per 128-element half h, element 128h + 32k + l takes nibble k / 2 of
// ql[64h + 32(k % 2) + l] and bits 2k of qh[32h + l]; values - 32, int8 scales[e / 16].
struct TQ6_K : NoBias {
  using W = BlockQ6_K;
  using Act = ActQ8_K;
  using Params = ScaleParams;
  static constexpr int kElems = kQK_K;
  static void unpack(const W& b, int16_t* HWY_RESTRICT q, Params* p) {
    p->d = half(b.d);
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k)
        for (int part = 0; part < 2; ++part) {
          const int g = 8 * h + 2 * k + part;
          const int sc = b.scales[g];
          const uint8_t* ql = b.ql + 64 * h + 32 * (k % 2) + 16 * part;
          const uint8_t* qh = b.qh + 32 * h + 16 * part;
          for (int l = 0; l < 16; ++l) {
            const int nib = (ql[l] >> (4 * (k / 2))) & 0xF;
            const int top = (qh[l] >> (2 * k)) & 3;
            q[16 * g + l] = static_cast<int16_t>(sc * ((nib | (top << 4)) - 32));
          }
        }
  }
};

// ---- Driver -------------------------------------------------------------------

// At most 16 int16 lanes: 8 int32 lanes, ggml's AVX2 width (see dot_tile).
using D16 = hn::CappedTag<int16_t, 16>;
using D32 = hn::Repartition<int32_t, D16>;
using DF = hn::Rebind<float, D32>;
using D8 = hn::Rebind<int8_t, D16>;
using VF = decltype(hn::Zero(DF()));
using VI = decltype(hn::Zero(D32()));

// Activations of one matmul call, prepared once: quants widened to int16, block
// scales and Q8_1 sums as float, Q8_K bsums contiguous.
struct Activations {
  const int16_t* q;      // [n_tokens][n_in]
  const float* d;        // [n_tokens][n_blocks]
  const float* s;        // Q8_1: [n_tokens][n_blocks] sum fields
  const int16_t* bsums;  // Q8_K: [n_tokens][n_blocks][16]
  const uint8_t* raw;    // the quantized rows themselves (direct kernels)
  size_t raw_row_bytes;
  const uint8_t* paired = nullptr;      // byte tiles: [n_tokens][n_in] quants in pair order
  const int16_t* bsum_pairs = nullptr;  // byte tiles, Q4_K zmm decode: [n_tokens][n_blocks][8]
  const int32_t* lane_bias = nullptr;  // signed byte zmm tiles: [n_tokens][n_blocks][8] (see there)
};

// An unpacked tile of weight rows: int16 values [rows][n_in] and block params.
template <class T>
struct Tile {
  const int16_t* q;
  const typename T::Params* params;
};

template <class T>
constexpr bool kKMins = T::kBias == Bias::Q2K || T::kBias == Bias::Q4K || T::kBias == Bias::Q5K;

// ggml's x86 kernels (AVX2 vec_dot and llamafile's tinyBLAS, which the
// AVX-512 build runs too) sum the products of each 32-element group into 8
// int32 lanes, lane k holding elements 4k..4k+3, convert them, multiply-add
// them into 8 float lanes per block, and add the lanes in hsum_float_8's order.
// The integer sums are exact in any order, but the float ones are not, and one
// last-bit difference can flip a rounding of the next layer's activation
// quantization; so this kernel reproduces that lane structure exactly.
//
// Int32 lanes hold pairs (2i, 2i+1) of each int16 vector (pmaddwd, which is
// what ReorderWidenMulAccumulate is on x86); a block's pair-lane sums are then
// folded to the 8 ggml lanes (pairs 2k, 2k+1 of each 16-element half).
constexpr size_t kN16 = hn::MaxLanes(D16());
constexpr size_t kN32 = hn::MaxLanes(D32());
constexpr int kGroupVecs = static_cast<int>(32 / kN16);  // int32 accumulators per group
constexpr int kLaneVecs = static_cast<int>(8 / kN32);    // vectors holding the 8 ggml lanes
// With 16 int16 lanes (AVX2, AVX-512 capped), the tile path stores each 32-group
// of weights and activations pair-interleaved: the first vector holds elements
// (4k, 4k+1), the second (4k+2, 4k+3), k = 0..7. Both products then land in
// int32 lane k, which is ggml's lane k: one accumulator per (row, token) and no
// fold, so the register tile grows.
constexpr bool kPairInterleave = kN16 == 16;

// Element held by position p of an interleaved 32-group.
HWY_INLINE int interleaved_element(int p) {
  const int q = p % 16;
  return 4 * (q / 2) + (p >= 16 ? 2 : 0) + q % 2;
}

// Reorders every 32-group of n int16 values in place (n a multiple of 32).
HWY_INLINE void interleave_pairs(int16_t* HWY_RESTRICT v, int64_t n) {
  int16_t tmp[32];
  for (int64_t j = 0; j < n; j += 32) {
    for (int p = 0; p < 32; ++p) tmp[p] = v[j + interleaved_element(p)];
    std::memcpy(v + j, tmp, sizeof(tmp));
  }
}

// Folds a block's pair-lane sums P (kGroupVecs vectors) to the 8 ggml lanes.
HWY_INLINE void fold_lanes(const VI* P, VI* G) {
#if HWY_TARGET == HWY_SCALAR  // one product per accumulator
  for (int k = 0; k < 8; ++k)
    G[k] = hn::Add(hn::Add(P[4 * k], P[4 * k + 1]), hn::Add(P[4 * k + 2], P[4 * k + 3]));
#else
  const D32 d32;
  for (int i = 0; i < kLaneVecs; ++i)
    G[i] = hn::Add(hn::ConcatEven(d32, P[2 * i + 1], P[2 * i]),
                   hn::ConcatOdd(d32, P[2 * i + 1], P[2 * i]));
#endif
}

// hsum_float_8: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)).
HWY_INLINE float hsum8(const VF* acc) {
  const DF df;
  HWY_ALIGN float l[8];
  for (int i = 0; i < kLaneVecs; ++i) hn::Store(acc[i], df, l + i * kN32);
  return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

// Min scales times bsums in pairs (2k, 2k+1): the 8 int32 lanes of ggml's
// _mm256_madd_epi16(mins, bsums), stored to out.
HWY_INLINE void min_pairs(const int16_t* m, const int16_t* bs, int32_t* HWY_RESTRICT out) {
  if constexpr (kN16 == 16) {
    const D16 d16;
    const D32 d32;
    VI unused = hn::Zero(d32);
    hn::Store(hn::ReorderWidenMulAccumulate(d32, hn::LoadU(d16, m), hn::LoadU(d16, bs),
                                            hn::Zero(d32), unused),
              d32, out);
  } else {
    for (int k = 0; k < 8; ++k) out[k] = m[2 * k] * bs[2 * k] + m[2 * k + 1] * bs[2 * k + 1];
  }
}

// ggml's float state of one (row, token) dot product, and its per-block steps.
struct RowAcc {
  VF acc[kLaneVecs];
  float summs;
#if HEED_QDOT_X86
  __m128 acc_m;  // in a register, as ggml keeps it
#else
  float acc_m[4];
#endif
};

HWY_INLINE void acc_init(RowAcc& s) {
  for (int i = 0; i < kLaneVecs; ++i) s.acc[i] = hn::Zero(DF());
  s.summs = 0.0f;
#if HEED_QDOT_X86
  s.acc_m = _mm_setzero_ps();
#else
  for (float& m : s.acc_m) m = 0.0f;
#endif
}

#if HEED_QDOT_X86
// Q4_K / Q5_K min terms on x86, as ggml's AVX2 kernels: the activation bsums
// summed in pairs (once per token and block), then lane k = m[2k] pair[2k] +
// m[2k+1] pair[2k+1] by pmaddwd with the group mins.
HWY_INLINE __m128i bsum_pairs(const int16_t* bs) {
  return _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bs)),
                        _mm_loadu_si128(reinterpret_cast<const __m128i*>(bs + 8)));
}
HWY_INLINE __m128i k4_min_lanes(const uint8_t* group_mins, __m128i pairs) {
  return _mm_madd_epi16(
      _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(group_mins))), pairs);
}
// dmin = -(d_a * dmin_w); Q4_K: one fused multiply-add per lane, Q5_K: a scalar sum.
template <class T>
HWY_INLINE void acc_k4_min_lanes(RowAcc& s, __m128i lanes, float dmin) {
  if constexpr (T::kBias == Bias::Q4K) {
    s.acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(lanes), s.acc_m);
  } else {
    HWY_ALIGN int32_t l[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(l), lanes);
    s.summs = std::fma(dmin, static_cast<float>((l[0] + l[1]) + (l[2] + l[3])), s.summs);
  }
}
#endif

// K-quant min terms of block b, taken before the block's dot as ggml does (a
// no-op for the other types).
template <class T>
HWY_INLINE void acc_mins(RowAcc& s, const typename T::Params& p, const int16_t* bs, float ad) {
  if constexpr (T::kBias == Bias::Q2K) {
    const D32 d32;
    const DF df;
    HWY_ALIGN int32_t mp[8];
    min_pairs(p.mins, bs, mp);
    for (int i = 0; i < kLaneVecs; ++i)
      s.acc[i] = hn::MulAdd(hn::ConvertTo(df, hn::Load(d32, mp + i * kN32)),
                            hn::Set(df, -(p.dmin * ad)), s.acc[i]);
  } else if constexpr (T::kBias == Bias::Q4K || T::kBias == Bias::Q5K) {
    const float dmin = -(p.dmin * ad);
#if HEED_QDOT_X86
    acc_k4_min_lanes<T>(s, k4_min_lanes(p.group_mins, bsum_pairs(bs)), dmin);
#else
    // Lane k: groups 2k and 2k + 1, each min times its two 16-element bsums.
    const uint8_t* m = p.group_mins;
    int32_t lane[4];
    for (int k = 0; k < 4; ++k)
      lane[k] =
          m[2 * k] * (bs[4 * k] + bs[4 * k + 1]) + m[2 * k + 1] * (bs[4 * k + 2] + bs[4 * k + 3]);
    if constexpr (T::kBias == Bias::Q4K) {
      for (int k = 0; k < 4; ++k)
        s.acc_m[k] = std::fma(dmin, static_cast<float>(lane[k]), s.acc_m[k]);
    } else {
      s.summs =
          std::fma(dmin, static_cast<float>((lane[0] + lane[1]) + (lane[2] + lane[3])), s.summs);
    }
#endif
  }
}

// The block's 8 integer lanes G times the scale product, and the Q4_1/Q5_1 min term
// (as: the activation block's sum field).
template <class T>
HWY_INLINE void acc_block(RowAcc& s, const VI* G, const typename T::Params& p, float ad, float as) {
  const DF df;
  const auto scale = hn::Set(df, p.d * ad);
  for (int i = 0; i < kLaneVecs; ++i)
    s.acc[i] = hn::MulAdd(hn::ConvertTo(df, G[i]), scale, s.acc[i]);
  if constexpr (T::kBias == Bias::MinTimesSum) s.summs = std::fma(p.m, as, s.summs);
}

template <class T>
HWY_INLINE float acc_finish(const RowAcc& s) {
  float v = hsum8(s.acc);
  if constexpr (T::kBias == Bias::Q4K) {
#if HEED_QDOT_X86
    HWY_ALIGN float m[4];
    _mm_store_ps(m, s.acc_m);
#else
    const float* m = s.acc_m;
#endif
    v += (m[0] + m[2]) + (m[1] + m[3]);
  } else if constexpr (T::kBias == Bias::MinTimesSum || T::kBias == Bias::Q5K) {
    v += s.summs;
  }
  return v;
}

// y for NR rows (tile rows i0..) x NT tokens (t0..) of an unpacked tile. The
// operations per (row, token) do not depend on NR or NT, nor on the direct
// kernels below, so decode and prefill give identical bits.
template <class T, int NR, int NT>
HWY_INLINE void dot_tile(const Tile<T>& tile, int64_t i0, const Activations& act, int64_t t0,
                         int64_t n_in, float* y, int64_t n_out, int64_t r0) {
  const D16 d16;
  const D32 d32;
  const int64_t n_blocks = n_in / T::kElems;
  const int16_t* w[NR];
  const typename T::Params* p[NR];
  for (int r = 0; r < NR; ++r) {
    w[r] = tile.q + (i0 + r) * n_in;
    p[r] = tile.params + (i0 + r) * n_blocks;
  }
  const int16_t* a[NT];
  const float* ad[NT];
  for (int t = 0; t < NT; ++t) {
    a[t] = act.q + (t0 + t) * n_in;
    ad[t] = act.d + (t0 + t) * n_blocks;
  }
  RowAcc s[NR][NT];
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) acc_init(s[r][t]);
  for (int64_t b = 0; b < n_blocks; ++b) {
    if constexpr (kKMins<T>) {
      for (int r = 0; r < NR; ++r)
        for (int t = 0; t < NT; ++t)
          acc_mins<T>(s[r][t], p[r][b], act.bsums + ((t0 + t) * n_blocks + b) * 16, ad[t][b]);
    }
    constexpr int kAccs = kPairInterleave ? 1 : kGroupVecs;
    VI P[NR][NT][kAccs];
    for (int r = 0; r < NR; ++r)
      for (int t = 0; t < NT; ++t)
        for (int g = 0; g < kAccs; ++g) P[r][t][g] = hn::Zero(d32);
    const int64_t base = b * T::kElems;
    for (int64_t j0 = 0; j0 < T::kElems; j0 += 32) {
      for (int g = 0; g < kGroupVecs; ++g) {
        const int64_t j = base + j0 + g * static_cast<int64_t>(kN16);
        decltype(hn::Zero(d16)) wv[NR];
        for (int r = 0; r < NR; ++r) wv[r] = hn::LoadU(d16, w[r] + j);
        for (int t = 0; t < NT; ++t) {
          const auto x = hn::LoadU(d16, a[t] + j);
          for (int r = 0; r < NR; ++r) {
            VI unused = hn::Zero(d32);
            const int acc = kPairInterleave ? 0 : g;
            P[r][t][acc] = hn::ReorderWidenMulAccumulate(d32, wv[r], x, P[r][t][acc], unused);
          }
        }
      }
    }
    for (int r = 0; r < NR; ++r)
      for (int t = 0; t < NT; ++t) {
        VI G[kLaneVecs];
        if constexpr (kPairInterleave) {
          G[0] = P[r][t][0];
        } else {
          fold_lanes(P[r][t], G);
        }
        const float as = T::kBias == Bias::MinTimesSum ? act.s[(t0 + t) * n_blocks + b] : 0.0f;
        acc_block<T>(s[r][t], G, p[r][b], ad[t][b], as);
      }
  }
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) y[(t0 + t) * n_out + r0 + i0 + r] = acc_finish<T>(s[r][t]);
}

// ---- Direct x86 kernels ---------------------------------------------------------
// On AVX2 and AVX-512 (through their 256-bit ops: ggml's lane layout is 8 int32),
// decode skips the int16 tile: a block's 8 ggml lanes come straight from the
// packed weights, unpacked to bytes in registers, and the int8 activations, by
// pmaddubsw (u8 x s8 -> int16 pairs) then pmaddwd (pairs x group scale -> int32).
// Signed weights use ggml's sign trick, |w| x sign(a, w). pmaddubsw saturates at
// int16, which no type reaches: |pair| <= 2 * 128 * 127 < 32767.
#if HEED_QDOT_X86
static_assert(kLaneVecs == 1, "the direct kernels produce the 8 ggml lanes in one vector");

HWY_INLINE __m256i load32(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}
HWY_INLINE __m256i bytes(int v) {
  return _mm256_set1_epi8(static_cast<char>(v));
}
// Lane k: scale16 pair weights times the 4 products w[4k..4k+3] * a[4k..4k+3].
HWY_INLINE __m256i dot_u8(__m256i w, __m256i a, __m256i scale16) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), scale16);
}
HWY_INLINE __m256i dot_s8(__m256i w, __m256i a, __m256i scale16) {
  return dot_u8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w), scale16);
}
HWY_INLINE __m256i ones16() {
  return _mm256_set1_epi16(1);
}
// Pair order of the 64 bytes of a group pair (g, h) (32 elements each): v1
// alternates the byte pairs 2k of g and h, v2 their byte pairs 2k + 1. Both
// sides of a dot in this order make pmaddubsw(v1) + pmaddubsw(v2) hold, in int16
// lanes 2k and 2k + 1, the four products w[4k..4k+3] a[4k..4k+3] of g and of h:
// one pmaddwd with the scale pair (s_g, s_h) then gives ggml's lane k for both
// groups, so three multiply uops do the work of four with the same integers.
HWY_INLINE void pair_order(__m256i g, __m256i h, __m256i* v1, __m256i* v2) {
  *v1 = _mm256_blend_epi16(g, _mm256_slli_epi32(h, 16), 0xAA);
  *v2 = _mm256_blend_epi16(_mm256_srli_epi32(g, 16), h, 0xAA);
}
// The same for a 256-element block in place: group pairs (0,1), (2,3), ...
HWY_INLINE void pair_order_block(const uint8_t* in, uint8_t* out) {
  for (int j = 0; j < kQK_K / 64; ++j) {
    __m256i v1, v2;
    pair_order(load32(in + 64 * j), load32(in + 64 * j + 32), &v1, &v2);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 64 * j), v1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 64 * j + 32), v2);
  }
}
// Bytes 0..15: low nibbles of qs[0..15]; bytes 16..31: their high nibbles.
HWY_INLINE __m256i nibbles32(const uint8_t* qs) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(x, 4), x), bytes(0x0F));
}
// Byte j: 0xFF where bit j of the little-endian 32-bit mask at qh is set.
HWY_INLINE __m256i bits_to_bytes(const uint8_t* qh) {
  uint32_t bits;
  std::memcpy(&bits, qh, sizeof(bits));
  const __m256i spread =
      _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)),
                          _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                            0x0101010101010101, 0x0000000000000000));
  const __m256i all_but_own_bit = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
  return _mm256_cmpeq_epi8(_mm256_or_si256(spread, all_but_own_bit), bytes(0xFF));
}
// Bits 2k (k = shift) of each byte, moved to bit `to`.
HWY_INLINE __m256i bit_field(__m256i x, int shift, int mask, int to) {
  return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(x, shift), bytes(mask)), to);
}

// Direct<T>::lanes(block, params, a): a block's 8 ggml integer lanes against the
// activations a (the block's int8 quants); the float steps are the tile path's.
// Types without a specialisation use the tile path.
template <class T>
struct Direct {
  static constexpr bool kAvailable = false;
};
struct DirectAvailable {
  static constexpr bool kAvailable = true;
};

// Q8_0, Q4_0, IQ4_NL, Q5_0: values(b) is the block's 32 int8 values in element
// order (the 512-bit prefill tiles store them too).
template <>
struct Direct<TQ8_0> : DirectAvailable {
  static __m256i values(const BlockQ8_0& b) { return load32(b.qs); }
  static __m256i lanes(const BlockQ8_0& b, const ScaleParams&, const int8_t* a) {
    return dot_s8(values(b), load32(a), ones16());
  }
};
template <>
struct Direct<TQ4_0> : DirectAvailable {
  static __m256i values(const BlockQ4_0& b) { return _mm256_sub_epi8(nibbles32(b.qs), bytes(8)); }
  static __m256i lanes(const BlockQ4_0& b, const ScaleParams&, const int8_t* a) {
    return dot_s8(values(b), load32(a), ones16());
  }
};
template <>
struct Direct<TIQ4_NL> : DirectAvailable {
  static __m256i values(const BlockIQ4_NL& b) {
    const __m256i table = _mm256_broadcastsi128_si256(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues)));
    return _mm256_shuffle_epi8(table, nibbles32(b.qs));
  }
  static __m256i lanes(const BlockIQ4_NL& b, const ScaleParams&, const int8_t* a) {
    return dot_s8(values(b), load32(a), ones16());
  }
};
template <>
struct Direct<TQ5_0> : DirectAvailable {
  // nibble | 0xF0 where the fifth bit is clear: nibble + 16 * bit - 16 as int8.
  static __m256i values(const BlockQ5_0& b) {
    return _mm256_or_si256(nibbles32(b.qs), _mm256_andnot_si256(bits_to_bytes(b.qh), bytes(0xF0)));
  }
  static __m256i lanes(const BlockQ5_0& b, const ScaleParams&, const int8_t* a) {
    return dot_s8(values(b), load32(a), ones16());
  }
};
template <>
struct Direct<TQ4_1> : DirectAvailable {
  static __m256i lanes(const BlockQ4_1& b, const ScaleMinParams&, const int8_t* a) {
    return dot_u8(nibbles32(b.qs), load32(a), ones16());
  }
};
template <>
struct Direct<TQ5_1> : DirectAvailable {
  static __m256i lanes(const BlockQ5_1& b, const ScaleMinParams&, const int8_t* a) {
    const __m256i w =
        _mm256_or_si256(nibbles32(b.qs), _mm256_and_si256(bits_to_bytes(b.qh), bytes(0x10)));
    return dot_u8(w, load32(a), ones16());
  }
};

// Byte-shuffle mask that repeats int16 lane lo_lane over the low half and
// hi_lane over the high half of a vector holding 8 int16 lanes in both halves.
HWY_INLINE __m256i repeat16_mask(int lo_lane, int hi_lane) {
  const __m128i lo = _mm_set1_epi16(static_cast<int16_t>((2 * lo_lane) | ((2 * lo_lane + 1) << 8)));
  const __m128i hi = _mm_set1_epi16(static_cast<int16_t>((2 * hi_lane) | ((2 * hi_lane + 1) << 8)));
  return _mm256_set_m128i(hi, lo);
}

// Q4_K / Q5_K: groups 2g and 2g + 1 are the low and high nibbles of
// qs[32g..32g+31] (Q5_K: fifth bits 2g and 2g + 1 of qh[0..31]).
template <bool kFifthBit, class Block>
HWY_INLINE __m256i k4_lanes(const Block& b, const uint8_t* qh, const KMinParams& p,
                            const int8_t* a) {
  const __m256i sc16 = _mm256_broadcastsi128_si256(
      _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p.scales))));
  const __m256i high = kFifthBit ? load32(qh) : _mm256_setzero_si256();
  __m256i sum = _mm256_setzero_si256();
  for (int g = 0; g < 4; ++g) {
    const __m256i x = load32(b.qs + 32 * g);
    __m256i lo = _mm256_and_si256(x, bytes(0x0F));
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), bytes(0x0F));
    if constexpr (kFifthBit) {
      lo = _mm256_or_si256(lo, bit_field(high, 2 * g, 1, 4));
      hi = _mm256_or_si256(hi, bit_field(high, 2 * g + 1, 1, 4));
    }
    const __m256i s_lo = _mm256_shuffle_epi8(sc16, repeat16_mask(2 * g, 2 * g));
    const __m256i s_hi = _mm256_shuffle_epi8(sc16, repeat16_mask(2 * g + 1, 2 * g + 1));
    sum = _mm256_add_epi32(sum, dot_u8(lo, load32(a + 64 * g), s_lo));
    sum = _mm256_add_epi32(sum, dot_u8(hi, load32(a + 64 * g + 32), s_hi));
  }
  return sum;
}
template <>
struct Direct<TQ4_K> : DirectAvailable {
  static __m256i lanes(const BlockQ4_K& b, const KMinParams& p, const int8_t* a) {
    return k4_lanes<false>(b, nullptr, p, a);
  }
};
template <>
struct Direct<TQ5_K> : DirectAvailable {
  static __m256i lanes(const BlockQ5_K& b, const KMinParams& p, const int8_t* a) {
    return k4_lanes<true>(b, b.qh, p, a);
  }
};
// Q6_K: group c = 4h + k takes nibble k / 2 of ql[64h + 32(k % 2) ..] and bits 2k
// of qh[32h ..]; values q - 32 as (q x a) - (32 x a); int8 scales per 16 elements.
template <>
struct Direct<TQ6_K> : DirectAvailable {
  static __m256i lanes(const BlockQ6_K& b, const ScaleParams&, const int8_t* a) {
    const __m256i sc16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
    const __m256i sc_half[2] = {_mm256_permute2x128_si256(sc16, sc16, 0x00),
                                _mm256_permute2x128_si256(sc16, sc16, 0x11)};
    __m256i sum = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i qh = load32(b.qh + 32 * h);
      const __m256i ql0 = load32(b.ql + 64 * h), ql1 = load32(b.ql + 64 * h + 32);
      for (int k = 0; k < 4; ++k) {
        const __m256i ql = k % 2 ? ql1 : ql0;
        const __m256i nib = _mm256_and_si256(k < 2 ? ql : _mm256_srli_epi16(ql, 4), bytes(0x0F));
        __m256i top;  // bits 2k, 2k + 1 of qh moved to bits 4, 5
        if (k == 0) top = _mm256_slli_epi16(_mm256_and_si256(qh, bytes(0x03)), 4);
        if (k == 1) top = _mm256_slli_epi16(_mm256_and_si256(qh, bytes(0x0C)), 2);
        if (k == 2) top = _mm256_and_si256(qh, bytes(0x30));
        if (k == 3) top = _mm256_srli_epi16(_mm256_and_si256(qh, bytes(0xC0)), 2);
        const int c = 4 * h + k;
        const __m256i av = load32(a + 32 * c);
        const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(_mm256_or_si256(nib, top), av),
                                             _mm256_maddubs_epi16(bytes(32), av));
        const __m256i scale16 =
            _mm256_shuffle_epi8(sc_half[h], repeat16_mask((2 * c) % 8, (2 * c + 1) % 8));
        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p16, scale16));
      }
    }
    return sum;
  }
};

// Row r times token t, straight from the packed row. One row at a time keeps
// each thread's reads one sequential stream: on Zen 3, 2 and 4 interleaved rows
// decoded 10-25 % slower (smollm2 Q8_0, Q4_K_M; tinyllama Q4_K_M).
template <class T, class Lanes = Direct<T>>
HEED_ZMM_TARGET HWY_INLINE void dot_row_direct(const WeightView& w, int64_t r,
                                               const Activations& act, int64_t t, float* y) {
  using ActBlock = typename T::Act::Block;
  const int64_t n_blocks = w.n_in / T::kElems;
  const auto* row =
      reinterpret_cast<const typename T::W*>(w.data + static_cast<size_t>(r) * w.row_stride_bytes);
  const auto* a_blocks = reinterpret_cast<const ActBlock*>(act.raw + t * act.raw_row_bytes);
  const float* ad = act.d + t * n_blocks;
  RowAcc s;
  acc_init(s);
  // AVX2 (Zen 3): the hardware prefetcher alone left bandwidth unused, so fetch
  // the next row's block while this one is computed. AVX-512 (Zen 4 / 5): the
  // prefetches only cost issue slots; without them tinyllama Q4_K_M decoded 10 %
  // and smollm2 Q8_0 8 % faster on Zen 5, as F16 did on Zen 4.
  constexpr bool kSoftwarePrefetch = !HEED_QDOT_ZMM;
  const size_t ahead = w.row_stride_bytes;
  for (int64_t b = 0; b < n_blocks; ++b) {
    if constexpr (kSoftwarePrefetch) {
      const uint8_t* next = reinterpret_cast<const uint8_t*>(&row[b]) + ahead;
      hwy::Prefetch(next);
      if constexpr (sizeof(typename T::W) > 64) hwy::Prefetch(next + 64);
      if constexpr (sizeof(typename T::W) > 128) hwy::Prefetch(next + 128);
    }
    if constexpr (requires { Lanes::kFusedBlock; }) {
      Lanes::block(s, row[b], act.bsum_pairs + (t * n_blocks + b) * 8, ad[b], a_blocks[b].qs);
      continue;
    }
    typename T::Params p;
    T::params(row[b], &p);
    acc_mins<T>(s, p, kKMins<T> ? act.bsums + (t * n_blocks + b) * 16 : nullptr, ad[b]);
    VI G[1];
    G[0].raw = Lanes::lanes(row[b], p, a_blocks[b].qs);
    acc_block<T>(s, G, p, ad[b], T::kBias == Bias::MinTimesSum ? act.s[t * n_blocks + b] : 0.0f);
  }
  y[t * w.n_out + r] = acc_finish<T>(s);
}
// Rows [r_begin, r_end) times token t (Lanes: Direct<T>, or ZmmDirect<T> below).
template <class T, class Lanes>
HEED_ZMM_TARGET void dot_rows_direct(const WeightView& w, int64_t r_begin, int64_t r_end,
                                     const Activations& act, int64_t t, float* y) {
  for (int64_t r = r_begin; r < r_end; ++r) dot_row_direct<T, Lanes>(w, r, act, t, y);
}
#else
template <class T>
struct Direct {
  static constexpr bool kAvailable = false;
};
#endif

// Register tiles (rows x tokens), measured on Zen 3 at 512 tokens: larger ones
// spill the 16 ymm registers. 32-element blocks also carry a float step per block.
template <class T>
constexpr int kRowTile = T::kElems == kQK_K ? 2 : 1;
template <class T>
constexpr int kTokenTile = T::kElems == kQK_K ? 3 : 4;
// Target bytes of one unpacked row tile in the prefill path (fits L2 next to the activations).
constexpr int64_t kTileBytes = 96 * 1024;

// All tokens over rows [0, nr) of an unpacked tile in NR x NT register tiles
// (decode: 4 rows x 1 token); kernel.template operator()<R, U>(i, t) runs R rows
// from tile row i times U tokens from token t.
template <int NR, int NT, class Kernel>
void sweep_tiles(int64_t nr, int64_t n_tokens, Kernel&& kernel) {
  int64_t t = 0;
  if (n_tokens > 1) {
    for (; t + NT <= n_tokens; t += NT) {
      int64_t i = 0;
      for (; i + NR <= nr; i += NR) kernel.template operator()<NR, NT>(i, t);
      for (; i < nr; ++i) kernel.template operator()<1, NT>(i, t);
    }
  }
  for (; t < n_tokens; ++t) {
    int64_t i = 0;
    for (; i + 4 <= nr; i += 4) kernel.template operator()<4, 1>(i, t);
    for (; i < nr; ++i) kernel.template operator()<1, 1>(i, t);
  }
}

template <class T>
void sweep(const Tile<T>& tile, int64_t nr, const Activations& act, int64_t n_tokens, int64_t n_in,
           float* y, int64_t n_out, int64_t r0) {
  sweep_tiles<kRowTile<T>, kTokenTile<T>>(nr, n_tokens, [&]<int R, int U>(int64_t i, int64_t t) {
    dot_tile<T, R, U>(tile, i, act, t, n_in, y, n_out, r0);
  });
}

#if HEED_QDOT_X86
// Q4_K / Q5_K prefill on x86: unsigned quants enter pmaddubsw as they are, so the
// tile keeps bytes (half the int16 tile's traffic), in pair order on both sides
// (see pair_order), and a (row, token, group pair) costs two pmaddubsw, one
// pmaddwd and two adds. The integer lanes are ggml's, so the bits are too.
template <class T>
constexpr bool kByteTile = T::kBias == Bias::Q4K || T::kBias == Bias::Q5K;

// Int16 lanes (s_2j, s_2j+1) repeated, from the block's 8 scales widened to int16 in
// both halves.
HWY_INLINE __m256i scale_pair(__m256i sc16, int j) {
  const int lo = 4 * j;  // byte offset of s_2j
  const __m128i m = _mm_setr_epi8(lo, lo + 1, lo + 2, lo + 3, lo, lo + 1, lo + 2, lo + 3, lo,
                                  lo + 1, lo + 2, lo + 3, lo, lo + 1, lo + 2, lo + 3);
  return _mm256_shuffle_epi8(sc16, _mm256_set_m128i(m, m));
}

template <class T, int NR, int NT>
HWY_INLINE void dot_tile_bytes(const uint8_t* q, const typename T::Params* params, int64_t i0,
                               const Activations& act, int64_t t0, int64_t n_in, float* y,
                               int64_t n_out, int64_t r0) {
  const int64_t n_blocks = n_in / kQK_K;
  const uint8_t* w[NR];
  const typename T::Params* p[NR];
  for (int r = 0; r < NR; ++r) {
    w[r] = q + (i0 + r) * n_in;
    p[r] = params + (i0 + r) * n_blocks;
  }
  const uint8_t* a[NT];
  const float* ad[NT];
  for (int t = 0; t < NT; ++t) {
    a[t] = act.paired + (t0 + t) * n_in;
    ad[t] = act.d + (t0 + t) * n_blocks;
  }
  RowAcc s[NR][NT];
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) acc_init(s[r][t]);
  for (int64_t b = 0; b < n_blocks; ++b) {
    for (int t = 0; t < NT; ++t) {
      const __m128i pairs = _mm_loadu_si128(
          reinterpret_cast<const __m128i*>(act.bsum_pairs + ((t0 + t) * n_blocks + b) * 8));
      for (int r = 0; r < NR; ++r)
        acc_k4_min_lanes<T>(s[r][t], k4_min_lanes(p[r][b].group_mins, pairs),
                            -(p[r][b].dmin * ad[t][b]));
    }
    __m256i sc16[NR];
    for (int r = 0; r < NR; ++r)
      sc16[r] = _mm256_broadcastsi128_si256(
          _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p[r][b].scales))));
    __m256i P[NR][NT];
    for (int r = 0; r < NR; ++r)
      for (int t = 0; t < NT; ++t) P[r][t] = _mm256_setzero_si256();
    for (int j = 0; j < kQK_K / 64; ++j) {
      const int64_t e = b * kQK_K + 64 * j;
      __m256i w1[NR], w2[NR], sv[NR];
      for (int r = 0; r < NR; ++r) {
        w1[r] = load32(w[r] + e);
        w2[r] = load32(w[r] + e + 32);
        sv[r] = scale_pair(sc16[r], j);
      }
      for (int t = 0; t < NT; ++t) {
        const __m256i a1 = load32(a[t] + e), a2 = load32(a[t] + e + 32);
        for (int r = 0; r < NR; ++r)
          P[r][t] = _mm256_add_epi32(
              P[r][t], _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(w1[r], a1),
                                                          _mm256_maddubs_epi16(w2[r], a2)),
                                         sv[r]));
      }
    }
    for (int r = 0; r < NR; ++r)
      for (int t = 0; t < NT; ++t) {
        VI G[1];
        G[0].raw = P[r][t];
        acc_block<T>(s[r][t], G, p[r][b], ad[t][b], 0.0f);
      }
  }
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) y[(t0 + t) * n_out + r0 + i0 + r] = acc_finish<T>(s[r][t]);
}
#endif

#if HEED_QDOT_ZMM
// ---- 512-bit prefill (AVX-512 VNNI) -----------------------------------------------
// ggml's lanes stay 8 int32 wide, so one zmm carries two (row, token) dot
// products: rows 2p and 2p + 1 of a tile's row pair p, each in a 256-bit half,
// against one token's activations broadcast to both halves. Every lane goes
// through ggml's integer sums and float steps, so the bits are the 256-bit
// kernels' (and decode's), at half the instructions per row; VNNI's fused
// multiply-adds take one more off each step.

HWY_INLINE __m512i both_halves(const void* p) {
  return _mm512_broadcast_i64x4(load32(p));
}
// Lanes 0..7: lo, lanes 8..15: hi.
HWY_INLINE __m512 halves(float lo, float hi) {
  return _mm512_insertf32x8(_mm512_set1_ps(lo), _mm256_set1_ps(hi), 1);
}
// hsum_float_8 of each half: the results of rows 2p and 2p + 1 (y1 null for a padding row).
HWY_INLINE void store_pair(__m512 acc, float extra_lo, float extra_hi, float* y0, float* y1) {
  VF lo, hi;
  lo.raw = _mm512_castps512_ps256(acc);
  hi.raw = _mm512_extractf32x8_ps(acc, 1);
  *y0 = hsum8(&lo) + extra_lo;
  if (y1) *y1 = hsum8(&hi) + extra_hi;
}

// A tile in row pairs, with block params per row: the signed 32-element types
// (Q8_0, Q4_0, Q5_0, IQ4_NL) [pairs][blocks][64] bytes (each row's block w + 128,
// see dot_pairs_s8); Q4_K / Q5_K [pairs][blocks][4][128] bytes (per 64 elements:
// v1 of both rows, then v2 of both, in pair order); Q6_K and Q3_K int16 values,
// [pairs][n_in / 16][2][16] in the pair interleave of dot_tile.
template <class T>
constexpr bool kSignedBytePair = std::is_same_v<T, TQ8_0> || std::is_same_v<T, TQ4_0> ||
                                 std::is_same_v<T, TQ5_0> || std::is_same_v<T, TIQ4_NL>;
template <class T>
constexpr bool kPairI16 = T::kBias == Bias::None && !kSignedBytePair<T>;
template <class T>
constexpr bool kPairTile = kSignedBytePair<T> || kByteTile<T> || kPairI16<T>;
// Bytes of one row's share of a pair tile.
template <class T>
constexpr int64_t kPairValueBytes = kPairI16<T> ? 2 : 1;

template <class T>
struct PairTile {
  const uint8_t* q;
  const typename T::Params* params;  // [rows][n_blocks]
};

// Block b's weight scales of rows 2 pair and 2 pair + 1, as halves.
template <class T>
HWY_INLINE __m512 pair_scales(const PairTile<T>& tile, int64_t pair, int64_t n_blocks, int64_t b) {
  return halves(tile.params[2 * pair * n_blocks + b].d,
                tile.params[(2 * pair + 1) * n_blocks + b].d);
}
// ggml's float step of a block: acc += float(lanes) * (d_w * d_a).
HWY_INLINE __m512 block_step(__m512 acc, __m512i lanes, __m512 dw, __m512 ad) {
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(lanes), _mm512_mul_ps(dw, ad), acc);
}
template <int NP, int NT>
HWY_INLINE void block_steps(__m512 (&acc)[NP][NT], const __m512i (&lanes)[NP][NT],
                            const __m512 (&dw)[NP], const Activations& act, int64_t t0,
                            int64_t n_blocks, int64_t b) {
  for (int t = 0; t < NT; ++t) {
    const __m512 ad = _mm512_set1_ps(act.d[(t0 + t) * n_blocks + b]);
    for (int p = 0; p < NP; ++p) acc[p][t] = block_step(acc[p][t], lanes[p][t], dw[p], ad);
  }
}

// Signed x signed, vpdpbusd u8 x s8: the tile holds w + 128 (w ^ 0x80) and each
// token's lane k starts at -128 (a[4k] + ... + a[4k+3]) (act.lane_bias), which
// leaves sum w a exactly: one instruction per block, row pair and token.
template <class T, int NP, int NT>
HEED_VNNI void dot_pairs_s8(const PairTile<T>& tile, int64_t p0, int64_t nr, const Activations& act,
                            int64_t t0, int64_t n_in, float* y, int64_t n_out, int64_t r0) {
  const int64_t n_blocks = n_in / kQK;
  const BlockQ8_0* a[NT];
  for (int t = 0; t < NT; ++t)
    a[t] = reinterpret_cast<const BlockQ8_0*>(act.raw + (t0 + t) * act.raw_row_bytes);
  __m512 acc[NP][NT];
  for (int p = 0; p < NP; ++p)
    for (int t = 0; t < NT; ++t) acc[p][t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    __m512i w[NP];
    __m512 dw[NP];
    for (int p = 0; p < NP; ++p) {
      const int64_t pb = (p0 + p) * n_blocks + b;
      w[p] = _mm512_load_si512(tile.q + pb * 64);
      dw[p] = pair_scales(tile, p0 + p, n_blocks, b);
    }
    for (int t = 0; t < NT; ++t) {
      const int64_t tb = (t0 + t) * n_blocks + b;
      const __m512i av = both_halves(a[t][b].qs);
      const __m512i bias = both_halves(act.lane_bias + tb * 8);
      const __m512 ad = _mm512_set1_ps(act.d[tb]);
      for (int p = 0; p < NP; ++p)
        acc[p][t] = block_step(acc[p][t], _mm512_dpbusd_epi32(bias, w[p], av), dw[p], ad);
    }
  }
  for (int p = 0; p < NP; ++p)
    for (int t = 0; t < NT; ++t) {
      const int64_t row = 2 * (p0 + p);
      float* out = y + (t0 + t) * n_out + r0 + row;
      store_pair(acc[p][t], 0.0f, 0.0f, out, row + 1 < nr ? out + 1 : nullptr);
    }
}

// Q4_K / Q5_K: dot_tile_bytes on row pairs, with vpdpwssd for pmaddwd + add.
template <class T, int NP, int NT>
HEED_VNNI void dot_pairs_k4(const PairTile<T>& tile, int64_t p0, int64_t nr, const Activations& act,
                            int64_t t0, int64_t n_in, float* y, int64_t n_out, int64_t r0) {
  const int64_t n_blocks = n_in / kQK_K;
  const uint8_t* a[NT];
  for (int t = 0; t < NT; ++t) a[t] = act.paired + (t0 + t) * n_in;
  __m512 acc[NP][NT];
  __m256 acc_m[NP][NT];         // Q4_K: ggml's 4-lane min accumulator, rows 2p | 2p + 1
  float summs[NP][NT][2] = {};  // Q5_K: its scalar one
  for (int p = 0; p < NP; ++p)
    for (int t = 0; t < NT; ++t) {
      acc[p][t] = _mm512_setzero_ps();
      acc_m[p][t] = _mm256_setzero_ps();
    }
  for (int64_t b = 0; b < n_blocks; ++b) {
    const typename T::Params* prm[NP][2];
    __m256i mins[NP];
    __m512i sc16[NP];
    __m512 dw[NP];
    for (int p = 0; p < NP; ++p) {
      for (int h = 0; h < 2; ++h) prm[p][h] = &tile.params[(2 * (p0 + p) + h) * n_blocks + b];
      mins[p] = _mm256_cvtepu8_epi16(_mm_unpacklo_epi64(
          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(prm[p][0]->group_mins)),
          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(prm[p][1]->group_mins))));
      const auto scales = [&](int h) {
        return _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(
            _mm_loadl_epi64(reinterpret_cast<const __m128i*>(prm[p][h]->scales))));
      };
      sc16[p] = _mm512_inserti64x4(_mm512_castsi256_si512(scales(0)), scales(1), 1);
      dw[p] = pair_scales(tile, p0 + p, n_blocks, b);
    }
    for (int t = 0; t < NT; ++t) {
      const int64_t tb = (t0 + t) * n_blocks + b;
      const __m256i pairs = _mm256_broadcastsi128_si256(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(act.bsum_pairs + tb * 8)));
      const float ad = act.d[tb];
      for (int p = 0; p < NP; ++p) {
        const __m256i lanes = _mm256_madd_epi16(mins[p], pairs);
        if constexpr (T::kBias == Bias::Q4K) {
          const __m256 dmin = _mm256_insertf128_ps(_mm256_set1_ps(-(prm[p][0]->dmin * ad)),
                                                   _mm_set1_ps(-(prm[p][1]->dmin * ad)), 1);
          acc_m[p][t] = _mm256_fmadd_ps(dmin, _mm256_cvtepi32_ps(lanes), acc_m[p][t]);
        } else {
          HWY_ALIGN int32_t l[8];
          _mm256_store_si256(reinterpret_cast<__m256i*>(l), lanes);
          for (int h = 0; h < 2; ++h)
            summs[p][t][h] = std::fma(
                -(prm[p][h]->dmin * ad),
                static_cast<float>((l[4 * h] + l[4 * h + 1]) + (l[4 * h + 2] + l[4 * h + 3])),
                summs[p][t][h]);
        }
      }
    }
    __m512i P[NP][NT];
    for (int p = 0; p < NP; ++p)
      for (int t = 0; t < NT; ++t) P[p][t] = _mm512_setzero_si512();
    for (int j = 0; j < kQK_K / 64; ++j) {
      const int64_t e = b * kQK_K + 64 * j;
      const int lo = 4 * j;  // byte offset of s_2j in each 128-bit lane
      const __m512i pick = _mm512_broadcast_i32x4(
          _mm_setr_epi8(lo, lo + 1, lo + 2, lo + 3, lo, lo + 1, lo + 2, lo + 3, lo, lo + 1, lo + 2,
                        lo + 3, lo, lo + 1, lo + 2, lo + 3));
      __m512i w1[NP], w2[NP], sv[NP];
      for (int p = 0; p < NP; ++p) {
        const uint8_t* q = tile.q + (((p0 + p) * n_blocks + b) * 4 + j) * 128;
        w1[p] = _mm512_load_si512(q);
        w2[p] = _mm512_load_si512(q + 64);
        sv[p] = _mm512_shuffle_epi8(sc16[p], pick);
      }
      for (int t = 0; t < NT; ++t) {
        const __m512i a1 = both_halves(a[t] + e), a2 = both_halves(a[t] + e + 32);
        for (int p = 0; p < NP; ++p)
          P[p][t] = _mm512_dpwssd_epi32(
              P[p][t],
              _mm512_add_epi16(_mm512_maddubs_epi16(w1[p], a1), _mm512_maddubs_epi16(w2[p], a2)),
              sv[p]);
      }
    }
    block_steps(acc, P, dw, act, t0, n_blocks, b);
  }
  for (int p = 0; p < NP; ++p)
    for (int t = 0; t < NT; ++t) {
      float extra[2] = {summs[p][t][0], summs[p][t][1]};
      if constexpr (T::kBias == Bias::Q4K) {
        HWY_ALIGN float m[8];
        _mm256_store_ps(m, acc_m[p][t]);
        for (int h = 0; h < 2; ++h)
          extra[h] = (m[4 * h] + m[4 * h + 2]) + (m[4 * h + 1] + m[4 * h + 3]);
      }
      const int64_t row = 2 * (p0 + p);
      float* out = y + (t0 + t) * n_out + r0 + row;
      store_pair(acc[p][t], extra[0], extra[1], out, row + 1 < nr ? out + 1 : nullptr);
    }
}

// Int16 tiles: one vpdpwssd per 16 elements of a row pair and token (dot_tile's
// two pmaddwd and adds per row).
template <class T, int NP, int NT>
HEED_VNNI void dot_pairs_i16(const PairTile<T>& tile, int64_t p0, int64_t nr,
                             const Activations& act, int64_t t0, int64_t n_in, float* y,
                             int64_t n_out, int64_t r0) {
  const int64_t n_blocks = n_in / T::kElems;
  const auto* q = reinterpret_cast<const int16_t*>(tile.q);
  __m512 acc[NP][NT];
  for (int p = 0; p < NP; ++p)
    for (int t = 0; t < NT; ++t) acc[p][t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    __m512i P[NP][NT];
    for (int p = 0; p < NP; ++p)
      for (int t = 0; t < NT; ++t) P[p][t] = _mm512_setzero_si512();
    for (int64_t e = b * T::kElems; e < (b + 1) * T::kElems; e += 16) {
      __m512i w[NP];
      for (int p = 0; p < NP; ++p) w[p] = _mm512_load_si512(q + (p0 + p) * 2 * n_in + 2 * e);
      for (int t = 0; t < NT; ++t) {
        const __m512i a = both_halves(act.q + (t0 + t) * n_in + e);
        for (int p = 0; p < NP; ++p) P[p][t] = _mm512_dpwssd_epi32(P[p][t], w[p], a);
      }
    }
    __m512 dw[NP];
    for (int p = 0; p < NP; ++p) dw[p] = pair_scales(tile, p0 + p, n_blocks, b);
    block_steps(acc, P, dw, act, t0, n_blocks, b);
  }
  for (int p = 0; p < NP; ++p)
    for (int t = 0; t < NT; ++t) {
      const int64_t row = 2 * (p0 + p);
      float* out = y + (t0 + t) * n_out + r0 + row;
      store_pair(acc[p][t], 0.0f, 0.0f, out, row + 1 < nr ? out + 1 : nullptr);
    }
}

// Unpacks rows [r0, r0 + nr) into a pair tile (an odd last row pairs with zeros).
template <class T>
void unpack_pairs(const WeightView& w, int64_t r0, int64_t nr, uint8_t* q,
                  typename T::Params* params) {
  const int64_t n_blocks = w.n_in / T::kElems;
  for (int64_t i = 0; i < (nr + 1) / 2 * 2; ++i) {
    const int h = static_cast<int>(i % 2);
    uint8_t* pair = q + (i / 2) * 2 * w.n_in * kPairValueBytes<T>;
    typename T::Params* row_params = params + i * n_blocks;
    if (i == nr) {  // padding row: zero weights and scales
      for (int64_t b = 0; b < n_blocks; ++b) {
        row_params[b] = {};
        if constexpr (kPairI16<T>) {
          for (int64_t c = 0; c < T::kElems / 16; ++c)
            std::memset(pair + ((b * T::kElems / 16 + c) * 2 + h) * 32, 0, 32);
        } else if constexpr (kSignedBytePair<T>) {
          std::memset(pair + b * 64 + 32 * h, 0x80, 32);
        } else {
          for (int j = 0; j < 4; ++j)
            for (int v = 0; v < 2; ++v)
              std::memset(pair + (b * 4 + j) * 128 + 64 * v + 32 * h, 0, 32);
        }
      }
      continue;
    }
    const auto* blocks = reinterpret_cast<const typename T::W*>(
        w.data + static_cast<size_t>(r0 + i) * w.row_stride_bytes);
    for (int64_t b = 0; b < n_blocks; ++b) {
      if constexpr (kPairI16<T>) {
        HWY_ALIGN int16_t values[T::kElems];
        T::unpack(blocks[b], values, &row_params[b]);
        interleave_pairs(values, T::kElems);
        for (int64_t c = 0; c < T::kElems / 16; ++c)
          std::memcpy(pair + ((b * T::kElems / 16 + c) * 2 + h) * 32, values + 16 * c, 32);
      } else if constexpr (kSignedBytePair<T>) {
        T::params(blocks[b], &row_params[b]);
        _mm256_store_si256(reinterpret_cast<__m256i*>(pair + b * 64 + 32 * h),
                           _mm256_xor_si256(Direct<T>::values(blocks[b]), bytes(0x80)));
      } else {
        T::params(blocks[b], &row_params[b]);
        HWY_ALIGN uint8_t quants[kQK_K];
        T::quants(blocks[b], quants);
        for (int j = 0; j < 4; ++j) {
          __m256i v1, v2;
          pair_order(load32(quants + 64 * j), load32(quants + 64 * j + 32), &v1, &v2);
          uint8_t* out = pair + (b * 4 + j) * 128 + 32 * h;
          _mm256_store_si256(reinterpret_cast<__m256i*>(out), v1);
          _mm256_store_si256(reinterpret_cast<__m256i*>(out + 64), v2);
        }
      }
    }
  }
}

// -128 (a[4k] + ... + a[4k+3]) for lane k of the signed byte tiles: 128 x a, negated.
// pmaddubsw cannot saturate here (|128 (a + b)| <= 32768), so pmaddwd by ones
// gives vpdpbusd's sums exactly. Not a ymm vpdpbusd: Highway 1.0.3's AVX3_DL
// target string enables AVX-VNNI, and GCC then encodes a ymm vpdpbusd as VEX,
// which Zen 4 and Ice Lake (AVX3_DL CPUs without AVX-VNNI) fault on. The test
// Avx3Dl.NoVexVnniInstructions checks the built library for such encodings.
void s8_lane_bias(const int8_t* qs, int32_t* out) {
  const __m256i pairs = _mm256_maddubs_epi16(bytes(0x80), load32(qs));
  const __m256i lanes = _mm256_madd_epi16(pairs, ones16());
  _mm256_store_si256(reinterpret_cast<__m256i*>(out),
                     _mm256_sub_epi32(_mm256_setzero_si256(), lanes));
}

// ---- 512-bit decode (AVX-512 VNNI) ------------------------------------------------
// Still one row at a time (one read stream per thread), but two 32-element groups
// per zmm, each in its own 256-bit half against contiguous activations: a Q4_K /
// Q5_K chunk of 32 qs bytes broadcast to both halves gives its low nibbles (group
// 2g) in one half and its high nibbles (2g + 1) in the other; Q6_K's 64 ql bytes
// of a half block give groups (4h, 4h + 1) or (4h + 2, 4h + 3). pmaddubsw, then
// vpdpwssd with the group scales, sums each half into 8 int32 lanes, and the two
// halves added are ggml's 8 lanes of the block: integer sums, so any grouping is
// exact and the float steps (dot_row_direct's) see the same numbers.

// Int16 lanes 0..15 = lo, 16..31 = hi.
HWY_INLINE __m512i halves16(int lo, int hi) {
  return _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(lo)),
                            _mm256_set1_epi16(static_cast<int16_t>(hi)), 1);
}
HWY_INLINE __m256i fold_halves(__m512i v) {
  return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

template <class T>
struct ZmmDirect {
  static constexpr bool kAvailable = false;
};

// sc16: the 8 group scales as int16 in lanes 0..7; vpermw spreads scale 2g over
// the low half and 2g + 1 over the high half.
template <bool kFifthBit, class Block>
HEED_VNNI HWY_INLINE __m256i k4_lanes_zmm(const Block& b, const uint8_t* qh, __m512i sc16,
                                          const int8_t* a) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512i high = _mm512_setzero_si512();
  if constexpr (kFifthBit) high = both_halves(qh);
  __m512i sum = _mm512_setzero_si512();
  for (int g = 0; g < 4; ++g) {
    // Shifting int16 lanes moves the high byte's bits into the low byte's top,
    // which the byte masks clear.
    __m512i w =
        _mm512_and_si512(_mm512_srlv_epi16(both_halves(b.qs + 32 * g), halves16(0, 4)), low4);
    if constexpr (kFifthBit)
      w = _mm512_or_si512(
          w, _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(high, halves16(2 * g, 2 * g + 1)),
                                                _mm512_set1_epi8(1)),
                               4));
    const __m512i scale = _mm512_permutexvar_epi16(halves16(2 * g, 2 * g + 1), sc16);
    sum = _mm512_dpwssd_epi32(sum, _mm512_maddubs_epi16(w, _mm512_loadu_si512(a + 64 * g)), scale);
  }
  return fold_halves(sum);
}
HWY_INLINE __m512i k4_scales16(const KMinParams& p) {
  return _mm512_castsi128_si512(
      _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p.scales))));
}
template <>
struct ZmmDirect<TQ4_K> : DirectAvailable {
  HEED_VNNI static HWY_INLINE __m256i lanes(const BlockQ4_K& b, const KMinParams& p,
                                            const int8_t* a) {
    return k4_lanes_zmm<false>(b, nullptr, k4_scales16(p), a);
  }
  // A whole block in vector registers: k4_params' scalar bit moves and the
  // store and reload of the scales become SSE ops on 32-bit lanes, and the bsum
  // pairs are summed once per call, not once per row (+2-4 % tg on Zen 5). The
  // float steps are acc_mins' and acc_block's on the same products: same bits.
  static constexpr bool kFusedBlock = true;
  HEED_VNNI static HWY_INLINE void block(RowAcc& s, const BlockQ4_K& b, const int16_t* pairs,
                                         float ad, const int8_t* a) {
    // [d, dmin] * ad: the products half(d) * ad and half(dmin) * ad.
    uint32_t d_dmin;  // the block's first 4 bytes
    std::memcpy(&d_dmin, &b, sizeof(d_dmin));
    const __m128 prod =
        _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(d_dmin))), _mm_set1_ps(ad));
    // k4_params on lanes: w0 = lane 0, w1 = lane 1, w2 = lane 2 of the scale bytes.
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
    const __m128i low6 = _mm_and_si128(v, _mm_set1_epi32(0x3f3f3f3f));
    const __m128i w2_nibbles =
        _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(v, 0xAA), _mm_setr_epi32(0, 4, 0, 0)),
                      _mm_set1_epi32(0x0f0f0f0f));
    const __m128i top2 = _mm_and_si128(_mm_srli_epi32(v, 2), _mm_set1_epi32(0x30303030));
    // Bytes 0..7: the 8 scales, 8..15: the 8 mins.
    const __m128i scale_min = _mm_unpacklo_epi32(low6, _mm_or_si128(w2_nibbles, top2));
    const __m128i min_lanes =
        _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_srli_si128(scale_min, 8)),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(pairs)));
    const float dmin = -_mm_cvtss_f32(_mm_movehdup_ps(prod));
    s.acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(min_lanes), s.acc_m);
    const __m256i lanes =
        k4_lanes_zmm<false>(b, nullptr, _mm512_castsi128_si512(_mm_cvtepu8_epi16(scale_min)), a);
    s.acc[0].raw = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), _mm256_set1_ps(_mm_cvtss_f32(prod)),
                                   s.acc[0].raw);
  }
};
template <>
struct ZmmDirect<TQ5_K> : DirectAvailable {
  HEED_VNNI static HWY_INLINE __m256i lanes(const BlockQ5_K& b, const KMinParams& p,
                                            const int8_t* a) {
    return k4_lanes_zmm<true>(b, b.qh, k4_scales16(p), a);
  }
};
// Q6_K: part 0 of half h holds the low nibbles of ql[64h..64h+63] (groups 4h, 4h + 1:
// qh bits 0-1, 2-3), part 1 their high nibbles (4h + 2, 4h + 3: bits 4-5, 6-7).
template <>
struct ZmmDirect<TQ6_K> : DirectAvailable {
  HEED_VNNI static HWY_INLINE __m256i lanes(const BlockQ6_K& b, const ScaleParams&,
                                            const int8_t* a) {
    // 16 int8 scales, one per 16 elements: int16 lane l of part (h, part) takes
    // scale 8h + 4 part + l / 8.
    const __m512i sc16 = _mm512_castsi256_si512(
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales))));
    const __m512i lane_eighth = _mm512_srli_epi16(
        _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13,
                         12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        3);
    const __m512i low4 = _mm512_set1_epi8(0x0F), thirty_two = _mm512_set1_epi8(32);
    __m512i sum = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m512i ql = _mm512_loadu_si512(b.ql + 64 * h);
      const __m512i qh = both_halves(b.qh + 32 * h);
      for (int part = 0; part < 2; ++part) {
        const __m512i nib = _mm512_and_si512(part ? _mm512_srli_epi16(ql, 4) : ql, low4);
        const __m512i top = _mm512_slli_epi16(
            _mm512_and_si512(_mm512_srlv_epi16(qh, halves16(4 * part, 4 * part + 2)),
                             _mm512_set1_epi8(3)),
            4);
        const __m512i av = _mm512_loadu_si512(a + 128 * h + 64 * part);
        const __m512i p16 = _mm512_sub_epi16(_mm512_maddubs_epi16(_mm512_or_si512(nib, top), av),
                                             _mm512_maddubs_epi16(thirty_two, av));
        const __m512i scale = _mm512_permutexvar_epi16(
            _mm512_add_epi16(lane_eighth,
                             _mm512_set1_epi16(static_cast<int16_t>(8 * h + 4 * part))),
            sc16);
        sum = _mm512_dpwssd_epi32(sum, p16, scale);
      }
    }
    return fold_halves(sum);
  }
};

template <class T>
void gemm_pair_tiles(const WeightView& w, const Activations& act, int64_t n_tokens, float* y,
                     int64_t tile_rows, int64_t tile_begin, int64_t tile_end) {
  const int64_t n_blocks = w.n_in / T::kElems;
  thread_local AlignedVector<uint8_t> q;
  thread_local std::vector<typename T::Params> params;
  const int64_t padded = (tile_rows + 1) / 2 * 2;
  const auto tile_bytes = static_cast<size_t>(padded * w.n_in * kPairValueBytes<T>);
  if (q.size() < tile_bytes) q.resize(tile_bytes);
  if (params.size() < static_cast<size_t>(padded * n_blocks)) params.resize(padded * n_blocks);
  const PairTile<T> tile{q.data(), params.data()};
  for (int64_t t = tile_begin; t < tile_end; ++t) {
    const int64_t r0 = t * tile_rows;
    const int64_t nr = std::min(tile_rows, w.n_out - r0);
    unpack_pairs<T>(w, r0, nr, q.data(), params.data());
    const auto run = [&]<int P, int U>(int64_t p0, int64_t t0) {
      if constexpr (kSignedBytePair<T>) {
        dot_pairs_s8<T, P, U>(tile, p0, nr, act, t0, w.n_in, y, w.n_out, r0);
      } else if constexpr (kPairI16<T>) {
        dot_pairs_i16<T, P, U>(tile, p0, nr, act, t0, w.n_in, y, w.n_out, r0);
      } else {
        dot_pairs_k4<T, P, U>(tile, p0, nr, act, t0, w.n_in, y, w.n_out, r0);
      }
    };
    if constexpr (kSignedBytePair<T> || kPairI16<T>) {
      sweep_tiles<2, 6>((nr + 1) / 2, n_tokens, run);
    } else {
      sweep_tiles<2, 3>((nr + 1) / 2, n_tokens, run);
    }
  }
}
#endif

template <class T>
constexpr bool kUsesByteTile =
#if HEED_QDOT_X86
    kByteTile<T>;
#else
    false;
#endif

// Unpack a tile of rows once into thread-local scratch (before any dot, so the
// stores and the vector loads stay apart), then run every token over it: bytes
// for the byte-tile types, int16 values with the scales multiplied in otherwise.
template <class T>
void gemm_tiles(const WeightView& w, const Activations& act, int64_t n_tokens, float* y,
                int64_t tile_rows, int64_t tile_begin, int64_t tile_end) {
  const int64_t n_blocks = w.n_in / T::kElems;
  using Value = std::conditional_t<kUsesByteTile<T>, uint8_t, int16_t>;
  thread_local AlignedVector<Value> q;
  thread_local std::vector<typename T::Params> params;
  if (q.size() < static_cast<size_t>(tile_rows * w.n_in)) q.resize(tile_rows * w.n_in);
  if (params.size() < static_cast<size_t>(tile_rows * n_blocks))
    params.resize(tile_rows * n_blocks);
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    const int64_t r0 = tile * tile_rows;
    const int64_t nr = std::min(tile_rows, w.n_out - r0);
    for (int64_t i = 0; i < nr; ++i) {
      const auto* blocks = reinterpret_cast<const typename T::W*>(
          w.data + static_cast<size_t>(r0 + i) * w.row_stride_bytes);
      Value* row = q.data() + i * w.n_in;
      typename T::Params* row_params = params.data() + i * n_blocks;
      for (int64_t b = 0; b < n_blocks; ++b) {
        if constexpr (kUsesByteTile<T>) {
#if HEED_QDOT_X86
          T::params(blocks[b], &row_params[b]);
          HWY_ALIGN uint8_t quants[kQK_K];
          T::quants(blocks[b], quants);
          pair_order_block(quants, row + b * T::kElems);
#endif
        } else {
          T::unpack(blocks[b], row + b * T::kElems, &row_params[b]);
        }
      }
      if constexpr (!kUsesByteTile<T> && kPairInterleave) interleave_pairs(row, w.n_in);
    }
#if HEED_QDOT_X86
    if constexpr (kUsesByteTile<T>) {
      sweep_tiles<2, 3>(nr, n_tokens, [&]<int R, int U>(int64_t i, int64_t t) {
        dot_tile_bytes<T, R, U>(q.data(), params.data(), i, act, t, w.n_in, y, w.n_out, r0);
      });
      continue;
    }
#endif
    if constexpr (!kUsesByteTile<T>)
      sweep<T>(Tile<T>{q.data(), params.data()}, nr, act, n_tokens, w.n_in, y, w.n_out, r0);
  }
}

// Widens the activation quants to int16 and their scales (and Q8_1 sums, Q8_K
// bsums) to float / contiguous arrays, once per call.
struct ActScratch {
  AlignedVector<int16_t> q, bsums, bsum_pairs;
  AlignedVector<int32_t> lane_bias;
  AlignedVector<float> d, s;
  AlignedVector<uint8_t> paired;
};

// How a matmul call reads its activations besides the raw blocks.
enum class ActLayout { Raw, Widened, Paired, LaneBias };

template <class T>
Activations prepare(const uint8_t* blocks, size_t act_bytes, int64_t n_tokens, int64_t n_in,
                    ActLayout layout, ActScratch* sc, ThreadPool& pool) {
  using Act = typename T::Act::Block;
  const int64_t n_blocks = n_in / T::kElems;
  const auto grow = [](auto& v, int64_t n) {
    if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  };
  const bool widen = layout == ActLayout::Widened;
  const bool paired = HEED_QDOT_X86 && kKMins<T> && layout == ActLayout::Paired;
  // The fused Q4_K decode block (ZmmDirect) reads the bsum pairs too.
  const bool pairs = paired || (HEED_QDOT_ZMM && T::kBias == Bias::Q4K && layout == ActLayout::Raw);
  if (widen) grow(sc->q, n_tokens * n_in);
  if (paired) grow(sc->paired, n_tokens * n_in);
  if (pairs) grow(sc->bsum_pairs, n_tokens * n_blocks * 8);
  const bool biased = HEED_QDOT_ZMM && layout == ActLayout::LaneBias;
  if (biased) grow(sc->lane_bias, n_tokens * n_blocks * 8);
  grow(sc->d, n_tokens * n_blocks);
  if constexpr (T::kBias == Bias::MinTimesSum) grow(sc->s, n_tokens * n_blocks);
  if constexpr (kKMins<T>) grow(sc->bsums, n_tokens * n_blocks * 16);
  const auto rows = [&](size_t t_begin, size_t t_end, int) {
    for (auto t = static_cast<int64_t>(t_begin); t < static_cast<int64_t>(t_end); ++t) {
      const Act* a = reinterpret_cast<const Act*>(blocks + t * act_bytes);
      for (int64_t b = 0; b < n_blocks; ++b) {
        const int64_t i = t * n_blocks + b;
        sc->d[i] = T::Act::d(a[b]);
        if constexpr (T::kBias == Bias::MinTimesSum) sc->s[i] = half(a[b].s);
        if constexpr (kKMins<T>) {
          std::copy(a[b].bsums, a[b].bsums + 16, sc->bsums.data() + i * 16);
#if HEED_QDOT_X86
          if (paired)
            pair_order_block(reinterpret_cast<const uint8_t*>(a[b].qs),
                             sc->paired.data() + t * n_in + b * T::kElems);
          if (pairs)
            _mm_storeu_si128(reinterpret_cast<__m128i*>(sc->bsum_pairs.data() + i * 8),
                             bsum_pairs(a[b].bsums));
#endif
        }
#if HEED_QDOT_ZMM
        if constexpr (kSignedBytePair<T>) {
          if (biased) s8_lane_bias(a[b].qs, sc->lane_bias.data() + i * 8);
        }
#endif
        if (widen) std::copy(a[b].qs, a[b].qs + T::kElems, sc->q.data() + t * n_in + b * T::kElems);
      }
      if (widen && kPairInterleave) interleave_pairs(sc->q.data() + t * n_in, n_in);
    }
  };
  // A prompt's rows are independent: spread them (a decode step stays on one thread).
  pool.parallel_rows(static_cast<size_t>(n_tokens), rows);
  Activations act{sc->q.data(), sc->d.data(), sc->s.data(), sc->bsums.data(), blocks, act_bytes};
  if (biased) act.lane_bias = sc->lane_bias.data();
  if (paired) act.paired = sc->paired.data();
  if (pairs) act.bsum_pairs = sc->bsum_pairs.data();
  return act;
}

template <class Fn>
void with_traits(DType type, Fn&& fn) {
  switch (type) {
    case DType::Q4_0:
      return fn(TQ4_0{});
    case DType::Q4_1:
      return fn(TQ4_1{});
    case DType::Q5_0:
      return fn(TQ5_0{});
    case DType::Q5_1:
      return fn(TQ5_1{});
    case DType::Q8_0:
      return fn(TQ8_0{});
    case DType::IQ4_NL:
      return fn(TIQ4_NL{});
    case DType::Q2_K:
      return fn(TQ2_K{});
    case DType::Q3_K:
      return fn(TQ3_K{});
    case DType::Q4_K:
      return fn(TQ4_K{});
    case DType::Q5_K:
      return fn(TQ5_K{});
    case DType::Q6_K:
      return fn(TQ6_K{});
    default:
      return;
  }
}

// ---- F16 decode -----------------------------------------------------------------
// ggml_vec_dot_f16 as its AVX/F16C build runs it: four 8-lane accumulators over
// 32-element steps, reduced (0+2, 1+3, then 0+1), the 8 lanes added as
// ((l0+l4)+(l1+l5)) + ((l2+l6)+(l3+l7)), the tail in double. The activations are
// already rounded to f16 (and widened back, exactly).
using DF8 = hn::CappedTag<float, 8>;
// Elements per step of each row: ggml's four 8-lane accumulators. With 16 float
// lanes (AVX-512) one vector holds two of them, (0 | 1) and (2 | 3), which are
// adjacent elements: the same lanewise sums in half the instructions.
constexpr int64_t kHalfStep = 32;
using DFH = hn::CappedTag<float, 16>;
using DHH = hn::Rebind<hwy::float16_t, DFH>;
constexpr int64_t kHalfLanes = static_cast<int64_t>(hn::MaxLanes(DFH()));
constexpr int kHalfAccs = kHalfLanes == 16 ? 2 : 4;  // vectors per step (1 lane on HWY_SCALAR)
constexpr int kHalfUnroll = 8;  // Zen 4: 8 steps 5 % faster than 1 (p10 8 %), 2 slower

// One row at a time and no software prefetch, so that each thread's reads are
// one sequential stream, which the hardware prefetcher follows across rows.
// TinyLlama F16 tg on Zen 4, token-interleaved A/B in one process: 4 rows
// interleaved with a prefetch one row group ahead 12.4 t/s, 1 row with it 14.6,
// 1 row without it 15.9 (+28 %); 2 rows without it 11.6. Software prefetch
// at 512 B-16 KiB ahead (T0 or NTA) was slower in every trial.
// (A template, so that the branch for the other lane count is discarded.)
template <class DF = DFH>
HWY_INLINE void half_row(const WeightView& w, int64_t r, const float* HWY_RESTRICT x, float* y) {
  const DF df;
  const hn::Rebind<hwy::float16_t, DF> dh;
  constexpr int64_t kN = kHalfLanes;
  static_assert(kN == 16 || kN == 8 || kN == 4 || kN == 1, "lanes per vector");
  // Elements per loop step: 32 with 8 or 16 lanes (ggml's order, tested bit for
  // bit); fewer on narrower targets, which only need to be correct.
  constexpr int64_t kStep = kN * kHalfAccs;
  const auto* row = reinterpret_cast<const hwy::float16_t*>(w.data + r * w.row_stride_bytes);
  decltype(hn::Zero(df)) sum[kHalfAccs];
  for (auto& v : sum) v = hn::Zero(df);
  const int64_t np = w.n_in / kHalfStep * kHalfStep;
  const auto step = [&](int64_t i) HWY_ATTR {
    for (int j = 0; j < kHalfAccs; ++j)
      sum[j] = hn::MulAdd(hn::PromoteTo(df, hn::LoadU(dh, row + i + j * kN)),
                          hn::LoadU(df, x + i + j * kN), sum[j]);
  };
  // Unrolled by kHalfUnroll steps (each accumulator still sums in order, so
  // the bits are the same): fewer loop micro-ops per line keeps more of the
  // row's loads in flight in the reorder window.
  int64_t i = 0;
  for (; i + kHalfUnroll * kStep <= np; i += kHalfUnroll * kStep)
    for (int u = 0; u < kHalfUnroll; ++u) step(i + u * kStep);
  for (; i < np; i += kStep) step(i);
  double total;
#if HWY_TARGET != HWY_SCALAR
  if constexpr (kN == 16) {
    // (0 | 1) + (2 | 3), then the halves: (0 + 2) + (1 + 3), ggml's reduction.
    const auto v16 = hn::Add(sum[0], sum[1]);
    const DF8 d8;
    const auto v = hn::Add(hn::LowerHalf(d8, v16), hn::UpperHalf(d8, v16));
    HWY_ALIGN float l[8];
    hn::Store(v, d8, l);
    total = ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
  } else
#endif
  {
    const auto v = hn::Add(hn::Add(sum[0], sum[2]), hn::Add(sum[1], sum[3]));
    HWY_ALIGN float l[8] = {};
    hn::Store(v, df, l);
    total = kN == 8 ? ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]))
                    : static_cast<double>(hn::GetLane(hn::SumOfLanes(df, v)));
  }
  const auto* raw = reinterpret_cast<const uint16_t*>(row);
  for (int64_t i = np; i < w.n_in; ++i) total += static_cast<double>(fp16_to_f32(raw[i]) * x[i]);
  y[r] = static_cast<float>(total);
}

// x: the activations as f16 bits, widened here once (exactly) for the f32 FMAs.
void HalfDecodeTarget(const WeightView& w, const uint16_t* x_half, int64_t n_tokens, float* y,
                      ThreadPool& pool) {
  const int64_t total = n_tokens * w.n_in;
  thread_local AlignedVector<float> widened;
  if (widened.size() < static_cast<size_t>(total)) widened.resize(static_cast<size_t>(total));
  {
    const DFH df;
    const DHH dh;
    const auto* h = reinterpret_cast<const hwy::float16_t*>(x_half);
    int64_t i = 0;
    for (; i + kHalfLanes <= total; i += kHalfLanes)
      hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, h + i)), df, widened.data() + i);
    for (; i < total; ++i) widened[i] = fp16_to_f32(x_half[i]);
  }
  const float* const x = widened.data();  // not the workers' own thread_local
  constexpr int64_t kRowsPerTask = 16;
  const int64_t n_tasks = (w.n_out + kRowsPerTask - 1) / kRowsPerTask;
  pool.parallel_chunks(static_cast<size_t>(n_tasks), 1, [&](size_t begin, size_t end, int) {
    const int64_t r_end = std::min<int64_t>(w.n_out, static_cast<int64_t>(end) * kRowsPerTask);
    for (int64_t t = 0; t < n_tokens; ++t)
      for (auto r = static_cast<int64_t>(begin) * kRowsPerTask; r < r_end; ++r)
        half_row(w, r, x + t * w.n_in, y + t * w.n_out);
  });
}

// ---- Activation quantizers ------------------------------------------------------
// SIMD twins of quantize_act_q8_0 / _q8_1 / _q8_K (bit-identical: the same float
// products, round half to even by cvtps2dq, saturation as the scalar clamps).

using DFA = hn::ScalableTag<float>;
using DIA = hn::Rebind<int32_t, DFA>;
using D8A = hn::Rebind<int8_t, DFA>;

HWY_INLINE float abs_max(const float* x, int n) {
  const DFA df;
  auto m = hn::Zero(df);
  for (int j = 0; j < n; j += static_cast<int>(hn::Lanes(df)))
    m = hn::Max(m, hn::Abs(hn::LoadU(df, x + j)));
  return hn::GetLane(hn::MaxOfLanes(df, m));
}

// qs[j] = clamp(round_even(x[j] * scale), lo, 127) for j < n; returns the sum of the quants.
HWY_INLINE int32_t quantize_scaled(const float* x, float scale, int lo, int8_t* qs, int n) {
  const DFA df;
  const DIA di;
  const D8A d8;
  const auto vs = hn::Set(df, scale);
  auto sum = hn::Zero(di);
  for (int j = 0; j < n; j += static_cast<int>(hn::Lanes(df))) {
    auto v = hn::NearestInt(hn::Mul(hn::LoadU(df, x + j), vs));
    v = hn::Min(hn::Max(v, hn::Set(di, lo)), hn::Set(di, 127));
    sum = hn::Add(sum, v);
    hn::StoreU(hn::DemoteTo(d8, v), d8, qs + j);
  }
  return hn::GetLane(hn::SumOfLanes(di, sum));
}

void QuantizeActTarget(DType act_type, const float* x, uint8_t* out, int64_t n) {
  if (act_type == DType::Q8_0 || act_type == DType::Q8_1) {
    const bool with_sum = act_type == DType::Q8_1;
    const size_t stride = with_sum ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
    for (int64_t i = 0; i < n / kQK; ++i, x += kQK, out += stride) {
      const float amax = abs_max(x, kQK);
      const float d = amax / 127.f;
      const float id = amax != 0.0f ? 127.f / amax : 0.0f;
      int8_t* qs = reinterpret_cast<int8_t*>(out + (with_sum ? 4 : 2));
      const int32_t sum = quantize_scaled(x, id, -128, qs, kQK);
      const uint16_t dh = f32_to_fp16(d);
      std::memcpy(out, &dh, sizeof(dh));
      if (with_sum) {
        const uint16_t sh = f32_to_fp16(d * static_cast<float>(sum));
        std::memcpy(out + 2, &sh, sizeof(sh));
      }
    }
    return;
  }
  // Q8_K: the scale follows the signed value of the first element of largest magnitude.
  auto* y = reinterpret_cast<BlockQ8_K*>(out);
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    const float amax = abs_max(x, kQK_K);
    if (amax == 0.0f) {
      std::memset(&y[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    int first = 0;  // bounded: a NaN input never equals amax
    while (first < kQK_K - 1 && std::fabs(x[first]) != amax) ++first;
    const float iscale = -127.f / x[first];
    for (int g = 0; g < kQK_K / 16; ++g)
      y[i].bsums[g] = static_cast<int16_t>(
          quantize_scaled(x + 16 * g, iscale, INT32_MIN, y[i].qs + 16 * g, 16));
    y[i].d = 1 / iscale;
  }
}

// Rows per parallel task of the direct decode kernel.
constexpr int64_t kDirectRows = 16;

void QdotTarget(const WeightView& w, const uint8_t* blocks, size_t act_bytes, int64_t n_tokens,
                float* y, ThreadPool& pool) {
  with_traits(w.type, [&](auto traits) {
    using T = decltype(traits);
    thread_local ActScratch scratch;
    // Decode (a few tokens) reads each weight once per token anyway: no tile to amortise.
    const bool direct = Direct<T>::kAvailable && n_tokens <= 2;
#if HEED_QDOT_ZMM
    constexpr bool kPairs = kPairTile<T>;
    constexpr bool kLaneBias = kSignedBytePair<T>;
#else
    constexpr bool kPairs = false;
    constexpr bool kLaneBias = false;
#endif
    const ActLayout layout = direct                ? ActLayout::Raw
                             : kPairs && kLaneBias ? ActLayout::LaneBias
                             : kUsesByteTile<T>    ? ActLayout::Paired
                                                   : ActLayout::Widened;
    const Activations act = prepare<T>(blocks, act_bytes, n_tokens, w.n_in, layout, &scratch, pool);
#if HEED_QDOT_X86
    if constexpr (Direct<T>::kAvailable) {
      if (direct) {
        const int64_t n_tasks = (w.n_out + kDirectRows - 1) / kDirectRows;
        pool.parallel_chunks(static_cast<size_t>(n_tasks), 1, [&](size_t begin, size_t end, int) {
          const int64_t r_end = std::min<int64_t>(w.n_out, static_cast<int64_t>(end) * kDirectRows);
          const int64_t r_begin = static_cast<int64_t>(begin) * kDirectRows;
          for (int64_t t = 0; t < n_tokens; ++t) {
#if HEED_QDOT_ZMM
            if constexpr (ZmmDirect<T>::kAvailable) {
              dot_rows_direct<T, ZmmDirect<T>>(w, r_begin, r_end, act, t, y);
              continue;
            }
#endif
            dot_rows_direct<T, Direct<T>>(w, r_begin, r_end, act, t, y);
          }
        });
        return;
      }
    }
#endif
    const int64_t row_bytes_i16 = w.n_in * static_cast<int64_t>(sizeof(int16_t));
    const int64_t tile_rows =
        n_tokens == 1 ? 4 : std::clamp<int64_t>(kTileBytes / row_bytes_i16 / 4 * 4, 4, 64);
    const int64_t n_tiles = (w.n_out + tile_rows - 1) / tile_rows;
#if HEED_QDOT_ZMM
    if constexpr (kPairs) {
      pool.parallel_chunks(static_cast<size_t>(n_tiles), 1, [&](size_t begin, size_t end, int) {
        gemm_pair_tiles<T>(w, act, n_tokens, y, tile_rows, static_cast<int64_t>(begin),
                           static_cast<int64_t>(end));
      });
      return;
    }
#endif
    pool.parallel_chunks(static_cast<size_t>(n_tiles), n_tokens == 1 ? 4 : 1,
                         [&](size_t begin, size_t end, int) {
                           gemm_tiles<T>(w, act, n_tokens, y, tile_rows,
                                         static_cast<int64_t>(begin), static_cast<int64_t>(end));
                         });
  });
}

}  // namespace HWY_NAMESPACE
}  // namespace heed
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace heed {

HWY_EXPORT(QdotTarget);
HWY_EXPORT(QuantizeActTarget);
HWY_EXPORT(HalfDecodeTarget);

DType vec_dot_type(DType weight) {
  switch (weight) {
    case DType::Q4_0:
    case DType::Q5_0:
    case DType::Q8_0:
    case DType::IQ4_NL:
      return DType::Q8_0;
    case DType::Q4_1:
    case DType::Q5_1:
      return DType::Q8_1;
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      return DType::Q8_K;
    case DType::F16:
      return DType::F16;
    case DType::BF16:
      return DType::BF16;
    default:
      return DType::F32;
  }
}

namespace {

// Round half to even in the default FP environment, as _mm256_round_ps(x,
// _MM_ROUND_NEAREST) and ggml's nearest_int do.
inline int round_even(float v) {
  return static_cast<int>(std::nearbyint(v));
}

// Shared by Q8_0 and Q8_1 (ggml's AVX2 quantize_row_q8_0 / q8_1). Returns the
// float scale d and the integer sum of the quants.
float quantize_block_q8(const float* x, int8_t* qs, int* sum) {
  float amax = 0.0f;
  for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.f;
  const float id = amax != 0.0f ? 127.f / amax : 0.0f;
  int s = 0;
  for (int j = 0; j < kQK; ++j) {
    const int v = std::clamp(round_even(x[j] * id), -128, 127);  // pack instructions saturate
    qs[j] = static_cast<int8_t>(v);
    s += v;
  }
  *sum = s;
  return d;
}

}  // namespace

void quantize_act_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i) {
    int sum;
    y[i].d = f32_to_fp16(quantize_block_q8(x + i * kQK, y[i].qs, &sum));
  }
}

void quantize_act_q8_1(const float* x, BlockQ8_1* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i) {
    int sum;
    const float d = quantize_block_q8(x + i * kQK, y[i].qs, &sum);
    y[i].d = f32_to_fp16(d);
    y[i].s = f32_to_fp16(d * static_cast<float>(sum));
  }
}

void quantize_act_q8_K(const float* x, BlockQ8_K* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    float max = 0.0f, amax = 0.0f;
    for (int j = 0; j < kQK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    std::memset(y[i].bsums, 0, sizeof(y[i].bsums));
    if (amax == 0.0f) {
      y[i].d = 0.0f;
      std::memset(y[i].qs, 0, sizeof(y[i].qs));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < kQK_K; ++j) {
      const int v = std::min(127, round_even(iscale * x[j]));
      y[i].qs[j] = static_cast<int8_t>(v);
      y[i].bsums[j / 16] = static_cast<int16_t>(y[i].bsums[j / 16] + v);
    }
    y[i].d = 1 / iscale;
  }
}

size_t act_row_bytes(DType weight, int64_t n) {
  switch (vec_dot_type(weight)) {
    case DType::Q8_0:
      return static_cast<size_t>(n / kQK) * sizeof(BlockQ8_0);
    case DType::Q8_1:
      return static_cast<size_t>(n / kQK) * sizeof(BlockQ8_1);
    case DType::Q8_K:
      return static_cast<size_t>(n / kQK_K) * sizeof(BlockQ8_K);
    case DType::F16:
    case DType::BF16:
      return static_cast<size_t>(n) * sizeof(uint16_t);
    default:
      return static_cast<size_t>(n) * sizeof(float);
  }
}

void quantize_act_row(DType weight, const float* x, void* out, int64_t n) {
  switch (const DType at = vec_dot_type(weight)) {
    case DType::Q8_0:
    case DType::Q8_1:
    case DType::Q8_K:
      return HWY_DYNAMIC_DISPATCH(QuantizeActTarget)(at, x, static_cast<uint8_t*>(out), n);
    case DType::F16:
      return quantize_row_f16(x, out, n);
    case DType::BF16:
      return quantize_row_bf16(x, out, n);
    default:
      std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float));
  }
}

double qdot_reference(DType weight, const void* w_row, const void* act_row, int64_t n) {
  std::vector<float> w(static_cast<size_t>(n));
  dequantize_row(weight, w_row, w.data(), n);
  std::vector<double> a(static_cast<size_t>(n));
  const DType at = vec_dot_type(weight);
  double sum = 0.0;
  if (at == DType::Q8_0 || at == DType::Q8_1) {
    const bool with_min = at == DType::Q8_1;
    const size_t stride = with_min ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
    const size_t w_stride = dtype_traits(weight)->type_size;
    for (int64_t b = 0; b < n / kQK; ++b) {
      const auto* blk = static_cast<const uint8_t*>(act_row) + b * stride;
      uint16_t dh;
      std::memcpy(&dh, blk, 2);
      const int8_t* qs = reinterpret_cast<const int8_t*>(blk + (with_min ? 4 : 2));
      double m = 0.0;
      if (with_min) {  // Q4_1 / Q5_1: m is the second fp16 of the weight block
        uint16_t mh, sh;
        std::memcpy(&mh, static_cast<const uint8_t*>(w_row) + b * w_stride + 2, 2);
        std::memcpy(&sh, blk + 2, 2);
        m = fp16_to_f32(mh);
        sum += m * fp16_to_f32(sh);
      }
      for (int j = 0; j < kQK; ++j)
        sum += (w[b * kQK + j] - m) * (static_cast<double>(fp16_to_f32(dh)) * qs[j]);
    }
  } else if (at == DType::Q8_K) {
    const auto* blk = static_cast<const BlockQ8_K*>(act_row);
    for (int64_t b = 0; b < n / kQK_K; ++b)
      for (int j = 0; j < kQK_K; ++j)
        sum +=
            static_cast<double>(w[b * kQK_K + j]) * (static_cast<double>(blk[b].d) * blk[b].qs[j]);
  } else {
    std::vector<float> x(static_cast<size_t>(n));
    dequantize_row(at, act_row, x.data(), n);
    for (int64_t j = 0; j < n; ++j) sum += static_cast<double>(w[j]) * x[j];
  }
  return sum;
}

void qdot_matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y,
                 ThreadPool& pool) {
  const DType at = vec_dot_type(w.type);
  if (at == DType::F32) return matmul(w, x, n_tokens, y, pool, MatmulMode::Exact);
  if (at == DType::F16 || at == DType::BF16) {
    // Half-precision activations widen exactly to f32, so the float kernel on the
    // rounded activations is ggml's f16/bf16 dot (f32 accumulation).
    const size_t total = static_cast<size_t>(n_tokens * w.n_in);
    if (at == DType::F16 && n_tokens > 2) {
      thread_local AlignedVector<uint16_t> halves;
      if (halves.size() < total) halves.resize(total);
      uint16_t* const h = halves.data();  // not the workers' own thread_local
      pool.parallel_rows(static_cast<size_t>(n_tokens), [&](size_t t0, size_t t1, int) {
        round_to_half(x + t0 * w.n_in, h + t0 * w.n_in, static_cast<int64_t>(t1 - t0) * w.n_in);
      });
      return half_prefill(w, h, n_tokens, y, pool);
    }
    if (at == DType::F16) {
      // Decode reads every weight once: a streaming kernel in ggml's summation order.
      thread_local AlignedVector<uint16_t> halves;
      if (halves.size() < total) halves.resize(total);
      round_to_half(x, halves.data(), static_cast<int64_t>(total));
      return HWY_DYNAMIC_DISPATCH(HalfDecodeTarget)(w, halves.data(), n_tokens, y, pool);
    }
    thread_local AlignedVector<float> rounded;
    if (rounded.size() < total) rounded.resize(total);
    for (size_t i = 0; i < total; ++i) rounded[i] = bf16_to_f32(f32_to_bf16(x[i]));
    return matmul(w, rounded.data(), n_tokens, y, pool, MatmulMode::Exact);
  }
  const size_t act_bytes = act_row_bytes(w.type, w.n_in);
  thread_local AlignedVector<uint8_t> act;
  if (act.size() < act_bytes * n_tokens) act.resize(act_bytes * n_tokens);
  // Not `act` inside the lambda: a worker would name its own thread_local buffer.
  uint8_t* const act_rows = act.data();
  const auto quantize = [&](size_t t_begin, size_t t_end, int) {
    for (auto t = static_cast<int64_t>(t_begin); t < static_cast<int64_t>(t_end); ++t)
      quantize_act_row(w.type, x + t * w.n_in, act_rows + t * act_bytes, w.n_in);
  };
  pool.parallel_rows(static_cast<size_t>(n_tokens), quantize);
  HWY_DYNAMIC_DISPATCH(QdotTarget)(w, act_rows, act_bytes, n_tokens, y, pool);
}

}  // namespace heed
#endif  // HWY_ONCE
