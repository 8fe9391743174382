#include "bench/bench.h"

#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "bench/bandwidth.h"
#include "generate/session.h"
#include "heed/error.h"
#include "tokenizer/tokenizer.h"

namespace heed::bench {

namespace {

constexpr int kDefaultTracedTokens = 10;

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) break;
    const size_t start = line.find_first_not_of(' ', colon + 1);
    return start == std::string::npos ? "" : line.substr(start);
  }
  return "";
}

std::string utc_now_rfc3339() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%FT%TZ", &tm);
  return buf;
}

// llama.cpp's names for general.file_type (enum llama_ftype).
std::string file_type_name(uint64_t ftype) {
  static const std::map<uint64_t, std::string> names = {
      {0, "all F32"},        {1, "F16"},
      {2, "Q4_0"},           {3, "Q4_1"},
      {7, "Q8_0"},           {8, "Q5_0"},
      {9, "Q5_1"},           {10, "Q2_K - Medium"},
      {11, "Q3_K - Small"},  {12, "Q3_K - Medium"},
      {13, "Q3_K - Large"},  {14, "Q4_K - Small"},
      {15, "Q4_K - Medium"}, {16, "Q5_K - Small"},
      {17, "Q5_K - Medium"}, {18, "Q6_K"},
      {32, "BF16"}};
  auto it = names.find(ftype);
  return it == names.end() ? "" : it->second;
}

std::string count_label(uint64_t n) {
  if (n < 1000000) return fmt::format("{:.0f}K", n / 1e3);
  if (n < 1000000000) return fmt::format("{:.0f}M", n / 1e6);
  return fmt::format("{:.1f}B", n / 1e9);
}

uint64_t tensor_bytes(const Model& model) {
  uint64_t total = 0;
  for (const auto& t : model.file().tensors()) total += t.n_bytes;
  return total;
}

uint64_t tensor_elements(const Model& model) {
  uint64_t total = 0;
  for (const auto& t : model.file().tensors()) total += t.n_elements();
  return total;
}

void check_params(const BenchParams& p) {
  auto all_non_negative = [](const std::vector<int>& v) {
    return std::all_of(v.begin(), v.end(), [](int x) { return x >= 0; });
  };
  if (!all_non_negative(p.n_prompt)) throw Error("bench: -p values must be 0 or more");
  if (!all_non_negative(p.n_gen)) throw Error("bench: -n values must be 0 or more");
  auto any_positive = [](const std::vector<int>& v) {
    return std::any_of(v.begin(), v.end(), [](int x) { return x > 0; });
  };
  if (!any_positive(p.n_prompt) && !any_positive(p.n_gen))
    throw Error("bench: nothing to run: every -p and -n value is 0");
  if (p.n_threads.empty()) throw Error("bench: no thread count given (-t)");
  for (int t : p.n_threads)
    if (t < 1) throw Error("bench: -t values must be at least 1, got " + std::to_string(t));
  if (p.repetitions < 1) throw Error("bench: -r must be at least 1");
  if (p.n_batch < 1) throw Error("bench: -b must be at least 1");
  if (p.guide_spans.empty()) throw Error("bench: no guide span variant (use \"\" for unsteered)");
  if (p.trace_sets.empty()) throw Error("bench: no trace variant (use {} for untraced)");
}

struct Test {
  int n_prompt = 0, n_gen = 0;
};

// Everything one timed run needs; rebuilt per record like llama-bench rebuilds its context.
class Runner {
 public:
  Runner(const Model& model, const BenchParams& params, const Test& test, int n_threads,
         const Steering* steering, std::span<const float> indicator,
         const std::vector<InfluenceMetric>& trace_metrics)
      : model_(model),
        test_(test),
        n_batch_(params.n_batch),
        session_(model,
                 SessionOptions{
                     .n_ctx = std::max(1, test.n_prompt + test.n_gen),
                     .n_batch = std::min(params.n_batch, std::max(1, test.n_prompt)),
                     .n_threads = n_threads,
                     .max_trace_channels = std::max(1, static_cast<int>(trace_metrics.size())),
                     .matmul_mode = params.matmul_mode,
                     .on_prefill_progress = {}}),
        rng_(params.seed) {
    if (steering) session_.set_steering(steering);
    if (!trace_metrics.empty()) {
      tracer_ = std::make_unique<InfluenceTracer>(static_cast<int>(model.config().n_layer),
                                                  session_.n_ctx(), trace_metrics);
      tracer_->set_indicator(indicator);
      session_.set_observer(tracer_.get());
    }
  }

