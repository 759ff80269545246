//===- SearchResults.cpp - what qdsl search reads back --------------------===//
//
// The files a search's programs wrote (search.json, an earlier search's
// report.json, the retraining's metrics.jsonl), read through the bounded
// JSON reader (tools/driver/PredictTiming.h) and checked before use.

#include "Options.h"
#include "SearchReport.h"
#include "Session.h"

#include "codegen/latency/DeviceProfile.h"
#include "runtime/shipped/Contract.h"
#include "runtime/shipped/TensorFiles.h"
#include "tools/driver/PredictTiming.h"


#include <cmath>

using namespace llvm;

namespace qdsl::tool {

/// The settings of an earlier search (--from-search), with its seed.
int earlierSearchSettings(json::Object &settings) {
  std::string error;
  json::Value earlier =
      driver::readBoundedJSON(fromSearch + "/report.json", "qdsl search", error);
  const json::Object *o = earlier.getAsObject();
  const json::Object *recorded = o ? o->getObject("settings") : nullptr;
  if (!recorded || !o->getInteger("seed") || !recorded->getInteger("search_epochs"))
    return reportError("--from-search '" + fromSearch + "': " +
                       (error.empty() ? "its report.json has no integer seed and "
                                        "settings.search_epochs (not a qdsl search report)"
                                      : error));
  // The ranges the search itself takes (runtime/shipped/Contract.h).
  if (*o->getInteger("seed") < 0 || *recorded->getInteger("search_epochs") < 1 ||
      *recorded->getInteger("search_epochs") > contract::kMaxEpochs)
    return reportError("--from-search '" + fromSearch + "': its report.json records seed " +
                       std::to_string(*o->getInteger("seed")) + " and search_epochs " +
                       std::to_string(*recorded->getInteger("search_epochs")) +
                       "; a search has a seed >= 0 and 1 to " +
                       std::to_string(contract::kMaxEpochs) + " epochs");
  settings = *recorded;
  settings["seed"] = *o->getInteger("seed");
  outs() << "deriving from the search in " << fromSearch << " (not searching again)\n";
  return 0;
}

/// The search's layers in `searchJSON`, checked against the space's, and
/// each layer's probabilities and argmax.
int readProbabilities(const std::string &searchJSON, const cost::SpaceLatency &space,
                      llvm::StringRef spaceName, json::Value &searchResult,
                      cost::LayerProbabilities &probabilities, std::vector<int64_t> &argmax) {
  std::string error;
  searchResult = driver::readBoundedJSON(searchJSON, "qdsl search", error);
  const json::Object *result = searchResult.getAsObject();
  const json::Array *layers = result ? result->getArray("layers") : nullptr;
  if (!layers)
    return reportError(error.empty() ? "'" + searchJSON + "' holds no layers" : error);
  // A search of another space (--from-search) must not be read as this one's.
  bool sameLayers = layers->size() == space.layers.size();
  for (size_t l = 0; sameLayers && l < layers->size(); ++l) {
    const json::Object *o = (*layers)[l].getAsObject();
    const json::Array *candidates = o ? o->getArray("candidates") : nullptr;
    const json::Array *ps = o ? o->getArray("probabilities") : nullptr;
    sameLayers = o && o->getString("layer") == space.layers[l].name && candidates && ps &&
                 candidates->size() == space.layers[l].candidates.size() &&
                 ps->size() == candidates->size();
    // The candidates themselves, not only how many.
    for (size_t c = 0; sameLayers && c < candidates->size(); ++c)
      sameLayers = (*candidates)[c].getAsString() == StringRef(space.layers[l].candidates[c]);
  }
  if (!sameLayers)
    return reportError("'" + searchJSON + "' is not a search of '" + spaceName.str() +
                       "': its layers or candidates differ from the space's");
  for (const json::Value &l : *layers) {
    const json::Object *o = l.getAsObject();
    std::vector<double> p;
    double sum = 0;
    bool numbers = true;
    for (const json::Value &x : *o->getArray("probabilities")) {
      std::optional<double> v = x.getAsNumber();
      numbers = numbers && v && *v >= 0 && *v <= 1;
      p.push_back(v.value_or(0));
      sum += p.back();
    }
    if (!numbers || std::abs(sum - 1) > 1e-3)
      return reportError("'" + searchJSON + "': the probabilities of layer '" +
                         o->getString("layer").value_or("").str() +
                         "' are not a distribution (numbers in [0, 1] summing to 1)");
    argmax.push_back(std::max_element(p.begin(), p.end()) - p.begin());
    probabilities.push_back(std::move(p));
  }
  return 0;
}

bool lastEpoch(const std::string &path, json::Object &out, std::string &error) {
  std::string text;
  if (!rt::readFileBytes(path, text, error, driver::kMaxJSONBytes))
    return false;
  SmallVector<StringRef> lines;
  StringRef(text).split(lines, '\n', -1, false);
  for (StringRef line : llvm::reverse(lines)) {
    if (cost::nestsDeeperThan(line.str(), driver::kMaxJSONDepth))
      continue;
    Expected<json::Value> v = json::parse(line);
    if (!v) {
      consumeError(v.takeError());
      continue;
    }
    if (json::Object *o = v->getAsObject(); o && o->getString("event") == "epoch") {
      out = std::move(*o);
      return true;
    }
  }
  error = "'" + path + "' has no epoch record";
  return false;
}

} // namespace qdsl::tool
