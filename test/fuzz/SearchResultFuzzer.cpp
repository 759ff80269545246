//===- SearchResultFuzzer.cpp - libFuzzer target for search results -------===//
//
// Feeds arbitrary bytes, as `qdsl search --from-search` reads them, to the
// checks of an earlier search's search.json and report.json
// (codegen/latency/SearchResult.h): the same bounded nesting and JSON
// parse, then the layers against a fixed space and the settings. They must
// refuse what is not a search of that space without crashing; what they
// accept is a distribution per layer with its argmax in range.
//
//===----------------------------------------------------------------------===//

#include "codegen/latency/DeviceProfile.h"
#include "codegen/latency/SearchResult.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  // As tools/driver's readBoundedJSON: nesting bounded before parsing.
  if (qdsl::cost::nestsDeeperThan(text, 32))
    return 0;
  llvm::Expected<llvm::json::Value> parsed = llvm::json::parse(text);
  if (!parsed) {
    llvm::consumeError(parsed.takeError());
    return 0;
  }
  qdsl::cost::SpaceLatency space;
  space.layers = {{"stages.0.0", {"quadra(k = 3)", "quadra(k = 5)"}, {1e-4, 2e-4}},
                  {"stages.1.0", {"quadra(k = 3)", "identity", "skip"}, {1e-4, 0, 5e-5}}};
  qdsl::cost::LayerProbabilities probabilities;
  std::vector<int64_t> argmax;
  std::string layer;
  if (qdsl::cost::searchLayersOf(*parsed, space, probabilities, argmax, layer) ==
      qdsl::cost::SearchResultProblem::None) {
    if (probabilities.size() != space.layers.size() || argmax.size() != space.layers.size())
      __builtin_trap();
    for (size_t l = 0; l < probabilities.size(); ++l) {
      double sum = 0;
      for (double p : probabilities[l])
        sum += p;
      if (!(std::abs(sum - 1) <= 1e-3) || argmax[l] < 0 ||
          argmax[l] >= static_cast<int64_t>(probabilities[l].size()))
        __builtin_trap();
    }
  }
  llvm::json::Object settings;
  if (qdsl::cost::searchSettingsOf(*parsed, 100000, settings) ==
      qdsl::cost::SearchResultProblem::None) {
    std::optional<int64_t> seed = settings.getInteger("seed");
    if (!seed || *seed < 0)
      __builtin_trap();
  }
  return 0;
}