  void clear() {
    session_.reset();
    if (tracer_) tracer_->reset();
  }

  // llama-bench's test_prompt: n tokens in n_batch chunks, BOS first when the model adds one.
  void prompt(int n) {
    std::vector<int32_t> chunk;
    for (int done = 0; done < n;) {
      const int len = std::min(n_batch_, n - done);
      chunk.resize(len);
      for (int i = 0; i < len; ++i) chunk[i] = done == 0 && i == 0 ? first_token() : random_token();
      session_.prefill(chunk);
      done += len;
    }
  }

  // llama-bench's test_gen: n single-token steps, each fed a random token.
  void generate(int n) {
    int32_t token = first_token();
    for (int i = 0; i < n; ++i) {
      session_.decode(token);
      token = random_token();
    }
  }

  uint64_t timed_run() {
    clear();
    const auto start = std::chrono::steady_clock::now();
    if (test_.n_prompt > 0) prompt(test_.n_prompt);
    if (test_.n_gen > 0) generate(test_.n_gen);
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now() - start)
                                     .count());
  }

 private:
  int32_t random_token() {
    return std::uniform_int_distribution<int32_t>(
        0, static_cast<int32_t>(model_.config().n_vocab) - 1)(rng_);
  }
  int32_t first_token() {
    const Tokenizer& tok = model_.tokenizer();
    return tok.add_bos() && tok.bos() >= 0 ? tok.bos() : random_token();
  }

  const Model& model_;
  Test test_;
  int n_batch_;
  Session session_;
  std::unique_ptr<InfluenceTracer> tracer_;
  std::mt19937 rng_;
};

}  // namespace

