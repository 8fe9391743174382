#include "cli/commands.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "heed/error.h"

namespace heed::cli {

void register_commands(CLI::App& app) {
  add_run(app);
  add_tokenize(app);
  add_info(app);
  add_logits(app);
  add_influence(app);
  add_calibrate(app);
  add_synth(app);
  add_bench(app);
  add_eval(app);
  add_serve(app);
}

void add_mmap_flag(CLI::App* c, bool* mmap) {
  c->add_flag(
      "--mmap", *mmap,
      "Keep the weights in the file's mapping (no copy; 4 KiB pages, slower decode) instead "
      "of reading them into 2 MiB huge pages");
}

std::unique_ptr<Model> load_model(const std::string& path, bool mmap) {
  return Model::load(path, mmap ? WeightResidency::Mapped : WeightResidency::HugePages);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<int32_t> parse_token_list(const std::string& text) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ',' || std::isspace(static_cast<unsigned char>(text[i]))))
      ++i;
    if (i >= text.size()) break;
    size_t j = i;
    if (text[j] == '-') ++j;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
    if (j == i || (j == i + 1 && text[i] == '-') ||
        (j < text.size() && text[j] != ',' && !std::isspace(static_cast<unsigned char>(text[j]))))
      throw Error("--tokens: expected an integer at character " + std::to_string(i + 1) + " of '" +
                  text.substr(0, 40) + "'");
    const long long v = std::stoll(text.substr(i, j - i));
    if (v < INT32_MIN || v > INT32_MAX)
      throw Error("--tokens: value out of range at character " + std::to_string(i + 1));
    ids.push_back(static_cast<int32_t>(v));
    i = j;
  }
  return ids;
}

void print_prefill_progress(int64_t done, int64_t total) {
  std::fprintf(stderr, "\rprefill %lld/%lld tokens", static_cast<long long>(done),
               static_cast<long long>(total));
  if (done >= total) std::fputc('\n', stderr);
  std::fflush(stderr);
}

std::string prompt_text(const std::string& prompt, const std::string& file) {
  if (!prompt.empty() && !file.empty()) throw Error("give either -p or -f, not both");
  if (!file.empty()) return read_file(file);
  return prompt;
}

}  // namespace heed::cli
