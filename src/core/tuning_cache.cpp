#include "slope/core/tuning_cache.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
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

// An exclusive advisory lock (flock) on `path`, created if missing, held for the object's
// life. Runs that share a cache file take it around their saves; the kernel drops it when a
// run dies, so a crash leaves no stale lock. Best effort: where the lock file cannot be made
// or the file system takes no locks, the save goes ahead unlocked, merged all the same.
class FileLock {
 public:
  explicit FileLock(const std::string& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    if (fd_ < 0) return;
    int locked = -1;
    do locked = ::flock(fd_, LOCK_EX);
    while (locked != 0 && errno == EINTR);
    if (locked != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the lock
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

// The entries of the file at `path` (none where there is no file), or nullopt with the reason
// in `why` where it is not a slope tuning cache of this format version.
std::optional<std::map<std::string, TuningEntry>> read_entries(const std::string& path, std::string& why) {
  std::map<std::string, TuningEntry> entries;
  std::ifstream in(path);
  if (!in) return entries;  // no cache yet
  std::ostringstream text;
  text << in.rdbuf();
  try {
    const auto j = nlohmann::json::parse(text.str());
    if (!j.is_object() || j.value("format", "") != kFormat) {
      why = "tuning cache " + path + " is not a slope tuning cache; ignoring it";
      return std::nullopt;
    }
    if (j.value("version", 0) != kVersion) {
      why = "tuning cache " + path + " has another format version; ignoring it";
      return std::nullopt;
    }
    for (const auto& [key, e] : j.at("entries").items()) {
      TuningEntry entry;
      entry.config_id = e.at("config_id").get<int>();
      entry.split_k = e.at("split_k").get<int>();
      entry.split_k_mode = e.at("split_k_mode").get<int>();
      entry.split_k_buffers = e.at("split_k_buffers").get<int>();
      entry.search_ms = e.value("search_ms", 0.0);
      entries[key] = entry;
    }
  } catch (const std::exception& e) {
    why = "tuning cache " + path + " is corrupt (" + e.what() + "); rebuilding it";
    return std::nullopt;
  }
  return entries;
}

}  // namespace

TuningCache::TuningCache(std::string path) : path_(std::move(path)) {
  std::string why;
  if (auto entries = read_entries(path_, why)) {
    entries_ = std::move(*entries);
  } else {
    warnings_.push_back(why);
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
  put_keys_.insert(key);
  dirty_ = true;
}

void TuningCache::save() {
  const std::filesystem::path target(path_);
  if (target.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(target.parent_path(), ec);
    if (ec) throw Error(ErrorKind::kIo, "cannot create directory " + target.parent_path().string());
  }
  // Read, merge and write under the lock: another run's save cannot land between this one's
  // read and its rename and be lost.
  const FileLock lock(path_ + ".lock");
  std::string unreadable;  // a file that is not a cache of ours is replaced, as on loading
  std::map<std::string, TuningEntry> merged = read_entries(path_, unreadable).value_or(decltype(merged){});
  for (const std::string& key : put_keys_) merged[key] = entries_.at(key);
  nlohmann::json j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["entries"] = nlohmann::json::object();
  for (const auto& [key, e] : merged)
    j["entries"][key] = {{"config_id", e.config_id},       {"split_k", e.split_k},
                         {"split_k_mode", e.split_k_mode}, {"split_k_buffers", e.split_k_buffers},
                         {"search_ms", e.search_ms}};
  write_file_atomically(path_, j.dump(1) + "\n");
  entries_ = std::move(merged);
  put_keys_.clear();
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
