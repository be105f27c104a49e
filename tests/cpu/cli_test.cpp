// The CLI's contract on bad input: exit code 2, one line naming the problem, nothing written.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace {

struct Result {
  int code;
  std::string out;
};

Result run(const std::string& args) {
  const std::string cmd = std::string(SLOPE_CLI_PATH) + " " + args + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return {-1, ""};
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("slope_cli_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }
  void write(const std::string& name, const std::string& text) const { std::ofstream(file(name)) << text; }

  // Bad input: exit 2, exactly one line mentioning `needle`, and no output file.
  void expect_bad_input(const std::string& args, const std::string& needle) const {
    const std::string out = file("out.csv");
    const Result r = run(args + " --out " + out);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << r.out;
    EXPECT_FALSE(std::filesystem::exists(out)) << args;
    for (const auto& entry : std::filesystem::directory_iterator(dir_))
      EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos) << "left " << entry.path();
  }
  std::filesystem::path dir_;
};

TEST_F(CliTest, BadInputsExitTwoWithOneLine) {
  expect_bad_input("memroy --model OPT-13B", "unknown command 'memroy' (commands: memory, prune, spmm");
  const Result none = run("");  // expect_bad_input would add an option
  EXPECT_EQ(none.code, 2) << none.out;
  EXPECT_EQ(none.out, "slope: error: no command given (commands: memory, prune, spmm, setup, lowrank, layer, model, "
                      "memcheck, models)\n");
  expect_bad_input("--model OPT-13B memory", "unknown option '--model' before a command (commands: memory,");
  expect_bad_input("memory --model OPT-1T", "unknown model 'OPT-1T'");
  expect_bad_input("memory --adapter-ratio -0.1", "adapter ratio");
  expect_bad_input("memory --adapter-ratio 1", "adapter ratio");
  // A ratio is echoed as given, not rounded to six decimals ("-0.000000").
  expect_bad_input("memory --adapter-ratio -1e-7", "(got -1e-07)");
  expect_bad_input("memory --protocol fancy", "protocol");
  write("broken.json", "{ \"model_type\": \"opt\", ");
  expect_bad_input("memory --config " + file("broken.json"), "not valid JSON");
  write("partial.json", R"({"model_type": "opt", "hidden_size": 512})");
  expect_bad_input("memory --config " + file("partial.json"), "missing required field");
  expect_bad_input("memory --config " + file("absent.json"), "cannot read config file");
  expect_bad_input("prune --pattern 5:4", "N <= M");
  expect_bad_input("prune --pattern 2:32", "M <= 16");
  expect_bad_input("prune --pattern 2:4 --rows 10", "divisible by M=4");
  expect_bad_input("prune --pattern two:four", "N:M");
  expect_bad_input("memory --bogus", "bogus");
  // Arguments a command does not take are named with the command, in the order typed.
  expect_bad_input("prune --n 3 --m 2", "prune: unexpected argument(s) '--n 3 --m 2'");
}

TEST_F(CliTest, AValueGivenTwiceIsRefused) {
  expect_bad_input("memory --model OPT-13B --model OPT-66B --model OPT-13B", "--model OPT-13B is given twice");
  // The paper's name and the zoo's are one model.
  expect_bad_input("models --model OPT-2.6B --model OPT-2.7B", "--model OPT-2.7B is given twice");
  expect_bad_input("memory --adapter-ratio 0.0625 --adapter-ratio 0 --adapter-ratio 0.0625",
                   "--adapter-ratio 0.0625 is given twice");
  write("tiny.json", R"({"model_type": "opt", "hidden_size": 512, "num_hidden_layers": 2, "ffn_dim": 2048,
                         "num_attention_heads": 8, "vocab_size": 1000, "max_position_embeddings": 64})");
  expect_bad_input("models --config " + file("tiny.json") + " --config " + (dir_ / "." / "tiny.json").string(),
                   "is given twice");
  // Distinct values pass: two zoo models, and two ratios that differ only past six decimals.
  EXPECT_EQ(run("models --model OPT-13B --model OPT-66B --format csv").code, 0);
  EXPECT_EQ(run("memory --model GPT-2 --adapter-ratio 1e-7 --adapter-ratio 2e-7 --format csv").code, 0);
  if (run("spmm --help").out.find("GPU experiment (this build has no CUDA)") != std::string::npos) return;
  // The GPU commands refuse it too, before any GPU work.
  expect_bad_input("spmm --hidden 768 --hidden 1024 --hidden 768", "--hidden 768 is given twice");
  expect_bad_input("lowrank --rank-ratio 0.05 --rank-ratio 0.05", "--rank-ratio 0.05 is given twice");
  expect_bad_input("layer --mode inference --adapter-ratio 0 --adapter-ratio 0", "--adapter-ratio 0 is given twice");
  expect_bad_input("layer --mode training --token-count 2048 --token-count 2048", "--token-count 2048 is given twice");
  expect_bad_input("layer --mode step --accumulation 4 --accumulation 4", "--accumulation 4 is given twice");
  expect_bad_input("model --model LLaMA-3-8B --model LLaMA-3-8B", "--model LLaMA-3-8B is given twice");
  expect_bad_input("memcheck --model GPT-2 --model GPT-2", "--model GPT-2 is given twice");
}

