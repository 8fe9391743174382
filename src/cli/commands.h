// Subcommand registration. Each command lives in its own cmd_*.cc file.
#pragma once
#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "heed/heed.h"

namespace heed::cli {

void register_commands(CLI::App& app);

void add_run(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_info(CLI::App& app);
void add_logits(CLI::App& app);
void add_influence(CLI::App& app);
void add_calibrate(CLI::App& app);
void add_synth(CLI::App& app);
void add_bench(CLI::App& app);
void add_eval(CLI::App& app);
void add_serve(CLI::App& app);

// Shared helpers.
// --mmap: keep the weights in the file's mapping instead of huge pages.
void add_mmap_flag(CLI::App* c, bool* mmap);
// Model::load with the residency --mmap picked.
std::unique_ptr<Model> load_model(const std::string& path, bool mmap);
std::string read_file(const std::string& path);  // throws heed::Error naming the path
std::vector<int32_t> parse_token_list(const std::string& text);  // "1,2,3" or "1 2 3"
// Prints "prefill DONE/TOTAL tokens" on stderr, in place, for long prompts.
void print_prefill_progress(int64_t done, int64_t total);

// Prompt from -p or -f (exactly one must be given).
std::string prompt_text(const std::string& prompt, const std::string& file);

}  // namespace heed::cli
