// Minimal CSV reading for the project's own simple files (no quoting, '#' comments).
#pragma once

#include <string>
#include <vector>

namespace slope {

// Splits `text` into rows of comma-separated fields; skips blank lines and lines that start
// with '#'. Fields are trimmed of surrounding whitespace.
std::vector<std::vector<std::string>> parse_simple_csv(const std::string& text);

}  // namespace slope