TEST_F(CliTest, OneFileNamedForTwoOutputsIsRefused) {
  // --out would otherwise overwrite the CSV copy with the table it renders.
  expect_bad_input("memory --model GPT-2 --csv " + file("out.csv"), "--out and --csv name the same file");
  const std::string dot = (dir_ / "." / "m.json").string();
  const Result r = run("memory --model GPT-2 --json " + file("m.json") + " --format json --out " + dot);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--out and --json name the same file"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(file("m.json")));
  EXPECT_EQ(run("memory --model GPT-2 --csv " + file("m.csv") + " --json " + file("m.json")).code, 0);
}

TEST_F(CliTest, AConfigDirectoryIsNamedAsOne) {
  expect_bad_input("memory --config " + dir_.string(), "is a directory (name the config.json inside it)");
}

TEST_F(CliTest, PruneRefusesAMatrixTooLargeForTheMachine) {
  // 4e9 x 4e9 elements would also overflow a 64-bit element count.
  for (const std::string size : {"--rows 400000 --cols 400000", "--rows 4000000000 --cols 4000000000"})
    expect_bad_input("prune --pattern 2:4 " + size, "GiB of host memory to prune; this machine has");
}

TEST_F(CliTest, MemoryWritesCsvAndJson) {
  const Result csv = run("memory --model OPT-66B --format csv --out " + file("m.csv"));
  ASSERT_EQ(csv.code, 0) << csv.out;
  std::ifstream in(file("m.csv"));
  std::string header;
  std::getline(in, header);
  EXPECT_EQ(header.rfind("model,method,mode,adapter_ratio,", 0), 0u) << header;
  EXPECT_NE(header.find("bytes,dense_bytes,ratio"), std::string::npos);

  const Result json = run("memory --protocol paper --format json --out " + file("m.json"));
  ASSERT_EQ(json.code, 0) << json.out;
  std::ifstream jin(file("m.json"));
  const auto j = nlohmann::json::parse(jin);
  EXPECT_EQ(j["meta"]["protocol"], "paper");
  EXPECT_FALSE(j["meta"]["commit"].get<std::string>().empty());
  EXPECT_TRUE(j["rows"][0].contains("paper_ratio"));
  EXPECT_TRUE(j["rows"][0].contains("diff"));
}

TEST_F(CliTest, ModelsListsTheZooAndRefusesUnknownModels) {
  const Result all = run("models --csv " + file("zoo.csv"));
  ASSERT_EQ(all.code, 0) << all.out;
  std::ifstream in(file("zoo.csv"));
  std::string header, line;
  std::getline(in, header);
  EXPECT_EQ(header.rfind("model,paper_model,family,hidden,layers,ffn,heads,kv_heads,head_dim,vocab,", 0), 0u) << header;
  int rows = 0;
  while (std::getline(in, line)) ++rows;
  EXPECT_EQ(rows, 9);  // the whole zoo by default
  EXPECT_NE(all.out.find("LLaMA-3-8B"), std::string::npos) << all.out;  // the table on stdout too

  const Result one = run("models --model OPT-2.6B --format json --out " + file("one.json"));
  ASSERT_EQ(one.code, 0) << one.out;
  std::ifstream jin(file("one.json"));
  const auto j = nlohmann::json::parse(jin);
  ASSERT_EQ(j["rows"].size(), 1u);
  EXPECT_EQ(j["rows"][0]["model"], "OPT-2.7B");
  EXPECT_EQ(j["rows"][0]["paper_model"], "OPT-2.6B");
  EXPECT_EQ(j["meta"]["experiment"], "models");
  expect_bad_input("models --model OPT-1T", "unknown model 'OPT-1T'");
}

TEST_F(CliTest, TokenMajorLayerOutputIsRefusedForTraining) {
  // Checked before any GPU work: the same answer with or without a GPU, in a build that has
  // the GPU commands at all.
  const Result training = run("layer --mode training --output-layout token-major --out " + file("l.csv"));
  if (training.out.find("needs a GPU build") != std::string::npos) GTEST_SKIP() << "a CPU-only build";
  EXPECT_EQ(training.code, 2) << training.out;  // a usage error
  EXPECT_NE(training.out.find("--mode inference only"), std::string::npos) << training.out;
  EXPECT_FALSE(std::filesystem::exists(file("l.csv")));
}

