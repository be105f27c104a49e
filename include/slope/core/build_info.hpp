// What built this binary: recorded in every result file so a number can be traced back.
#pragma once

namespace slope {

const char* build_commit();  // git commit hash, "-dirty" appended for uncommitted changes
const char* build_type();    // CMake build type

}  // namespace slope
