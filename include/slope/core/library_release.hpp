// A library's release number, and the check that the release loaded at run time is one slope
// was compiled for. A build against one cuSPARSELt (CUSPARSELT_ROOT) can load another through
// LD_LIBRARY_PATH; patch releases keep the API's enums and structures, minor ones need not.
#pragma once

#include <string>

namespace slope {

struct LibraryRelease {
  int major = 0;
  int minor = 0;
  int patch = 0;
  std::string str() const;  // "0.8.1"
};

// Throws Error(kUnsupported), naming both releases, unless `loaded` has `built`'s major and
// minor number.
void require_compatible_release(const std::string& library, const LibraryRelease& built,
                                const LibraryRelease& loaded);

}  // namespace slope