double mean(const std::vector<double>& v) {
  if (v.empty()) return 0;
  double sum = 0;
  for (double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

double sample_stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = mean(v);
  double sq = 0;
  for (double x : v) sq += (x - m) * (x - m);
  return std::sqrt(sq / static_cast<double>(v.size() - 1));
}

std::string BenchRecord::test_name() const {
  if (n_gen == 0) return fmt::format("pp{}", n_prompt);
  if (n_prompt == 0) return fmt::format("tg{}", n_gen);
  return fmt::format("pp{}+tg{}", n_prompt, n_gen);
}

std::vector<double> BenchRecord::samples_ts() const {
  std::vector<double> ts;
  const double n_tokens = n_prompt + n_gen;
  for (uint64_t ns : samples_ns) ts.push_back(1e9 * n_tokens / static_cast<double>(ns));
  return ts;
}

double BenchRecord::avg_ns() const {
  return mean(std::vector<double>(samples_ns.begin(), samples_ns.end()));
}
double BenchRecord::stddev_ns() const {
  return sample_stddev(std::vector<double>(samples_ns.begin(), samples_ns.end()));
}
double BenchRecord::avg_ts() const {
  return mean(samples_ts());
}
double BenchRecord::stddev_ts() const {
  return sample_stddev(samples_ts());
}

std::optional<double> BenchRecord::roofline_fraction() const {
  if (n_prompt != 0 || n_gen == 0 || bandwidth_gbs <= 0 || weight_bytes == 0) return std::nullopt;
  const double roofline_ts = bandwidth_gbs * 1e9 / static_cast<double>(weight_bytes);
  return avg_ts() / roofline_ts;
}

std::string model_type(const Model& model) {
  const gguf::File& f = model.file();
  std::string type = file_type_name(f.get_uint_or("general.file_type", UINT64_MAX));
  if (type.empty()) {
    // No (known) file type: name the type holding most of the matrix bytes.
    std::map<DType, uint64_t> bytes;
    for (const auto& t : f.tensors())
      if (t.n_dims >= 2) bytes[t.type] += t.n_bytes;
    auto it = std::max_element(bytes.begin(), bytes.end(),
                               [](const auto& a, const auto& b) { return a.second < b.second; });
    type = it == bytes.end() ? "?" : std::string(dtype_name(it->first));
  }
  return fmt::format("{} {} {}", arch_name(model.config().arch),
                     count_label(tensor_elements(model)), type);
}

std::vector<BenchRecord> run_bench(const Model& model, const BenchParams& params) {
  check_params(params);
  std::vector<Test> tests;
  for (int n : params.n_prompt)
    if (n > 0) tests.push_back({n, 0});
  for (int n : params.n_gen)
    if (n > 0) tests.push_back({0, n});
  int max_ctx = 0;
  for (const Test& t : tests) max_ctx = std::max(max_ctx, t.n_prompt + t.n_gen);

  // One steering configuration per guide span, parsed up front so a bad span fails fast.
  struct Guide {
    std::string spec;
    std::optional<Steering> steering;
    std::vector<float> indicator = std::vector<float>(kDefaultTracedTokens, 1.0f);
  };
  std::vector<Guide> guides;
  for (const std::string& spec : params.guide_spans) {
    Guide& g = guides.emplace_back();
    if (spec.empty()) continue;
    const BiasSpan span = parse_bias_span(spec, max_ctx, "--guide-span");
    g.spec = spec;
    g.steering.emplace();
    g.steering->add_bias(span.begin, span.end, span.delta);
    g.steering->decode_policy = DecodePolicy::All;
    g.indicator.assign(span.end, 0.0f);
    std::fill(g.indicator.begin() + span.begin, g.indicator.end(), 1.0f);
  }

  BenchRecord base;
  base.model_filename = model.file().path();
  base.model_type = model_type(model);
  base.model_size = tensor_bytes(model);
  base.model_n_params = tensor_elements(model);
  base.weight_bytes = model.weight_bytes();
  base.cpu_info = cpu_model_name();
  base.n_batch = params.n_batch;
  base.act_quant = params.matmul_mode == MatmulMode::LlamaCpp;
  base.huge_pages = model.file().in_huge_pages();

  const size_t bw_bytes = params.bandwidth_buffer_bytes ? params.bandwidth_buffer_bytes
                                                        : default_bandwidth_buffer_bytes();
  auto report = [&](const std::string& s) {
    if (params.progress) params.progress(s);
  };
  std::vector<BenchRecord> records;
  for (int n_threads : params.n_threads) {
    report(fmt::format("bandwidth t={}", n_threads));
    const double bandwidth = measure_bandwidth_gbs(n_threads, bw_bytes);
    for (const Test& test : tests) {
      // Every variant (guide span x trace set) of this test is built and warmed up
      // first, then timed repetition by repetition in turn: a machine whose speed
      // drifts between minutes then biases none of them against the others.
      struct Variant {
        BenchRecord rec;
        std::string name;
        std::unique_ptr<Runner> runner;
      };
      std::vector<Variant> variants;
      for (const Guide& guide : guides) {
        for (const std::vector<InfluenceMetric>& trace : params.trace_sets) {
          Variant& v = variants.emplace_back();
          v.rec = base;
          v.rec.n_threads = n_threads;
          v.rec.n_prompt = test.n_prompt;
          v.rec.n_gen = test.n_gen;
          v.rec.bandwidth_gbs = bandwidth;
          v.rec.test_time = utc_now_rfc3339();
          v.rec.guide = guide.spec;
          for (InfluenceMetric m : trace)
            v.rec.trace_metrics.emplace_back(influence_metric_name(m));
          v.name = fmt::format("{} t={}", v.rec.test_name(), n_threads);
          if (!guide.spec.empty()) v.name += " guide " + guide.spec;
          if (!trace.empty())
            v.name += fmt::format(" trace {}", fmt::join(v.rec.trace_metrics, ","));
          v.runner = std::make_unique<Runner>(model, params, test, n_threads,
                                              guide.steering ? &*guide.steering : nullptr,
                                              guide.indicator, trace);
          report(v.name + " warmup");
          v.runner->clear();
          if (test.n_prompt > 0) v.runner->prompt(test.n_prompt);
          if (test.n_gen > 0) v.runner->generate(1);
        }
      }
      for (int r = 0; r < params.repetitions; ++r) {
        for (Variant& v : variants) {
          report(fmt::format("{} rep {}/{}", v.name, r + 1, params.repetitions));
          v.rec.samples_ns.push_back(v.runner->timed_run());
        }
      }
      for (Variant& v : variants) records.push_back(std::move(v.rec));
    }
  }
  return records;
}

OutputFormat parse_output_format(std::string_view text) {
  if (text == "md") return OutputFormat::Markdown;
  if (text == "json") return OutputFormat::Json;
  throw Error("-o: unknown output format '" + std::string(text) + "' (expected md or json)");
}

std::string records_json(const std::vector<BenchRecord>& records) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const BenchRecord& r : records) {
    nlohmann::ordered_json j;
    j["cpu_info"] = r.cpu_info;
    j["backends"] = r.backends;
    j["model_filename"] = r.model_filename;
    j["model_type"] = r.model_type;
    j["model_size"] = r.model_size;
    j["model_n_params"] = r.model_n_params;
    j["n_batch"] = r.n_batch;
    j["n_threads"] = r.n_threads;
    j["n_prompt"] = r.n_prompt;
    j["n_gen"] = r.n_gen;
    j["test_time"] = r.test_time;
    j["avg_ns"] = static_cast<uint64_t>(std::llround(r.avg_ns()));
    j["stddev_ns"] = static_cast<uint64_t>(std::llround(r.stddev_ns()));
    j["avg_ts"] = r.avg_ts();
    j["stddev_ts"] = r.stddev_ts();
    j["samples_ns"] = r.samples_ns;
    j["samples_ts"] = r.samples_ts();
    j["guide"] =
        r.guide.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.guide);
    j["act_quant"] = r.act_quant;
    j["huge_pages"] = r.huge_pages;
    j["trace"] = !r.trace_metrics.empty();
    j["trace_metrics"] = r.trace_metrics;
    j["weight_bytes"] = r.weight_bytes;
    j["bandwidth_gbs"] = r.bandwidth_gbs;
    const auto roof = r.roofline_fraction();
    j["roofline_fraction"] = roof ? nlohmann::ordered_json(*roof) : nlohmann::ordered_json(nullptr);
    out.push_back(std::move(j));
  }
  return out.dump(2);
}

