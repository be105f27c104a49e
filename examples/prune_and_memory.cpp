// slope_core from another project: prune a weight 2:4 along its rows, compress it, check
// that the compressed weight gives the pruned weight's product, then ask the memory model
// what SLoPe stores for a model of the zoo against dense training.
// Usage: prune_and_memory [MODEL]   (default LLaMA-3-8B; `slope memory` lists the zoo)
#include <cstdio>
#include <string>

#include "slope/core/compressed.hpp"
#include "slope/core/error.hpp"
#include "slope/core/nm_prune.hpp"
#include "slope/core/random.hpp"
#include "slope/core/reference.hpp"
#include "slope/model/memory_model.hpp"
#include "slope/model/model_config.hpp"

int main(int argc, char** argv) {
  try {
    const std::string model_name = argc > 1 ? argv[1] : "LLaMA-3-8B";
    const slope::ModelConfig& model = slope::find_model(model_name);  // throws for an unknown name
    const slope::NmPattern two_four{2, 4};
    // Odd sizes on purpose: any row length divisible by 4 works.
    const slope::MatrixF w = slope::random_matrix(96, 164, 1, slope::DType::kF16);
    const slope::MatrixF x = slope::random_matrix(40, 164, 2, slope::DType::kF16);
    const slope::MatrixF pruned = slope::prune(w, two_four, slope::PruneAxis::kRows);
    const slope::CompressedNm compressed = slope::compress(pruned, two_four);
    const double error = slope::relative_error(slope::matmul_nt(x, slope::decompress(compressed)),
                                               slope::matmul_nt(x, pruned));
    std::printf("2:4 weight %lldx%lld: %lld values kept per row, relative error of the compressed product %.1e\n",
                static_cast<long long>(w.rows), static_cast<long long>(w.cols),
                static_cast<long long>(compressed.kept_per_row()), error);
    if (!slope::is_nm_sparse(pruned, two_four, slope::PruneAxis::kRows) || error != 0.0) {
      std::fprintf(stderr, "error: the compressed weight does not reproduce the pruned one\n");
      return 1;
    }

    const auto gib = [](int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0); };
    const int64_t dense = slope::memory_bytes(model, {slope::Method::kDense, slope::Mode::kTraining}).total();
    const int64_t sparse = slope::memory_bytes(model, {slope::Method::kSlope, slope::Mode::kTraining}).total();
    std::printf("%s training state: dense %.1f GiB, SLoPe %.1f GiB (%.2f of dense)\n", model_name.c_str(),
                gib(dense), gib(sparse), static_cast<double>(sparse) / static_cast<double>(dense));
    return 0;
  } catch (const slope::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return e.kind() == slope::ErrorKind::kInvalidInput ? 2 : 1;
  }
}
