//===- SearchReport.cpp - what qdsl search leaves in its directory --------===//

#include "SearchReport.h"

#include "Options.h"
#include "Session.h"
#include "SvgPlot.h"

#include "codegen/latency/ArchitectureSampling.h"

#include "llvm/Support/FormatVariadic.h"

using namespace llvm;

namespace qdsl::tool {

std::vector<size_t> paretoFrontOf(const cost::SpaceLatency &space,
                                  const std::vector<SearchOutcome::Point> &points) {
  std::vector<double> ms, accuracy;
  for (const SearchOutcome::Point &p : points) {
    ms.push_back(cost::additiveLatency(space, p.picks) * 1e3);
    accuracy.push_back(p.accuracy);
  }
  return cost::paretoFront(ms, accuracy);
}

int writeSearchReport(const std::string &directory, SearchOutcome &outcome) {
  std::vector<std::string> devices;
  json::Array devicesJSON;
  for (auto [c, s, basis] :
       llvm::zip(outcome.constraints, outcome.spaces, outcome.limitProfiles)) {
    devices.push_back(c.device);
    double predicted = cost::additiveLatency(s, outcome.picks) * 1e3;
    json::Object d{{"device", c.device},
                   {"limit_ms", c.limitMs},
                   {"profile", c.profile.file},
                   {"calibrated", c.profile.calibrated},
                   {"predicted_from", basis.basis},
                   {"predicted_ms", predicted},
                   {"within_limit", predicted <= c.limitMs}};
    if (!basis.calibratedFrom.empty())
      d["calibrated_from"] = basis.calibratedFrom;
    if (basis.basis == "measured on this machine" || basis.basis == "measured on another machine") {
      d["measured_ms"] = outcome.measuredMs;
      d["measured_over_predicted"] = outcome.measuredMs / predicted;
    }
    devicesJSON.push_back(std::move(d));
  }
  json::Object settings = outcome.settings;
  settings.erase("seed");
  settings["retrain_epochs"] = static_cast<int64_t>(retrainEpochs);
  settings["batch"] = static_cast<int64_t>(searchBatch);
  settings["threads"] = static_cast<int64_t>(profileThreads);
  settings["train_subset"] = static_cast<int64_t>(trainSubset);
  settings["derive"] = deriveRule.getValue();
  settings["rank_samples"] = static_cast<int64_t>(rankSamples);
  settings["score_examples"] = static_cast<int64_t>(scoreExamples);
  settings["baselines"] = static_cast<int64_t>(baselineCount);
  settings["retrain_seeds"] = static_cast<int64_t>(retrainSeeds);
  if (!fromSearch.empty())
    settings["from_search"] = fromSearch.getValue();
  const json::Object &result = *outcome.result;
  json::Object report{
      {"format", "qdsl-search-report"},
      {"version", 1},
      {"space", outcome.space},
      {"source", outcome.source},
      {"seed", outcome.settings.getInteger("seed").value_or(0)},
      {"settings", std::move(settings)},
      {"devices", std::move(devicesJSON)},
      {"epochs", result.get("epochs") ? *result.get("epochs") : json::Value(json::Array())},
      {"search_peak_memory_mb", result.getNumber("peak_memory_mb").value_or(0)},
      {"derived",
       json::Object{{"choices", choicesText(outcome.picks)},
                    {"argmax_choices", choicesText(outcome.argmax)},
                    {"layers", cost::layerHoldsToJSON(outcome.holds, outcome.spaces.front(),
                                                      devices)},
                    {"params", outcome.params},
                    {"macs", outcome.macs},
                    {"measured_ms", outcome.measuredMs},
                    {"test_accuracy", outcome.testAccuracy},
                    {"test_accuracy_by_seed", json::Array(outcome.searchedAccuracies)},
                    {"train", std::move(outcome.lastTrain)}}}};
  if (!outcome.ranking.empty())
    report["supernet_ranking"] = std::move(outcome.ranking);
  if (!outcome.pareto.empty())
    report["pareto"] = std::move(outcome.pareto);
  if (!outcome.baselines.empty())
    report["baselines"] = std::move(outcome.baselines);
  if (!outcome.latencyChecks.empty())
    report["latency_check"] = json::Array(outcome.latencyChecks);
  return writeOutputFile(directory + "/report.json",
                         formatv("{0:2}", json::Value(std::move(report))).str() + "\n");
}

namespace {

/// Each layer's candidates' probabilities by epoch.
std::vector<Plot> probabilityPlots(const json::Array &layers, const json::Array *epochs) {
  std::vector<Plot> perLayer;
  for (const json::Value &layerValue : layers) {
    const json::Object *layer = layerValue.getAsObject();
    std::string name = layer ? layer->getString("layer").value_or("").str() : "";
    Plot plot;
    plot.title = name;
    plot.xLabel = "epoch";
    plot.yLabel = "probability";
    plot.yMin = 0;
    plot.yMax = 1;
    const json::Array *candidates = layer ? layer->getArray("candidates") : nullptr;
    for (size_t c = 0; candidates && c < candidates->size(); ++c) {
      PlotSeries s;
      s.label = (*candidates)[c].getAsString().value_or("").str();
      for (const json::Value &e : epochs ? *epochs : json::Array()) {
        const json::Object *o = e.getAsObject();
        const json::Object *ps = o ? o->getObject("probabilities") : nullptr;
        const json::Array *p = ps ? ps->getArray(name) : nullptr;
        if (p && c < p->size())
          s.points.push_back({o->getNumber("epoch").value_or(0), (*p)[c].getAsNumber().value_or(0)});
      }
      plot.series.push_back(std::move(s));
    }
    perLayer.push_back(std::move(plot));
  }
  return perLayer;
}

/// E[LAT] against each limit, by epoch.
Plot latencyPlot(const SearchOutcome &outcome, const json::Array *epochs) {
  Plot plot;
  plot.title = "expected latency against the limit";
  plot.xLabel = "epoch";
  plot.yLabel = "E[LAT] / limit";
  for (const cost::SearchConstraint &c : outcome.constraints) {
    PlotSeries s;
    s.label = c.device;
    for (const json::Value &e : epochs ? *epochs : json::Array())
      if (const json::Object *o = e.getAsObject())
        if (const json::Object *lat = o->getObject("expected_latency_ms"))
          if (const json::Object *d = lat->getObject(c.device))
            s.points.push_back({o->getNumber("epoch").value_or(0),
                                d->getNumber("expected").value_or(0) / c.limitMs});
    plot.series.push_back(std::move(s));
  }
  PlotSeries limitLine;
  limitLine.label = "limit";
  limitLine.dashed = true;
  limitLine.points = {
      {1, 1.0},
      {double(outcome.settings.getInteger("search_epochs").value_or(searchEpochs)), 1.0}};
  plot.series.push_back(limitLine);
  return plot;
}

} // namespace

namespace {

PlotSeries points(const std::string &label, const cost::SpaceLatency &space,
                  const std::vector<SearchOutcome::Point> &scored) {
  PlotSeries s;
  s.label = label;
  s.line = false;
  for (const SearchOutcome::Point &p : scored) {
    s.points.push_back({cost::additiveLatency(space, p.picks) * 1e3, 100 * p.accuracy});
    s.pointLabels.push_back("");
  }
  return s;
}

/// Per device: the supernet's scores against predicted latency, the
/// evolution's and the random draws', and the Pareto front.
std::vector<Plot> paretoPlots(const SearchOutcome &outcome) {
  std::vector<Plot> plots;
  for (auto [c, space] : llvm::zip(outcome.constraints, outcome.spaces)) {
    Plot plot;
    plot.title = c.device;
    plot.xLabel = "predicted latency (ms)";
    plot.yLabel = "supernet top-1 (%)";
    if (!outcome.evolvedScored.empty())
      plot.series.push_back(points("scored by the evolution", space, outcome.evolvedScored));
    if (!outcome.randomScored.empty())
      plot.series.push_back(points("random within the limits", space, outcome.randomScored));
    PlotSeries front;
    front.label = "Pareto front";
    for (size_t i : paretoFrontOf(space, outcome.evolvedScored))
      front.points.push_back({cost::additiveLatency(space, outcome.evolvedScored[i].picks) * 1e3,
                              100 * outcome.evolvedScored[i].accuracy});
    if (!front.points.empty())
      plot.series.push_back(front);
    PlotSeries limit;
    limit.label = "limit";
    limit.dashed = true;
    double low = 100, high = 0;
    for (const PlotSeries &s : plot.series)
      for (auto [x, y] : s.points) {
        low = std::min(low, y);
        high = std::max(high, y);
      }
    limit.points = {{c.limitMs, low}, {c.limitMs, high}};
    plot.series.push_back(limit);
    plots.push_back(std::move(plot));
  }
  return plots;
}

} // namespace

int writeSearchPlots(const std::string &directory, const SearchOutcome &outcome) {
  const json::Array *epochs = outcome.result->getArray("epochs");
  // Test top-1 against the first device's predicted latency: the searched
  // model (each seed) and the random baselines of its latency.
  const cost::SpaceLatency &first = outcome.spaces.front();
  Plot accuracyPlot;
  accuracyPlot.title = "retrained from scratch";
  accuracyPlot.xLabel = "predicted latency on " + outcome.constraints.front().device + " (ms)";
  accuracyPlot.yLabel = "test top-1 (%)";
  PlotSeries searched;
  searched.label = "searched";
  searched.line = false;
  for (double accuracy : outcome.searchedAccuracies) {
    searched.points.push_back({cost::additiveLatency(first, outcome.picks) * 1e3, 100 * accuracy});
    searched.pointLabels.push_back(searched.pointLabels.empty() ? choicesText(outcome.picks) : "");
  }
  accuracyPlot.series.push_back(searched);
  if (!outcome.baselineModels.empty())
    accuracyPlot.series.push_back(points("random, same latency", first, outcome.baselineModels));
  if (writeOutputFile(directory + "/probabilities.svg",
                      renderSvgGrid(probabilityPlots(*outcome.result->getArray("layers"), epochs),
                                    3)) ||
      writeOutputFile(directory + "/latency.svg", renderSvg(latencyPlot(outcome, epochs))) ||
      writeOutputFile(directory + "/accuracy-latency.svg", renderSvg(accuracyPlot)))
    return 1;
  if ((!outcome.evolvedScored.empty() || !outcome.randomScored.empty()) &&
      writeOutputFile(directory + "/pareto.svg",
                      renderSvgGrid(paretoPlots(outcome), std::min<int>(3, outcome.spaces.size()))))
    return 1;
  return 0;
}

} // namespace qdsl::tool
