#include "slope/core/library_release.hpp"

#include "slope/core/error.hpp"

namespace slope {

std::string LibraryRelease::str() const {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

void require_compatible_release(const std::string& library, const LibraryRelease& built,
                                const LibraryRelease& loaded) {
  if (built.major == loaded.major && built.minor == loaded.minor) return;
  throw Error(ErrorKind::kUnsupported, library + " " + loaded.str() + " is loaded, but slope was built against " +
                                           built.str() + ": rebuild against the loaded release, or load a " +
                                           std::to_string(built.major) + "." + std::to_string(built.minor) +
                                           ".x release");
}

}  // namespace slope
