// The one exception type of the library. Library code never prints or exits: it throws
// slope::Error, and the CLI maps the kind to an exit code (2: bad input, 1: runtime failure).
#pragma once

#include <stdexcept>
#include <string>

namespace slope {

enum class ErrorKind {
  kInvalidInput,  // the caller's arguments or files are wrong
  kUnsupported,   // valid, but this build or this hardware cannot do it
  kCuda,          // a CUDA, cuBLAS or cuSPARSELt call failed
  kIo,            // a file could not be read or written
  kInternal,      // a broken invariant inside slope
};

const char* to_string(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message);
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// Throws Error(ErrorKind::kInvalidInput, message) unless `condition` holds.
inline void require(bool condition, const std::string& message) {
  if (!condition) throw Error(ErrorKind::kInvalidInput, message);
}

}  // namespace slope
