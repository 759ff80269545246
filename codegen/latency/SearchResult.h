//===- SearchResult.h - what a finished search left, checked ----*- C++ -*-===//
//
// `qdsl search --from-search DIR` reads an earlier search's search.json (the
// search program's layers, candidates and final probabilities) and its
// report.json (seed and settings). These check them against the space
// being derived, with no file access or printing, so that a fuzzer
// (test/fuzz/SearchResultFuzzer.cpp) can reach every path.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_LATENCY_SEARCHRESULT_H
#define QDSL_CODEGEN_LATENCY_SEARCHRESULT_H

#include "codegen/latency/ArchitectureDerivation.h"
#include "codegen/latency/Estimate.h"

#include "llvm/Support/JSON.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qdsl::cost {

/// The problems searchLayersOf and searchSettingsOf report.
enum class SearchResultProblem {
  None,
  NoLayers,         // search.json holds no "layers" array
  OtherSpace,       // its layers or candidates are not the space's
  NotADistribution, // a layer's probabilities
  NoSettings,       // report.json has no integer seed and settings.search_epochs
  BadSettings,      // ... out of their ranges
};

/// Each layer's probabilities and argmax from a search.json `result`:
/// its layers, their names and candidates must be `space`'s, in order, and
/// each layer's probabilities numbers in [0, 1] summing to 1 (±1e-3).
/// `problem` says which check failed; `layer` names the layer at fault.
SearchResultProblem searchLayersOf(const llvm::json::Value &result, const SpaceLatency &space,
                                   LayerProbabilities &probabilities,
                                   std::vector<int64_t> &argmax, std::string &layer);

/// The settings of a search's report.json `report`, with its seed: an
/// integer seed >= 0 and settings.search_epochs from 1 to `maxEpochs`.
SearchResultProblem searchSettingsOf(const llvm::json::Value &report, int64_t maxEpochs,
                                     llvm::json::Object &settings);

} // namespace qdsl::cost

#endif // QDSL_CODEGEN_LATENCY_SEARCHRESULT_H