TEST_F(CliTest, LayerAndLowrankRefuseBadInputBeforeAnyGpuWork) {
  if (run("layer --help").out.find("GPU experiment (this build has no CUDA)") != std::string::npos)
    GTEST_SKIP() << "a CPU-only build";
  expect_bad_input("lowrank --rank-ratio 2", "--rank-ratio must be in (0, 1] (got 2)");
  expect_bad_input("lowrank --no-search", "--no-search");  // cuBLASLt only: no search to skip
  // An option of another mode is refused, not ignored.
  expect_bad_input("layer --mode inference --token-count 4096", "--token-count is for --mode training only");
  expect_bad_input("layer --mode step --token-count 4096", "--token-count is for --mode training only");
  expect_bad_input("layer --mode training --tokens 4096", "training takes --token-count");
  expect_bad_input("layer --mode inference --accumulation 4", "--accumulation is for --mode step only");
  expect_bad_input("layer --mode training --adapter-ratio 0.0625", "the training layers have no adapters");
  expect_bad_input("layer --mode training --token-count 100", "--token-count must be a positive multiple of 16");
}

TEST_F(CliTest, ModelRefusesBadInputBeforeAnyGpuWork) {
  if (run("model --help").out.find("GPU experiment (this build has no CUDA)") != std::string::npos)
    GTEST_SKIP() << "a CPU-only build";
  expect_bad_input("model --model OPT-1T", "unknown model 'OPT-1T'");
  expect_bad_input("model --hidden 768", "--hidden");  // the models set the shapes
  expect_bad_input("memcheck --hidden 768", "--hidden");
  expect_bad_input("memcheck --tokens 4096", "--tokens");
  expect_bad_input("memcheck --dtype bf16", "--dtype");
  expect_bad_input("model --adapter-ratio 1.5", "adapter ratio");
  expect_bad_input("model --tokens 100", "--tokens");
  expect_bad_input("model --mode serving", "--mode");
  expect_bad_input("model --mode training --adapter-ratio 0.0625", "--mode inference only");
  expect_bad_input("model --mode training --tokens 100", "--tokens");
  expect_bad_input("model --mode training --accumulation -1", "--accumulation");
  expect_bad_input("model --mode training --accumulation 2 --accumulation 4", "one value");
  expect_bad_input("model --accumulation 4", "--mode training only");
  write("broken.json", "{ \"model_type\": \"opt\", ");
  expect_bad_input("model --config " + file("broken.json"), "not valid JSON");
  // hidden 520: a multiple of 8 but not of 16
  write("odd.json", R"({"model_type": "opt", "hidden_size": 520, "num_hidden_layers": 2, "ffn_dim": 2080,
                        "num_attention_heads": 8, "vocab_size": 1000, "max_position_embeddings": 64})");
  expect_bad_input("model --mode training --config " + file("odd.json"), "multiples of 16");
}

TEST_F(CliTest, GpuCommandsFailCleanlyWhenUnavailable) {
  // Either a GPU build on a GPU machine (skip) or a clear one-line runtime error, exit 1.
  const Result r = run("spmm --hidden 768 --samples 1 --out " + file("s.csv"));
  if (r.code == 0) GTEST_SKIP() << "a GPU is present";
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("slope: error:"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(file("s.csv")));
}

TEST_F(CliTest, UnwritableOutputIsRefusedBeforeTheRun) {
  const std::string missing = file("missing") + "/x.csv";
  for (const std::string option : {"--out", "--csv", "--json"}) {
    const Result r = run("memory " + option + " " + missing);
    EXPECT_EQ(r.code, 2) << option << "\n" << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_NE(r.out.find("does not exist"), std::string::npos) << r.out;
  }
  std::filesystem::create_directories(file("a_directory"));
  EXPECT_NE(run("prune --out " + file("a_directory")).out.find("is a directory"), std::string::npos);
  // A GPU command refuses it as bad input (2), not after its run or for want of a GPU (1).
  if (run("spmm --help").out.find("GPU experiment (this build has no CUDA)") != std::string::npos) return;
  const Result gpu = run("spmm --hidden 768 --samples 1 --csv " + missing);
  EXPECT_EQ(gpu.code, 2) << gpu.out;
  EXPECT_NE(gpu.out.find("does not exist"), std::string::npos) << gpu.out;
  // So is a tuning cache that could not be saved (here a directory).
  const Result cache = run("spmm --hidden 768 --samples 1 --tuning-cache " + file("a_directory"));
  EXPECT_EQ(cache.code, 2) << cache.out;
  EXPECT_NE(cache.out.find("--tuning-cache: cannot write"), std::string::npos) << cache.out;
  EXPECT_FALSE(std::filesystem::exists(file("missing")));
}

TEST_F(CliTest, HelpExitsZero) {
  EXPECT_EQ(run("--help").code, 0);
  EXPECT_EQ(run("").code, 2);
}

TEST_F(CliTest, VersionNamesCommitAndLibrariesWithoutAGpu) {
  const Result r = run("--version");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("slope ", 0), 0u) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  // A GPU build names the cuSPARSELt headers it was compiled against and the CUDA
  // architectures it has code for; a CPU build says it has no CUDA.
  const bool gpu_build = r.out.find("cuSPARSELt ") != std::string::npos;
  EXPECT_TRUE(gpu_build || r.out.find("no CUDA") != std::string::npos) << r.out;
  if (gpu_build) EXPECT_NE(r.out.find(", CUDA architectures "), std::string::npos) << r.out;
}

}  // namespace
