#include "model/model.h"

#include <cmath>
#include <string>

#include "tokenizer/tokenizer.h"

namespace heed {

std::string_view arch_name(Arch a) {
  switch (a) {
    case Arch::Llama:
      return "llama";
    case Arch::Qwen2:
      return "qwen2";
    case Arch::Gemma2:
      return "gemma2";
    case Arch::Phi3:
      return "phi3";
  }
  return "?";
}

namespace {

constexpr std::string_view kSupportedArchs = "llama, qwen2, gemma2, phi3";

Arch parse_arch(const gguf::File& f) {
  const std::string a = f.get_string("general.architecture");
  if (a == "llama") return Arch::Llama;
  if (a == "qwen2") return Arch::Qwen2;
  if (a == "gemma2") return Arch::Gemma2;
  if (a == "phi3") return Arch::Phi3;
  throw Error(f.path() + ": unsupported architecture '" + a +
              "' (supported: " + std::string(kSupportedArchs) + ")");
}

// Looks tensors up by name and checks their shape and type as it goes.
class TensorBinder {
 public:
  TensorBinder(const gguf::File& f, uint64_t& bytes) : f_(f), bytes_(bytes) {}

  const gguf::TensorInfo* find(const std::string& name) const { return f_.find_tensor(name); }

  const gguf::TensorInfo& require(const std::string& name) const {
    const gguf::TensorInfo* t = f_.find_tensor(name);
    if (!t) throw Error(f_.path() + ": missing tensor '" + name + "'");
    return *t;
  }

  // A matrix with rows of n_in inputs and n_out rows.
  WeightView matrix(const std::string& name, int64_t n_in, int64_t n_out) {
    return view(require(name), n_in, n_out);
  }
  WeightView optional_matrix(const std::string& name, int64_t n_in, int64_t n_out) {
    const gguf::TensorInfo* t = find(name);
    return t ? view(*t, n_in, n_out) : WeightView{};
  }

  const float* vector(const std::string& name, int64_t n) {
    const gguf::TensorInfo& t = require(name);
    return vec(t, n);
  }
  const float* optional_vector(const std::string& name, int64_t n) {
    const gguf::TensorInfo* t = find(name);
    return t ? vec(*t, n) : nullptr;
  }

 private:
  WeightView view(const gguf::TensorInfo& t, int64_t n_in, int64_t n_out) {
    if (t.n_dims != 2 || static_cast<int64_t>(t.ne[0]) != n_in ||
        static_cast<int64_t>(t.ne[1]) != n_out)
      throw Error(f_.path() + ": tensor '" + t.name + "' has shape " + t.shape_string() +
                  ", expected [" + std::to_string(n_in) + ", " + std::to_string(n_out) + "]");
    auto rb = row_bytes(t.type, t.ne[0]);
    auto tr = dtype_traits(t.type);
    if (!rb || !tr || !tr->supported)
      throw Error(f_.path() + ": tensor '" + t.name + "' has unsupported type " +
                  std::string(dtype_name(t.type)));
    bytes_ += t.n_bytes;
    return WeightView{t.type, n_in, n_out, t.data, *rb};
  }
  const float* vec(const gguf::TensorInfo& t, int64_t n) {
    if (t.type != DType::F32)
      throw Error(f_.path() + ": tensor '" + t.name + "' must be f32, found " +
                  std::string(dtype_name(t.type)));
    if (t.n_elements() != static_cast<uint64_t>(n))
      throw Error(f_.path() + ": tensor '" + t.name + "' has shape " + t.shape_string() +
                  ", expected [" + std::to_string(n) + "]");
    bytes_ += t.n_bytes;
    return reinterpret_cast<const float*>(t.data);
  }

