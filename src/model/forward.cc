#include "model/forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/thread_pool.h"
#include "heed/error.h"

namespace heed {

Workspace::Workspace(const ModelConfig& c, int64_t max_batch, int64_t max_ctx, int n_threads,
                     int max_trace_channels)
    : max_batch_(max_batch), max_channels_(max_trace_channels) {
  const int64_t B = max_batch, E = c.n_embd;
  const int64_t nq = static_cast<int64_t>(c.n_head) * c.head_dim;
  const int64_t nkv = static_cast<int64_t>(c.n_head_kv) * c.head_dim;
  x_.resize(B * E);
  x_in_.resize(B * E);
  xn_.resize(B * E);
  q_.resize(B * nq);
  k_.resize(B * nkv);
  v_.resize(B * nkv);
  qkv_.resize(B * (nq + 2 * nkv));
  attn_.resize(B * nq);
  o_.resize(B * E);
  gate_.resize(B * c.n_ff);
  up_.resize(B * c.n_ff);
  gate_up_.resize(B * 2 * c.n_ff);
  ffn_.resize(B * E);
  rope_cos_.resize(static_cast<size_t>(std::max(1, n_threads)) * (c.rope.n_rot / 2 + 1));
  rope_sin_.resize(static_cast<size_t>(std::max(1, n_threads)) * (c.rope.n_rot / 2 + 1));
  scores_.resize(static_cast<size_t>(n_threads) * kAttentionRowsPerThread * max_ctx);
  trace_partial_.resize(static_cast<size_t>(B) * c.n_head * std::max(1, max_trace_channels));
  trace_out_.resize(static_cast<size_t>(B) * std::max(1, max_trace_channels));
  scratch_.scores = scores_.data();
  scratch_.max_kv = max_ctx;
  scratch_.trace_partial = trace_partial_.data();
}

namespace {

void add_bias_rows(float* y, const float* bias, int64_t rows, int64_t n) {
  if (!bias) return;
  for (int64_t t = 0; t < rows; ++t) add_inplace(y + t * n, bias, n);
}

void norm_rows(const float* x, const float* w, int64_t rows, int64_t n, float eps, float* out,
               ThreadPool& pool) {
  pool.parallel_rows(static_cast<size_t>(rows), [&](size_t begin, size_t end, int) {
    for (size_t t = begin; t < end; ++t) rms_norm(x + t * n, w, n, eps, out + t * n);
  });
}

// Copies column block [col, col+width) of each row of src (row length src_n) into dst.
void split_cols(const float* src, int64_t rows, int64_t src_n, int64_t col, int64_t width,
                float* dst) {
  for (int64_t t = 0; t < rows; ++t)
    std::memcpy(dst + t * width, src + t * src_n + col, sizeof(float) * width);
}

}  // namespace

void forward(const Model& model, KVCache& cache, std::span<const int32_t> tokens, int64_t pos0,
             const ForwardHooks& hooks, LogitsFor which, float* logits, Workspace& ws,
             ThreadPool& pool) {
  const ModelConfig& c = model.config();
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t E = c.n_embd, D = c.head_dim;
  const int64_t nq = static_cast<int64_t>(c.n_head) * D;
  const int64_t nkv = static_cast<int64_t>(c.n_head_kv) * D;
  if (n == 0) return;
  if (n > ws.max_batch_)
    throw Error("forward: batch of " + std::to_string(n) + " tokens exceeds the workspace (" +
                std::to_string(ws.max_batch_) + ")");
  if (pos0 != cache.size())
    throw Error("forward: position " + std::to_string(pos0) + " does not follow the cache (" +
                std::to_string(cache.size()) + " tokens)");
  if (pos0 + n > cache.capacity())
    throw Error("forward: " + std::to_string(pos0 + n) + " tokens exceed the context of " +
                std::to_string(cache.capacity()));
  for (int64_t t = 0; t < n; ++t)
    if (tokens[t] < 0 || tokens[t] >= c.n_vocab)
      throw Error("forward: token id " + std::to_string(tokens[t]) + " at index " +
                  std::to_string(t) + " is outside the vocabulary (0.." +
                  std::to_string(c.n_vocab - 1) + ")");

  float* x = ws.x_.data();
  // 1. Embeddings (rows dequantized on the fly), scaled for gemma2.
  for (int64_t t = 0; t < n; ++t) {
    dequantize_row_of(model.token_embd(), tokens[t], x + t * E);
    if (c.embd_scale != 1.0f)
      for (int64_t i = 0; i < E; ++i) x[t * E + i] *= c.embd_scale;
  }

  ForwardObserver* obs = hooks.observer;
  const int n_ch = obs ? obs->n_channels() : 0;
  if (n_ch > ws.max_channels_) throw Error("forward: observer wants too many trace channels");

  for (int64_t il = 0; il < c.n_layer; ++il) {
    const LayerWeights& L = model.layers()[il];
    if (obs) std::memcpy(ws.x_in_.data(), x, sizeof(float) * n * E);

    // 2. Attention input norm and projections.
    float* xn = ws.xn_.data();
    norm_rows(x, L.attn_norm, n, E, c.norm_eps, xn, pool);
    float *q = ws.q_.data(), *k = ws.k_.data(), *v = ws.v_.data();
    if (L.wqkv.data) {
      matmul(L.wqkv, xn, n, ws.qkv_.data(), pool, hooks.matmul_mode);
      split_cols(ws.qkv_.data(), n, nq + 2 * nkv, 0, nq, q);
      split_cols(ws.qkv_.data(), n, nq + 2 * nkv, nq, nkv, k);
      split_cols(ws.qkv_.data(), n, nq + 2 * nkv, nq + nkv, nkv, v);
    } else {
      matmul(L.wq, xn, n, q, pool, hooks.matmul_mode);
      matmul(L.wk, xn, n, k, pool, hooks.matmul_mode);
      matmul(L.wv, xn, n, v, pool, hooks.matmul_mode);
    }
    add_bias_rows(q, L.bq, n, nq);
    add_bias_rows(k, L.bk, n, nkv);
    add_bias_rows(v, L.bv, n, nkv);

    // 3. RoPE, query pre-scaling, and K/V into the cache.
    // One angle table per thread (the workspace holds n_threads of them).
    const size_t table = static_cast<size_t>(c.rope.n_rot / 2 + 1);
    if (static_cast<size_t>(pool.size()) * table > ws.rope_cos_.size())
      throw Error("forward: the workspace was made for fewer threads than the pool has");
    pool.parallel_rows(static_cast<size_t>(n), [&](size_t begin, size_t end, int ti) {
      float* cos_t = ws.rope_cos_.data() + ti * table;
      float* sin_t = ws.rope_sin_.data() + ti * table;
      for (auto t = static_cast<int64_t>(begin); t < static_cast<int64_t>(end); ++t) {
        rope_angles(c.rope, pos0 + t, cos_t, sin_t);
        rope_apply(c.rope, cos_t, sin_t, q + t * nq, c.n_head, D);
        rope_apply(c.rope, cos_t, sin_t, k + t * nkv, c.n_head_kv, D);
        if (c.q_scale != 1.0f)
          for (int64_t i = 0; i < nq; ++i) q[t * nq + i] *= c.q_scale;
        std::memcpy(cache.k_row(il, pos0 + t), k + t * nkv, sizeof(float) * nkv);
        std::memcpy(cache.v_row(il, pos0 + t), v + t * nkv, sizeof(float) * nkv);
      }
    });

    // 4. The one attention kernel, with the optional bias and trace channels.
    AttentionShape shape{
        c.n_head,
        c.n_head_kv,
        static_cast<int>(D),
        c.kq_scale,
        c.attn_softcap,
        c.layer_uses_window.empty() || !c.layer_uses_window[il] ? 0 : c.sliding_window};
    const KeyBias* bias = nullptr;
    if (!hooks.layer_bias.empty() && hooks.layer_bias[il].values) bias = &hooks.layer_bias[il];
    TraceValues trace;
    TraceValues* trace_ptr = nullptr;
    if (n_ch > 0) {
      trace.values = obs->trace_values(static_cast<int>(il), pos0 + n);
      if (trace.values) {
        trace.n_channels = n_ch;
        trace.out = ws.trace_out_.data();
        trace_ptr = &trace;
      }
    }
    attention(shape, q, n, pos0, cache.view(il, pos0 + n), bias, trace_ptr, ws.scratch_,
              ws.attn_.data(), pool);

    // 5. Output projection, optional post-norm, observer, residual.
    float* o = ws.o_.data();
    matmul(L.wo, ws.attn_.data(), n, o, pool, hooks.matmul_mode);
    if (L.post_attn_norm) norm_rows(o, L.post_attn_norm, n, E, c.norm_eps, o, pool);
    if (obs) {
      LayerTap tap{static_cast<int>(il), pos0, n, E,
                   ws.x_in_.data(),      xn,   o, trace_ptr ? trace.out : nullptr,
                   trace_ptr ? n_ch : 0};
      obs->on_layer(tap);
    }
    add_inplace(x, o, n * E);

    // 6. Gated FFN.
    norm_rows(x, L.ffn_norm, n, E, c.norm_eps, xn, pool);
    float *gate = ws.gate_.data(), *up = ws.up_.data();
    if (L.w_gate_up.data) {
      matmul(L.w_gate_up, xn, n, ws.gate_up_.data(), pool, hooks.matmul_mode);
      split_cols(ws.gate_up_.data(), n, 2 * c.n_ff, 0, c.n_ff, gate);
      split_cols(ws.gate_up_.data(), n, 2 * c.n_ff, c.n_ff, c.n_ff, up);
    } else {
      matmul(L.w_gate, xn, n, gate, pool, hooks.matmul_mode);
      matmul(L.w_up, xn, n, up, pool, hooks.matmul_mode);
    }
    // Elementwise, so a prompt's rows split over the pool with identical results.
    const int64_t n_ff = c.n_ff;
    const auto activate = [&](size_t begin, size_t end, int) {
      const int64_t off = static_cast<int64_t>(begin) * n_ff;
      const int64_t len = static_cast<int64_t>(end - begin) * n_ff;
      if (c.ffn_act == FfnActivation::SiLU)
        swiglu(gate + off, up + off, len, gate + off);
      else
        geglu_tanh(gate + off, up + off, len, c.gelu_ggml_table, gate + off);
    };
    pool.parallel_rows(static_cast<size_t>(n), activate);
    float* ffn = ws.ffn_.data();
    matmul(L.w_down, gate, n, ffn, pool, hooks.matmul_mode);
    if (L.post_ffn_norm) norm_rows(ffn, L.post_ffn_norm, n, E, c.norm_eps, ffn, pool);
    add_inplace(x, ffn, n * E);
  }
  cache.set_size(pos0 + n);

  // 7. Final norm and the output head, only for the rows asked for.
  if (which == LogitsFor::None) return;
  const int64_t first = which == LogitsFor::All ? 0 : n - 1;
  const int64_t rows = n - first;
  float* xn = ws.xn_.data();
  norm_rows(x + first * E, model.output_norm(), rows, E, c.norm_eps, xn, pool);
  matmul(model.output(), xn, rows, logits, pool, hooks.matmul_mode);
  if (c.final_softcap > 0.0f) softcap(logits, rows * c.n_vocab, c.final_softcap);
}

}  // namespace heed