std::string records_markdown(const std::vector<BenchRecord>& records) {
  bool any_guide = false, any_trace = false;
  for (const BenchRecord& r : records) {
    any_guide |= !r.guide.empty();
    any_trace |= !r.trace_metrics.empty();
  }
  std::vector<std::string> header = {"model",   "size", "params", "backend",
                                     "threads", "test", "t/s",    "roofline"};
  if (any_guide) header.push_back("guide");
  if (any_trace) header.push_back("trace");
  std::vector<std::vector<std::string>> rows;
  for (const BenchRecord& r : records) {
    std::vector<std::string> row;
    row.push_back(r.model_type);
    row.push_back(r.model_size < (uint64_t{1} << 30)
                      ? fmt::format("{:.2f} MiB", r.model_size / 1048576.0)
                      : fmt::format("{:.2f} GiB", r.model_size / 1073741824.0));
    row.push_back(r.model_n_params < 1000000000 ? fmt::format("{:.2f} M", r.model_n_params / 1e6)
                                                : fmt::format("{:.2f} B", r.model_n_params / 1e9));
    row.push_back(r.backends);
    row.push_back(std::to_string(r.n_threads));
    row.push_back(r.test_name());
    row.push_back(fmt::format("{:.2f} ± {:.2f}", r.avg_ts(), r.stddev_ts()));
    const auto roof = r.roofline_fraction();
    row.push_back(roof ? fmt::format("{:.1f}% of {:.1f} GB/s", *roof * 100, r.bandwidth_gbs) : "");
    if (any_guide) row.push_back(r.guide.empty() ? "-" : r.guide);
    if (any_trace)
      row.push_back(r.trace_metrics.empty() ? "-"
                                            : fmt::format("{}", fmt::join(r.trace_metrics, ",")));
    rows.push_back(std::move(row));
  }
  // Column widths in code points: "±" is two bytes but one column.
  auto width = [](const std::string& s) {
    size_t w = 0;
    for (unsigned char c : s) w += (c & 0xC0) != 0x80;
    return w;
  };
  std::vector<size_t> widths(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    widths[c] = std::max<size_t>(3, width(header[c]));
    for (const auto& row : rows) widths[c] = std::max(widths[c], width(row[c]));
  }
  auto pad = [&](const std::string& s, size_t c) {
    const std::string fill(widths[c] - width(s), ' ');
    return c == 0 ? s + fill : fill + s;  // model left-aligned, the rest right-aligned
  };
  std::string out;
  auto add_row = [&](const std::vector<std::string>& cells) {
    out += '|';
    for (size_t c = 0; c < cells.size(); ++c) out += fmt::format(" {} |", pad(cells[c], c));
    out += '\n';
  };
  add_row(header);
  std::vector<std::string> rule;
  for (size_t c = 0; c < header.size(); ++c)
    rule.push_back(c == 0 ? std::string(widths[c], '-') : std::string(widths[c] - 1, '-') + ':');
  add_row(rule);
  for (const auto& row : rows) add_row(row);
  return out;
}

}  // namespace heed::bench