  const gguf::File& f_;
  uint64_t& bytes_;
};

int64_t positive(const gguf::File& f, const std::string& key, uint64_t v, uint64_t max) {
  if (v == 0 || v > max)
    throw Error(f.path() + ": '" + key + "' = " + std::to_string(v) + " is out of range (1.." +
                std::to_string(max) + ")");
  return static_cast<int64_t>(v);
}

ModelConfig read_config(const gguf::File& f) {
  ModelConfig c;
  c.arch = parse_arch(f);
  const std::string a(arch_name(c.arch));
  auto key = [&](const char* k) { return a + "." + k; };
  auto need = [&](const char* k, uint64_t max) {
    return positive(f, key(k), f.get_uint(key(k)), max);
  };
  c.name = f.get_string_or("general.name", "");
  c.n_embd = need("embedding_length", 1 << 20);
  c.n_layer = need("block_count", 4096);
  c.n_ff = need("feed_forward_length", 1 << 22);
  c.n_head = static_cast<int>(need("attention.head_count", 4096));
  c.n_head_kv =
      static_cast<int>(positive(f, key("attention.head_count_kv"),
                                f.get_uint_or(key("attention.head_count_kv"), c.n_head), 4096));
  c.n_ctx_train = static_cast<int64_t>(f.get_uint_or(key("context_length"), 2048));
  if (c.n_head % c.n_head_kv != 0)
    throw Error(f.path() + ": head_count " + std::to_string(c.n_head) +
                " is not a multiple of head_count_kv " + std::to_string(c.n_head_kv));
  const uint64_t default_hd = static_cast<uint64_t>(c.n_embd / c.n_head);
  c.head_dim =
      static_cast<int>(positive(f, key("attention.key_length"),
                                f.get_uint_or(key("attention.key_length"), default_hd), 4096));
  const uint64_t vlen = f.get_uint_or(key("attention.value_length"), c.head_dim);
  if (vlen != static_cast<uint64_t>(c.head_dim))
    throw Error(f.path() + ": attention.value_length " + std::to_string(vlen) +
                " differs from key_length " + std::to_string(c.head_dim) + " (not supported)");
  c.norm_eps = static_cast<float>(f.get_float_or(key("attention.layer_norm_rms_epsilon"), 1e-5));

  c.rope.n_rot = static_cast<int>(f.get_uint_or(key("rope.dimension_count"), c.head_dim));
  if (c.rope.n_rot <= 0 || c.rope.n_rot > c.head_dim || c.rope.n_rot % 2 != 0)
    throw Error(f.path() + ": rope.dimension_count " + std::to_string(c.rope.n_rot) +
                " must be even and at most the head size " + std::to_string(c.head_dim));
  c.rope.freq_base = static_cast<float>(f.get_float_or(key("rope.freq_base"), 10000.0));
  const std::string scaling = f.get_string_or(key("rope.scaling.type"), "none");
  if (scaling == "linear") {
    const double factor = f.get_float_or(key("rope.scaling.factor"), 1.0);
    if (factor <= 0) throw Error(f.path() + ": rope.scaling.factor must be positive");
    c.rope.freq_scale = static_cast<float>(1.0 / factor);
  } else if (scaling != "none") {
    throw Error(f.path() + ": rope scaling type '" + scaling +
                "' is not supported (supported: none, linear, and rope_freqs tensors)");
  }
  c.kq_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));

