//===- SearchResult.cpp - what a finished search left, checked ------------===//

#include "codegen/latency/SearchResult.h"

#include <algorithm>
#include <cmath>

namespace qdsl::cost {

SearchResultProblem searchLayersOf(const llvm::json::Value &result, const SpaceLatency &space,
                                   LayerProbabilities &probabilities,
                                   std::vector<int64_t> &argmax, std::string &layer) {
  probabilities.clear();
  argmax.clear();
  const llvm::json::Object *root = result.getAsObject();
  const llvm::json::Array *layers = root ? root->getArray("layers") : nullptr;
  if (!layers)
    return SearchResultProblem::NoLayers;
  // A search of another space must not be read as this one's: the layers
  // and their candidates themselves, not only how many.
  if (layers->size() != space.layers.size())
    return SearchResultProblem::OtherSpace;
  for (size_t l = 0; l < layers->size(); ++l) {
    const llvm::json::Object *o = (*layers)[l].getAsObject();
    const llvm::json::Array *candidates = o ? o->getArray("candidates") : nullptr;
    const llvm::json::Array *ps = o ? o->getArray("probabilities") : nullptr;
    const SpaceLatency::Layer &expected = space.layers[l];
    if (!o || o->getString("layer") != llvm::StringRef(expected.name) || !candidates || !ps ||
        candidates->size() != expected.candidates.size() || ps->size() != candidates->size())
      return SearchResultProblem::OtherSpace;
    for (size_t c = 0; c < candidates->size(); ++c)
      if ((*candidates)[c].getAsString() != llvm::StringRef(expected.candidates[c]))
        return SearchResultProblem::OtherSpace;
  }
  for (size_t l = 0; l < layers->size(); ++l) {
    const llvm::json::Object *o = (*layers)[l].getAsObject();
    std::vector<double> p;
    double sum = 0;
    bool numbers = true;
    for (const llvm::json::Value &x : *o->getArray("probabilities")) {
      std::optional<double> v = x.getAsNumber();
      numbers = numbers && v && *v >= 0 && *v <= 1;
      p.push_back(v.value_or(0));
      sum += p.back();
    }
    if (!numbers || p.empty() || !(std::abs(sum - 1) <= 1e-3)) {
      layer = space.layers[l].name;
      probabilities.clear();
      argmax.clear();
      return SearchResultProblem::NotADistribution;
    }
    argmax.push_back(std::max_element(p.begin(), p.end()) - p.begin());
    probabilities.push_back(std::move(p));
  }
  return SearchResultProblem::None;
}

SearchResultProblem searchSettingsOf(const llvm::json::Value &report, int64_t maxEpochs,
                                     llvm::json::Object &settings) {
  const llvm::json::Object *o = report.getAsObject();
  const llvm::json::Object *recorded = o ? o->getObject("settings") : nullptr;
  std::optional<int64_t> seed = o ? o->getInteger("seed") : std::nullopt;
  std::optional<int64_t> epochs = recorded ? recorded->getInteger("search_epochs") : std::nullopt;
  if (!seed || !epochs)
    return SearchResultProblem::NoSettings;
  if (*seed < 0 || *epochs < 1 || *epochs > maxEpochs)
    return SearchResultProblem::BadSettings;
  settings = *recorded;
  settings["seed"] = *seed;
  return SearchResultProblem::None;
}

} // namespace qdsl::cost
