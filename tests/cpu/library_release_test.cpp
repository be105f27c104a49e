#include "slope/core/library_release.hpp"

#include <gtest/gtest.h>

#include "slope/core/error.hpp"

namespace slope {
namespace {

TEST(LibraryRelease, PrintsMajorMinorPatch) { EXPECT_EQ((LibraryRelease{0, 10, 2}).str(), "0.10.2"); }

TEST(LibraryRelease, AnotherPatchReleaseIsCompatible) {
  EXPECT_NO_THROW(require_compatible_release("cuSPARSELt", {0, 8, 1}, {0, 8, 0}));
  EXPECT_NO_THROW(require_compatible_release("cuSPARSELt", {0, 8, 0}, {0, 8, 0}));
}

TEST(LibraryRelease, AnotherMinorOrMajorReleaseIsRefusedNamingBoth) {
  for (const LibraryRelease loaded : {LibraryRelease{0, 8, 0}, LibraryRelease{1, 10, 0}}) {
    try {
      require_compatible_release("cuSPARSELt", {0, 10, 0}, loaded);
      FAIL() << "accepted " << loaded.str() << " for a build against 0.10.0";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
      const std::string message = e.what();
      EXPECT_NE(message.find("cuSPARSELt " + loaded.str() + " is loaded"), std::string::npos) << message;
      EXPECT_NE(message.find("built against 0.10.0"), std::string::npos) << message;
    }
  }
}

}  // namespace
}  // namespace slope