  switch (c.arch) {
    case Arch::Llama:
      c.rope.layout = RopeLayout::Norm;
      break;
    case Arch::Qwen2:
      c.rope.layout = RopeLayout::Neox;
      break;
    case Arch::Phi3:
      c.rope.layout = RopeLayout::Neox;
      c.q_scale = c.kq_scale;  // llama.cpp pre-scales Q and passes kq_scale = 1
      c.kq_scale = 1.0f;
      c.sliding_window = static_cast<int>(f.get_uint_or(key("attention.sliding_window"), 0));
      c.layer_uses_window.assign(c.n_layer, c.sliding_window > 0 ? 1 : 0);
      break;
    case Arch::Gemma2: {
      c.rope.layout = RopeLayout::Neox;
      // 2B/9B scale queries by 1/sqrt(head_dim); 27B (46 layers) by 1/sqrt(n_embd/n_head).
      const float q_dim = c.n_layer == 46 ? static_cast<float>(c.n_embd / c.n_head)
                                          : static_cast<float>(c.head_dim);
      c.q_scale = 1.0f / std::sqrt(q_dim);
      c.kq_scale = 1.0f;
      c.attn_softcap = static_cast<float>(f.get_float_or(key("attn_logit_softcapping"), 50.0));
      c.final_softcap = static_cast<float>(f.get_float_or(key("final_logit_softcapping"), 30.0));
      c.embd_scale = std::sqrt(static_cast<float>(c.n_embd));
      c.sliding_window = static_cast<int>(f.get_uint_or(key("attention.sliding_window"), 4096));
      c.layer_uses_window.resize(c.n_layer);
      for (int64_t il = 0; il < c.n_layer; ++il) c.layer_uses_window[il] = il % 2 == 0;
      c.ffn_act = FfnActivation::GeluTanh;
      break;
    }
  }
  return c;
}

}  // namespace

Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::string& path, WeightResidency where) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = gguf::File::open(path, where);
  const gguf::File& f = *m->file_;
  m->cfg_ = read_config(f);
  ModelConfig& c = m->cfg_;
  m->tokenizer_ = Tokenizer::from_gguf(f);

  TensorBinder bind(f, m->weight_bytes_);
  const gguf::TensorInfo& embd = bind.require("token_embd.weight");
  c.n_vocab = static_cast<int64_t>(embd.ne[1]);
  if (c.n_vocab != m->tokenizer_->n_vocab())
    throw Error(path + ": token_embd.weight has " + std::to_string(c.n_vocab) +
                " rows but the tokenizer has " + std::to_string(m->tokenizer_->n_vocab()) +
                " tokens");
  m->token_embd_ = bind.matrix("token_embd.weight", c.n_embd, c.n_vocab);
  m->output_norm_ = bind.vector("output_norm.weight", c.n_embd);
  m->output_ = bind.optional_matrix("output.weight", c.n_embd, c.n_vocab);
  if (!m->output_.data) m->output_ = m->token_embd_;  // tied embeddings

  if (const gguf::TensorInfo* ff = bind.find("rope_freqs.weight")) {
    const float* p = bind.vector("rope_freqs.weight", c.rope.n_rot / 2);
    c.rope.freq_factors.assign(p, p + c.rope.n_rot / 2);
    (void)ff;
  }

  const int64_t E = c.n_embd, D = c.head_dim;
  const int64_t nq = c.n_head * D, nkv = c.n_head_kv * D;
  m->layers_.resize(c.n_layer);
  for (int64_t il = 0; il < c.n_layer; ++il) {
    LayerWeights& L = m->layers_[il];
    const std::string p = "blk." + std::to_string(il) + ".";
    L.attn_norm = bind.vector(p + "attn_norm.weight", E);
    if (c.arch == Arch::Phi3) {
      L.wqkv = bind.matrix(p + "attn_qkv.weight", E, nq + 2 * nkv);
      L.w_gate_up = bind.matrix(p + "ffn_up.weight", E, 2 * c.n_ff);
    } else {
      L.wq = bind.matrix(p + "attn_q.weight", E, nq);
      L.wk = bind.matrix(p + "attn_k.weight", E, nkv);
      L.wv = bind.matrix(p + "attn_v.weight", E, nkv);
      L.w_gate = bind.matrix(p + "ffn_gate.weight", E, c.n_ff);
      L.w_up = bind.matrix(p + "ffn_up.weight", E, c.n_ff);
    }
    L.bq = bind.optional_vector(p + "attn_q.bias", nq);
    L.bk = bind.optional_vector(p + "attn_k.bias", nkv);
    L.bv = bind.optional_vector(p + "attn_v.bias", nkv);
    L.wo = bind.matrix(p + "attn_output.weight", nq, E);
    L.ffn_norm = bind.vector(p + "ffn_norm.weight", E);
    L.w_down = bind.matrix(p + "ffn_down.weight", c.n_ff, E);
    if (c.arch == Arch::Gemma2) {
      L.post_attn_norm = bind.vector(p + "post_attention_norm.weight", E);
      L.post_ffn_norm = bind.vector(p + "post_ffw_norm.weight", E);
    }
  }
  return m;
}

}  // namespace heed
