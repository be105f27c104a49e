#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "slope/core/error.hpp"
#include "slope/core/table.hpp"

namespace slope {
namespace {

Table sample() {
  Table t({"name", "n", "x", "missing"});
  t.add_row({std::string("a"), int64_t{3}, 0.5, Cell()});
  t.add_row({std::string("b"), int64_t{-1}, 1.0 / 3.0, 2.0});
  return t;
}

TEST(Table, CsvAndJson) {
  const Table t = sample();
  EXPECT_EQ(to_csv(t), "name,n,x,missing\na,3,0.5,\nb,-1,0.333333,2\n");
  Table text({"note", "n"});
  text.add_row({std::string("a, \"b\""), int64_t{1}});
  EXPECT_EQ(to_csv(text), "note,n\n\"a, \"\"b\"\"\",1\n");  // quoted, so the columns stay put
  const auto j = to_json(t, {{"commit", "abc"}});
  EXPECT_EQ(j["meta"]["commit"], "abc");
  EXPECT_EQ(j["rows"][0]["n"], 3);
  EXPECT_TRUE(j["rows"][0]["missing"].is_null());
  EXPECT_DOUBLE_EQ(j["rows"][1]["x"].get<double>(), 1.0 / 3.0);
  EXPECT_NE(to_text(t).find("0.3333"), std::string::npos);
  EXPECT_THROW(t.column("nope"), Error);
  Table bad({"a"});
  EXPECT_THROW(bad.add_row({int64_t{1}, int64_t{2}}), Error);
}

TEST(Table, AtomicWriteLeavesNoTemporaryAndFailsCleanly) {
  const auto dir = std::filesystem::temp_directory_path() / "slope_table_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto path = (dir / "out.csv").string();
  write_file_atomically(path, "hello\n");
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_EQ(s.str(), "hello\n");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1);
  EXPECT_THROW(write_file_atomically((dir / "missing" / "x.csv").string(), "x"), Error);
  std::filesystem::remove_all(dir);
}

TEST(Table, WhyUnwritableNamesTheProblemBeforeAnyWrite) {
  const auto dir = std::filesystem::temp_directory_path() / "slope_unwritable_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "sub");
  EXPECT_EQ(why_unwritable((dir / "new.csv").string()), "");
  EXPECT_NE(why_unwritable((dir / "missing" / "x.csv").string()).find("does not exist"), std::string::npos);
  EXPECT_NE(why_unwritable((dir / "sub").string()).find("is a directory"), std::string::npos);
  EXPECT_NE(why_unwritable("").find("no file name"), std::string::npos);
  // A read-only directory (root may write anyway, so only where the mode is honoured).
  std::filesystem::permissions(dir / "sub", std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  if (::access((dir / "sub").c_str(), W_OK) != 0) {
    EXPECT_NE(why_unwritable((dir / "sub" / "x.csv").string()).find("not writable"), std::string::npos);
    EXPECT_THROW(write_file_atomically((dir / "sub" / "x.csv").string(), "x"), Error);
  }
  std::filesystem::permissions(dir / "sub", std::filesystem::perms::owner_all);
  EXPECT_TRUE(std::filesystem::is_empty(dir / "sub"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace slope
