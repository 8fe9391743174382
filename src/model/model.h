// A loaded model: hyperparameters (architecture as data) and weight views into
// the GGUF's bytes, as the file stores them: never expanded or re-laid at load
// time. By default those bytes are read into 2 MiB huge pages (decode streams
// them faster, see common/huge_pages.h); WeightResidency::Mapped keeps the
// file's own mapping instead (no copy).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"

namespace heed {

class Tokenizer;

enum class Arch { Llama, Qwen2, Gemma2, Phi3 };
std::string_view arch_name(Arch a);

enum class FfnActivation { SiLU, GeluTanh };

// Everything that distinguishes one family from another, as data.
struct ModelConfig {
  Arch arch = Arch::Llama;
  std::string name;
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_ff = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;  // key/value length per head
  float norm_eps = 1e-5f;
  RopeConfig rope;
  float q_scale = 1.0f;        // multiplies Q before attention (gemma2, phi3 pre-scale)
  float kq_scale = 1.0f;       // multiplies q·k after the softcap
  float attn_softcap = 0.0f;   // gemma2
  float final_softcap = 0.0f;  // gemma2
  float embd_scale = 1.0f;     // gemma2: sqrt(n_embd)
  int sliding_window = 0;      // 0 = none
  // Which layers use the sliding window: gemma2 alternates (il % 2 == 0), phi3 all layers.
  std::vector<uint8_t> layer_uses_window;
  FfnActivation ffn_act = FfnActivation::SiLU;
  bool gelu_ggml_table = true;  // emulate llama.cpp's fp16 GELU table
};

struct LayerWeights {
  const float* attn_norm = nullptr;
  WeightView wq{}, wk{}, wv{};  // separate projections, or
  WeightView wqkv{};            // fused rows q|k|v (phi3); wq.data == nullptr then
  const float* bq = nullptr;
  const float* bk = nullptr;
  const float* bv = nullptr;
  WeightView wo{};
  const float* post_attn_norm = nullptr;  // gemma2
  const float* ffn_norm = nullptr;
  WeightView w_gate{}, w_up{};  // separate, or
  WeightView w_gate_up{};       // fused rows gate|up (phi3)
  WeightView w_down{};
  const float* post_ffn_norm = nullptr;  // gemma2
};

using WeightResidency = gguf::File::Residency;

class Model {
 public:
  // Loads and validates a GGUF model. Throws heed::Error naming the file and field.
  static std::unique_ptr<Model> load(const std::string& path,
                                     WeightResidency where = WeightResidency::HugePages);
  ~Model();

  const ModelConfig& config() const { return cfg_; }
  const gguf::File& file() const { return *file_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const std::vector<LayerWeights>& layers() const { return layers_; }
  const WeightView& token_embd() const { return token_embd_; }
  const WeightView& output() const { return output_; }
  const float* output_norm() const { return output_norm_; }
  // Bytes of weights read per decoded token (for roofline reports).
  uint64_t weight_bytes() const { return weight_bytes_; }

 private:
  Model() = default;
  std::unique_ptr<gguf::File> file_;
  std::unique_ptr<Tokenizer> tokenizer_;
  ModelConfig cfg_;
  std::vector<LayerWeights> layers_;
  WeightView token_embd_{}, output_{};
  const float* output_norm_ = nullptr;
  uint64_t weight_bytes_ = 0;
};

}  // namespace heed
