#include <gtest/gtest.h>

#include <cmath>

#include "slope/core/error.hpp"
#include "slope/experiments/memory_experiment.hpp"
#include "slope/model/memory_model.hpp"

namespace slope {
namespace {

// A tiny LLaMA-like model whose bytes are worked out by hand below:
// embed 100x64 and untied lm_head 100x64 (12800), per layer q,k,v,o 64x64, gate,up 128x64,
// down 64x128 (40960 linear elements) and two RMSNorms (128), final norm 64.
ModelConfig tiny() {
  ModelConfig c;
  c.name = "tiny";
  c.family = Family::kLlama;
  c.hidden = 64;
  c.layers = 2;
  c.ffn = 128;
  c.heads = 4;
  c.kv_heads = 4;
  c.head_dim = 16;
  c.vocab = 100;
  c.tied_lm_head = false;
  c.linear_bias = false;
  c.gated_mlp = true;
  c.norm_bias = false;
  return c;
}

int64_t bytes(Method m, Mode mode, double ratio, Protocol p) {
  return memory_bytes(tiny(), {m, mode, ratio, p, 0, false}).total();
}

TEST(MemoryModel, HandComputedTinyModel) {
  ASSERT_EQ(parameter_count(tiny()), 95040);
  EXPECT_EQ(bytes(Method::kDense, Mode::kInference, 0, Protocol::kExact), 190080);
  EXPECT_EQ(bytes(Method::kDense, Mode::kTraining, 0, Protocol::kExact), 1140480);
  // 81920 linear elements at 9/16 of 2 bytes; 13120 other elements at 2 bytes.
  EXPECT_EQ(bytes(Method::kSlope, Mode::kInference, 0, Protocol::kExact), 92160 + 26240);
  // W and W^{R,C}: 2 x 92160 (W's positions live in W's metadata, no copy); column-mask flags
  // 81920 / 16; kept-half gradient 81920 and moments 327680; scratch 128x64x2; the other
  // tensors at 12 bytes per element.
  EXPECT_EQ(bytes(Method::kSlope, Mode::kTraining, 0, Protocol::kExact),
            184320 + 5120 + 81920 + 327680 + 16384 + 13120 * 12);
  // Rank 16 adapters, merged: 16 extra compressed rows (18 bytes per input column) plus a
  // dense 16 x d_out R, summed over the seven linears of both layers.
  EXPECT_EQ(bytes(Method::kSlope, Mode::kInference, 0.25, Protocol::kExact), 118400 + 55296);
  // Rank 16 adapters in training: L and R dense with gradients and moments (12 B/element).
  const int64_t adapter_elements = 2 * 16 * (4 * 128 + 2 * 192 + 192);
  EXPECT_EQ(bytes(Method::kSlope, Mode::kTraining, 0.25, Protocol::kExact),
            bytes(Method::kSlope, Mode::kTraining, 0, Protocol::kExact) + 12 * adapter_elements);
  // The paper's accounting: one-byte masks, half-size states for every 2-D parameter.
  EXPECT_EQ(bytes(Method::kSlope, Mode::kTraining, 0, Protocol::kPaper),
            184320 + 81920 + 81920 + 327680 + (25600 + 12800 + 51200) + 320 * 12);
  // FST: dense training state plus two compressed MLP copies (and masks in the paper's).
  EXPECT_EQ(bytes(Method::kFst, Mode::kTraining, 0, Protocol::kExact), 1140480 + 110592);
  EXPECT_EQ(bytes(Method::kFst, Mode::kTraining, 0, Protocol::kPaper), 1140480 + 110592 + 81920);
  EXPECT_EQ(bytes(Method::kFst, Mode::kInference, 0, Protocol::kPaper), 190080);
}

TEST(MemoryModel, AdapterRankRoundsDownToSixteen) {
  EXPECT_EQ(adapter_rank(1.0 / 64, 4096), 64);
  EXPECT_EQ(adapter_rank(1.0 / 64, 2560), 32);
  EXPECT_EQ(adapter_rank(1.0 / 16, 9216), 576);
  EXPECT_EQ(adapter_rank(0.0156, 9216), 128);
  EXPECT_EQ(adapter_rank(0, 4096), 0);
  EXPECT_THROW(adapter_rank(-0.1, 4096), Error);
  EXPECT_THROW(adapter_rank(1.0, 4096), Error);
  EXPECT_THROW(adapter_rank(NAN, 4096), Error);
}

TEST(MemoryModel, PaperProtocolReproducesThePaperOnOptRows) {
  MemoryOptions options;
  options.protocol = Protocol::kPaper;
  const Table t = run_memory_experiment(options);
  int checked = 0;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const std::string model = t.text(r, "model");
    if (model.rfind("OPT", 0) != 0 || t.text(r, "method") != "slope") continue;
    const double diff = t.number(r, "diff");
    if (std::isnan(diff)) continue;
    ++checked;
    if (model == "OPT-13B" && t.text(r, "mode") == "inference" && t.number(r, "adapter_ratio") == 0) {
      EXPECT_GT(diff, 0.05) << "the paper's 0.51 is below what 2:4 storage can reach";
      continue;
    }
    EXPECT_LE(std::fabs(diff), 0.025) << model << " " << t.text(r, "mode") << " r=" << t.text(r, "adapter_ratio");
  }
  EXPECT_EQ(checked, 5 * 4);
}

TEST(MemoryModel, ExactWholeModelTargetsForOpt66B) {
  MemoryOptions options;
  options.models = {find_model("OPT-66B")};
  options.adapter_ratios = {0.0};
  const Table t = run_memory_experiment(options);
  for (size_t r = 0; r < t.rows.size(); ++r) {
    if (t.text(r, "method") != "slope") continue;
    EXPECT_EQ(t.number(r, "layers"), 64);
    // W's positions read back from cuSPARSELt's metadata instead of stored (1/8 byte per
    // element) more than pay for W^{R,C}'s column-mask flags (1/16; docs/memory.md).
    if (t.text(r, "mode") == "training") EXPECT_LE(t.number(r, "ratio"), 0.62);
    else EXPECT_LE(t.number(r, "ratio"), 0.58);
  }
}

TEST(MemoryModel, SparseNeverCostsMoreThanDenseAtInferenceWithoutAdapters) {
  for (const auto& name : paper_models()) {
    const ModelConfig& m = find_model(name);
    for (Protocol p : {Protocol::kPaper, Protocol::kExact}) {
      const auto s = memory_bytes(m, {Method::kSlope, Mode::kInference, 0, p, 0, false}).total();
      const auto d = memory_bytes(m, {Method::kDense, Mode::kInference, 0, p, 0, false}).total();
      EXPECT_LT(s, d) << name;
      EXPECT_GT(static_cast<double>(s) / d, 0.5625) << name;  // never below 9/16
    }
  }
}

}  // namespace
}  // namespace slope

namespace slope {
namespace {

TEST(MemoryModel, PruningAnUntiedLmHeadOnlyChangesSlopeAndOnlyForUntiedModels) {
  const ModelConfig& llama = find_model("LLaMA-3-8B");
  const auto plain = memory_bytes(llama, {Method::kSlope, Mode::kInference, 0, Protocol::kPaper, 0, false});
  const auto head = memory_bytes(llama, {Method::kSlope, Mode::kInference, 0, Protocol::kPaper, 0, true});
  // The 128256 x 4096 head goes from 2 bytes to 9/8 byte per element.
  EXPECT_EQ(plain.total() - head.total(), 128256LL * 4096 * 2 - 128256LL * 4096 * 9 / 8);
  const ModelConfig& opt = find_model("OPT-6.7B");  // tied: nothing to prune
  EXPECT_EQ(memory_bytes(opt, {Method::kSlope, Mode::kInference, 0, Protocol::kPaper, 0, true}).total(),
            memory_bytes(opt, {Method::kSlope, Mode::kInference, 0, Protocol::kPaper, 0, false}).total());
}

}  // namespace
}  // namespace slope
