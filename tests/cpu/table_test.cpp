#include <gtest/gtest.h>

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

}  // namespace
}  // namespace slope
