// slope prune: what N:M row pruning and SLoPe's double pruning keep of a random matrix.
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli_common.hpp"
#include "commands.hpp"
#include "slope/core/error.hpp"
#include "slope/core/nm_prune.hpp"
#include "slope/core/random.hpp"

namespace slope::cli {
namespace {

struct PruneArgs {
  std::string pattern = "2:4";
  int64_t rows = 256;
  int64_t cols = 256;
  uint64_t seed = 1;
  OutputOptions output;
};

NmPattern parse_pattern(const std::string& text) {
  const auto colon = text.find(':');
  require(colon != std::string::npos, "pattern '" + text + "' must look like N:M, e.g. 2:4");
  try {
    size_t used_n = 0, used_m = 0;
    const int n = std::stoi(text.substr(0, colon), &used_n);
    const int m = std::stoi(text.substr(colon + 1), &used_m);
    require(used_n == colon && used_m == text.size() - colon - 1, "pattern '" + text + "' must look like N:M");
    NmPattern p{n, m};
    validate(p);
    return p;
  } catch (const std::logic_error&) {
    throw Error(ErrorKind::kInvalidInput, "pattern '" + text + "' must look like N:M, e.g. 2:4");
  }
}

double sum_abs(const MatrixF& m) {
  double s = 0;
  for (float v : m.data) s += std::fabs(v);
  return s;
}

double density(const Mask& mask) {
  double kept = 0;
  for (auto v : mask.data) kept += v;
  return kept / static_cast<double>(mask.size());
}

// The run holds the matrix's values three times (the random matrix and both pruned stages)
// and its masks twice. A size the machine cannot hold is refused before anything is allocated,
// rather than failing part way with bad_alloc (or an overflowing element count).
void require_fits_in_memory(int64_t rows, int64_t cols) {
  constexpr double kBytesPerElement = 3 * sizeof(float) + 2 * sizeof(uint8_t);
  const double need = static_cast<double>(rows) * static_cast<double>(cols) * kBytesPerElement;
  const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return;  // unknown: leave it to the allocator
  const double memory = static_cast<double>(pages) * static_cast<double>(page_size);
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  require(need <= memory, fmt::format("a {} x {} matrix needs {:.1f} GiB of host memory to prune; this machine has "
                                      "{:.1f} GiB",
                                      rows, cols, need / kGiB, memory / kGiB));
}

void run(const PruneArgs& args) {
  const NmPattern p = parse_pattern(args.pattern);
  require(args.rows > 0 && args.cols > 0, "rows and columns must be positive");
  require(args.rows % p.m == 0 && args.cols % p.m == 0,
          "rows and columns must be divisible by M=" + std::to_string(p.m));
  require_fits_in_memory(args.rows, args.cols);
  const MatrixF w = random_matrix(args.rows, args.cols, args.seed);
  const DoublePruned d = double_prune(w, p);
  Table table({"pattern", "rows", "cols", "stage", "density", "magnitude_kept"});
  const double total = sum_abs(w);
  table.add_row({args.pattern, args.rows, args.cols, std::string("row_pruned"), density(d.mask_r),
                 sum_abs(d.w_r) / total});
  table.add_row({args.pattern, args.rows, args.cols, std::string("double_pruned"), density(d.mask_rc),
                 sum_abs(d.w_rc) / total});
  Metadata meta = base_metadata();
  meta.emplace_back("experiment", "prune");
  emit(table, meta, args.output);
}

}  // namespace

void register_prune(CLI::App& app) {
  auto args = std::make_shared<PruneArgs>();
  CLI::App* sub = app.add_subcommand(
      "prune", "Density after N:M row pruning and after SLoPe double pruning of a random matrix");
  sub->add_option("--pattern", args->pattern, "N:M pattern, 1 <= N <= M <= 16 (default 2:4)");
  sub->add_option("--rows", args->rows, "Rows of the matrix");
  sub->add_option("--cols", args->cols, "Columns of the matrix");
  sub->add_option("--seed", args->seed, "Random seed");
  add_output_options(*sub, args->output);
  sub->callback([args] { run(*args); });
}

}  // namespace slope::cli
