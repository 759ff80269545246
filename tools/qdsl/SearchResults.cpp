//===- SearchResults.cpp - what qdsl search reads back --------------------===//
//
// The files a search's programs wrote (search.json, an earlier search's
// report.json, the retraining's metrics.jsonl), read through the bounded
// JSON reader (tools/driver/PredictTiming.h) and checked before use.

#include "Options.h"
#include "SearchReport.h"
#include "Session.h"

#include "codegen/latency/DeviceProfile.h"
#include "codegen/latency/SearchResult.h"
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
  if (!error.empty())
    return reportError("--from-search '" + fromSearch + "': " + error);
  switch (cost::searchSettingsOf(earlier, contract::kMaxEpochs, settings)) {
  case cost::SearchResultProblem::None:
    break;
  case cost::SearchResultProblem::BadSettings: {
    const json::Object &o = *earlier.getAsObject();
    return reportError("--from-search '" + fromSearch + "': its report.json records seed " +
                       std::to_string(*o.getInteger("seed")) + " and search_epochs " +
                       std::to_string(*o.getObject("settings")->getInteger("search_epochs")) +
                       "; a search has a seed >= 0 and 1 to " +
                       std::to_string(contract::kMaxEpochs) + " epochs");
  }
  default:
    return reportError("--from-search '" + fromSearch + "': its report.json has no integer "
                       "seed and settings.search_epochs (not a qdsl search report)");
  }
  outs() << "deriving from the search in " << fromSearch << " (not searching again)\n";
  return 0;
}

/// The search's layers in `searchJSON`, checked against the space's, and
/// each layer's probabilities and argmax.
int readProbabilities(const std::string &searchJSON, const cost::SpaceLatency &space,
                      llvm::StringRef spaceName, json::Value &searchResult,
                      cost::LayerProbabilities &probabilities, std::vector<int64_t> &argmax) {
  std::string error, layer;
  searchResult = driver::readBoundedJSON(searchJSON, "qdsl search", error);
  if (!error.empty())
    return reportError(error);
  switch (cost::searchLayersOf(searchResult, space, probabilities, argmax, layer)) {
  case cost::SearchResultProblem::None:
    return 0;
  case cost::SearchResultProblem::OtherSpace:
    return reportError("'" + searchJSON + "' is not a search of '" + spaceName.str() +
                       "': its layers or candidates differ from the space's");
  case cost::SearchResultProblem::NotADistribution:
    return reportError("'" + searchJSON + "': the probabilities of layer '" + layer +
                       "' are not a distribution (numbers in [0, 1] summing to 1)");
  default:
    return reportError("'" + searchJSON + "' holds no layers");
  }
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
