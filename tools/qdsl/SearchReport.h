//===- SearchReport.h - what qdsl search reads and leaves -------*- C++ -*-===//

#ifndef QDSL_TOOLS_QDSL_SEARCHREPORT_H
#define QDSL_TOOLS_QDSL_SEARCHREPORT_H

#include "ProfileMeasurement.h"

#include "codegen/latency/ArchitectureDerivation.h"
#include "codegen/latency/LatencyLimits.h"

#include "llvm/Support/JSON.h"

#include <string>
#include <vector>

namespace qdsl::tool {

/// How far a model's latency measured on this machine may be from a
/// measured profile's prediction before the search says the limit meant
/// something else here: the ±10% a calibrated profile holds on new
/// architectures (docs/COST_MODEL.md) plus the machine's drift within
/// minutes.
inline constexpr double kProfileAccuracy = 0.15;

/// A finished qdsl search: the limits and the space's latency on each
/// limit's device, the search's own results, and the derived model.
struct SearchOutcome {
  std::string space, source;
  std::vector<cost::SearchConstraint> constraints;
  /// What each limit's figures rest on (calibrated here, published, ...).
  std::vector<LimitProfile> limitProfiles;
  std::vector<cost::SpaceLatency> spaces;
  /// The search's settings (with its seed) and its search.json.
  llvm::json::Object settings;
  const llvm::json::Object *result = nullptr;
  std::vector<int64_t> picks, argmax;
  cost::LayerHolds holds;
  int64_t params = 0, macs = 0;
  double measuredMs = 0, testAccuracy = 0;
  llvm::json::Object lastTrain;
  /// Test top-1 of the derived model, one per retraining seed (the first
  /// is testAccuracy).
  std::vector<double> searchedAccuracies;
  /// What the supernet's scores and the baselines found (SearchEvaluation.h),
  /// each empty when not asked for.
  llvm::json::Object ranking, pareto, baselines;
  /// The derived model's measured latency against its prediction and the
  /// limit, one per limit of this machine.
  llvm::json::Array latencyChecks;
  /// For the plots: architectures with an accuracy (the supernet's score,
  /// or a baseline's test top-1).
  struct Point {
    std::vector<int64_t> picks;
    double accuracy = 0;
  };
  std::vector<Point> randomScored, evolvedScored, baselineModels;
};

/// The Pareto front of `points` on `space`'s device: the indices of those
/// no other point beats in both predicted latency and accuracy, by latency.
std::vector<size_t> paretoFrontOf(const cost::SpaceLatency &space,
                                  const std::vector<SearchOutcome::Point> &points);

/// The settings of an earlier search (--from-search's report.json), with
/// its seed; 0, or 1 having said why.
int earlierSearchSettings(llvm::json::Object &settings);

/// The search's layers in `searchJSON` (search.json), checked against the
/// space's, and each layer's probabilities and argmax; 0, or 1 having said
/// why.
int readProbabilities(const std::string &searchJSON, const cost::SpaceLatency &space,
                      llvm::StringRef spaceName, llvm::json::Value &searchResult,
                      cost::LayerProbabilities &probabilities, std::vector<int64_t> &argmax);

/// The last "epoch" record of a training run's metrics.jsonl.
bool lastEpoch(const std::string &path, llvm::json::Object &out, std::string &error);

/// DIRECTORY/report.json (docs/NAS.md describes it); 0, or 1 having said
/// why.
int writeSearchReport(const std::string &directory, SearchOutcome &outcome);

/// DIRECTORY/probabilities.svg (each layer's candidates by epoch),
/// latency.svg (E[LAT] against each limit) and accuracy-latency.svg.
int writeSearchPlots(const std::string &directory, const SearchOutcome &outcome);

} // namespace qdsl::tool

#endif // QDSL_TOOLS_QDSL_SEARCHREPORT_H
