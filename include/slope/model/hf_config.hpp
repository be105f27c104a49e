// Reading a HuggingFace config.json into a ModelConfig (OPT, LLaMA, Mistral, GPT-2, BERT).
#pragma once

#include <string>

#include "slope/model/model_config.hpp"

namespace slope {

// Parses config.json text. `source` names the file in error messages. Throws kInvalidInput
// for malformed JSON, an unknown model_type, or a missing or non-positive required field.
ModelConfig parse_hf_config(const std::string& json_text, const std::string& source);
// Reads and parses a file; throws kInvalidInput if it cannot be read.
ModelConfig load_hf_config(const std::string& path);

}  // namespace slope
