// The forward pass: one function for every architecture, read top to bottom
// in forward.cc. Steering and tracing enter only through ForwardHooks, which
// the single attention kernel consumes; there is no second code path.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/aligned.h"
#include "kernels/attention.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace heed {

class ThreadPool;

// What a tracing observer sees after the attention block of one layer.
struct LayerTap {
  int layer = 0;
  int64_t pos0 = 0;      // absolute position of row 0
  int64_t n_tokens = 0;  // rows in this batch
  int64_t n_embd = 0;
  const float* residual_in = nullptr;  // [n_tokens][n_embd] residual entering the layer
  const float* attn_input = nullptr;   // [n_tokens][n_embd] after the input RMSNorm (with weight)
  const float* attn_output =
      nullptr;                   // [n_tokens][n_embd] what the attention block adds to the residual
  const float* mixed = nullptr;  // [n_tokens][n_channels] head-averaged Ā·values, or nullptr
  int n_channels = 0;
};

// Tracing plugs in here. The observer supplies per-key scalar channels for a
// layer (e.g. I_{l-1}) and receives Ā·channels plus the activations it needs.
class ForwardObserver {
 public:
  virtual ~ForwardObserver() = default;
  virtual int n_channels() const = 0;
  // [n_kv][n_channels] values for key positions 0..n_kv-1 at `layer`, or nullptr to skip.
  virtual const float* trace_values(int layer, int64_t n_kv) = 0;
  virtual void on_layer(const LayerTap& tap) = 0;
};

struct ForwardHooks {
  // One KeyBias per layer (values == nullptr: no bias in that layer). Empty: no steering.
  std::span<const KeyBias> layer_bias;
  ForwardObserver* observer = nullptr;
  // Exact (default) keeps activations float: logits equal the exactly-dequantized
  // reference (golden/dequant_ref) to ~1e-5. LlamaCpp quantizes activations like
  // ggml (Q8_0/Q8_1/Q8_K), which is closer to llama.cpp's own quantized logits
  // (not equal yet: rope/softmax order differ) and faster in decode.
  MatmulMode matmul_mode = MatmulMode::Exact;
};

enum class LogitsFor { None, Last, All };

// Buffers for a batch of up to max_batch tokens and a context of max_ctx, made
// once per session: the decode loop allocates nothing.
class Workspace {
 public:
  Workspace(const ModelConfig& cfg, int64_t max_batch, int64_t max_ctx, int n_threads,
            int max_trace_channels);
  int64_t max_batch() const { return max_batch_; }

 private:
  friend void forward(const Model&, KVCache&, std::span<const int32_t>, int64_t,
                      const ForwardHooks&, LogitsFor, float*, Workspace&, ThreadPool&);
  int64_t max_batch_;
  int max_channels_;
  AlignedVector<float> x_, x_in_, xn_, q_, k_, v_, qkv_, attn_, o_, gate_, up_, gate_up_, ffn_,
      logits_tmp_, rope_cos_, rope_sin_, scores_, trace_partial_, trace_out_;
  AttentionScratch scratch_;
};

// Runs tokens at positions pos0.. through the model, appending K/V to the cache
// (pos0 must equal cache.size()). Writes logits: for LogitsFor::All
// [n_tokens][n_vocab], for Last [n_vocab] of the last token.
// Throws heed::Error if the batch exceeds the workspace or the context.
void forward(const Model& model, KVCache& cache, std::span<const int32_t> tokens, int64_t pos0,
             const ForwardHooks& hooks, LogitsFor which, float* logits, Workspace& ws,
             ThreadPool& pool);

}  // namespace heed
