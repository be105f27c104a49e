// The persistent record of cuSPARSELt's algorithm search: one entry per (GPU, cuSPARSELt
// version, problem shape, dtype, layout). A search costs 30 ms to seconds per shape on the
// H200, so it runs once and later runs reuse the choice. CPU only: the file handling is
// tested without a GPU.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace slope {

struct TuningEntry {
  int config_id = 0;
  int split_k = 1;
  int split_k_mode = 0;
  int split_k_buffers = 1;
  double search_ms = 0.0;  // time of one product with this configuration, as the search saw it
  // The same kernel configuration (config id and split-K settings; the timing aside).
  bool same_kernel(const TuningEntry& o) const {
    return config_id == o.config_id && split_k == o.split_k && split_k_mode == o.split_k_mode &&
           split_k_buffers == o.split_k_buffers;
  }
};

class TuningCache {
 public:
  // Loads `path` if it exists. A file that is not valid JSON, not a slope tuning cache, or of
  // another format version is ignored: the cache starts empty, a warning is recorded, and
  // the next save() replaces the file. Never throws for a bad file.
  explicit TuningCache(std::string path);

  std::optional<TuningEntry> find(const std::string& key) const;
  void put(const std::string& key, const TuningEntry& entry);
  size_t size() const { return entries_.size(); }
  const std::map<std::string, TuningEntry>& entries() const { return entries_; }
  const std::string& path() const { return path_; }
  bool dirty() const { return dirty_; }

  // Writes the file atomically, creating its directory. Runs that share the file keep each
  // other's entries: under a lock on "<path>.lock" (best effort: where none can be taken, the
  // save goes ahead without it), save() reads the file again, puts this cache's own put()s
  // over it (they win for a key both wrote) and writes the result, which find() then also
  // sees. Throws kIo on failure.
  void save();

  // Why save() could not write a cache at `path` (it names a directory, or a missing
  // directory cannot be created under its nearest existing ancestor), or an empty string
  // where it could: lets a caller refuse the path before any search is paid for.
  static std::string why_unsavable(const std::string& path);

  // Problems met while loading (the library never prints; the caller reports them).
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  std::string path_;
  std::map<std::string, TuningEntry> entries_;
  std::set<std::string> put_keys_;  // put() since the last save(): what this cache adds to the file
  std::vector<std::string> warnings_;
  bool dirty_ = false;
};

// "$XDG_CACHE_HOME/slope/tuning.json", else "$HOME/.cache/slope/tuning.json", else
// "./slope-tuning.json". Called by the CLI only; library code takes the path explicitly.
std::string default_tuning_cache_path();

}  // namespace slope
