#pragma once

#include <string_view>

namespace simulator {

/// tests/data/understanding_corpus.jsonl as it was when the program was built (embedded by
/// CMake, so the simulator needs no source tree at run time). Format: tests/data/README.md.
std::string_view understanding_corpus_jsonl();

/// tests/data/understanding_roster.csv, the roster the corpus refers to, embedded the same way.
std::string_view understanding_roster_csv();

}  // namespace simulator
