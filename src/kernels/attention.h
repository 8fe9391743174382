// The one attention kernel. Steering (GUIDE) and tracing (Influence, Rollout,
// raw attention) plug into it through two small, optional inputs:
//
//   KeyBias     — an additive bias on KEY positions, added to the logits after
//                 the scale and any softcap and before the softmax, for the
//                 heads it enables. Masked keys stay masked whatever the bias.
//   TraceValues — extra scalar "value channels" per key. The kernel returns,
//                 per query, the head-averaged attention applied to them:
//                 out[q][c] = (1/H) Σ_h Σ_j P_h[q,j] · v[j][c].
//                 This is Ā·I without ever forming an n×n matrix.
//
// Logit order matches llama.cpp: s = q·k; if softcap: s = cap·tanh(s/cap);
// s = s·kq_scale + bias[j]; causal/window mask; softmax in f32.
#pragma once
#include <cstdint>

namespace heed {

class ThreadPool;

struct AttentionShape {
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  float kq_scale = 1.0f;
  float softcap = 0.0f;  // 0 = off
  int window = 0;        // sliding window in tokens (key j visible iff 0 <= i-j < window); 0 = off
};

// Keys and values of one layer, laid out [position][n_head_kv][head_dim].
struct KVView {
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t n_kv = 0;  // number of valid positions (keys 0..n_kv-1)
};

struct KeyBias {
  const float* values = nullptr;  // bias for key position j, j < n_values; 0 beyond
  int64_t n_values = 0;
  const uint8_t* head_enabled = nullptr;  // [n_head] 1 = add bias; nullptr = all heads
};

struct TraceValues {
  const float* values = nullptr;  // [n_kv][n_channels] per-key scalars
  int n_channels = 0;
  float* out = nullptr;  // [n_query][n_channels] head-averaged Ā·values (overwritten)
};

// Query rows a thread scores at once (grouped-query heads sharing a KV head).
constexpr int kAttentionRowsPerThread = 4;

// Scratch the kernel needs; sized once per session so decode never allocates.
struct AttentionScratch {
  float* scores = nullptr;  // [n_threads][kAttentionRowsPerThread][max_kv]
  int64_t max_kv = 0;
  float* trace_partial = nullptr;  // [max_query][n_head][n_channels]
};

// q:   [n_query][n_head][head_dim] (already rotated), query i sits at position pos0 + i.
// out: [n_query][n_head][head_dim].
void attention(const AttentionShape& shape, const float* q, int64_t n_query, int64_t pos0,
               const KVView& kv, const KeyBias* bias, TraceValues* trace, AttentionScratch& scratch,
               float* out, ThreadPool& pool);

}  // namespace heed
