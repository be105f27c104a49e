#include "slope/core/tuning_cache.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "slope/core/error.hpp"
#include "slope/core/table.hpp"

namespace slope {
namespace {

constexpr const char* kFormat = "slope-tuning-cache";
constexpr int kVersion = 1;

}  // namespace

TuningCache::TuningCache(std::string path) : path_(std::move(path)) {
  std::ifstream in(path_);
  if (!in) return;  // no cache yet
  std::ostringstream text;
  text << in.rdbuf();
  try {
    const auto j = nlohmann::json::parse(text.str());
    if (!j.is_object() || j.value("format", "") != kFormat) {
      warnings_.push_back("tuning cache " + path_ + " is not a slope tuning cache; ignoring it");
      dirty_ = true;
      return;
    }
    if (j.value("version", 0) != kVersion) {
      warnings_.push_back("tuning cache " + path_ + " has another format version; ignoring it");
      dirty_ = true;
      return;
    }
    for (const auto& [key, e] : j.at("entries").items()) {
      TuningEntry entry;
      entry.config_id = e.at("config_id").get<int>();
      entry.split_k = e.at("split_k").get<int>();
      entry.split_k_mode = e.at("split_k_mode").get<int>();
      entry.split_k_buffers = e.at("split_k_buffers").get<int>();
      entry.search_ms = e.value("search_ms", 0.0);
      entries_[key] = entry;
    }
  } catch (const std::exception& e) {
    entries_.clear();
    warnings_.push_back("tuning cache " + path_ + " is corrupt (" + e.what() + "); rebuilding it");
    dirty_ = true;
  }
}

std::optional<TuningEntry> TuningCache::find(const std::string& key) const {
  const auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

void TuningCache::put(const std::string& key, const TuningEntry& entry) {
  entries_[key] = entry;
  dirty_ = true;
}

void TuningCache::save() {
  nlohmann::json j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["entries"] = nlohmann::json::object();
  for (const auto& [key, e] : entries_)
    j["entries"][key] = {{"config_id", e.config_id},       {"split_k", e.split_k},
                         {"split_k_mode", e.split_k_mode}, {"split_k_buffers", e.split_k_buffers},
                         {"search_ms", e.search_ms}};
  const std::filesystem::path target(path_);
  if (target.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(target.parent_path(), ec);
    if (ec) throw Error(ErrorKind::kIo, "cannot create directory " + target.parent_path().string());
  }
  write_file_atomically(path_, j.dump(1) + "\n");
  dirty_ = false;
}

std::string TuningCache::why_unsavable(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  std::error_code ec;
  if (path.empty() || fs::is_directory(target, ec) || !target.has_parent_path() ||
      fs::is_directory(target.parent_path(), ec))
    return why_unwritable(path);
  // save() creates the missing directories: the nearest one that exists must take them.
  fs::path ancestor = target.parent_path();
  while (ancestor.has_parent_path() && ancestor != ancestor.parent_path() && !fs::exists(ancestor, ec))
    ancestor = ancestor.parent_path();
  if (!fs::exists(ancestor, ec)) ancestor = ".";  // a relative path whose first part is missing
  if (!fs::is_directory(ancestor, ec))
    return "cannot create the directory of " + path + ": " + ancestor.string() + " is not a directory";
  if (::access(ancestor.c_str(), W_OK) != 0)
    return "cannot create the directory of " + path + ": " + ancestor.string() + " is not writable";
  return {};
}

std::string default_tuning_cache_path() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return std::string(xdg) + "/slope/tuning.json";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.cache/slope/tuning.json";
  return "slope-tuning.json";
}

}  // namespace slope
