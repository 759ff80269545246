//===- SearchEvaluation.h - what qdsl search proves of its result -*- C++ -*-===//
//
// The steps of `qdsl search` that weigh the searched architecture against
// others (docs/NAS.md): retraining a model of the space from scratch, the
// trained supernet's scores of architectures (its ranking of random ones
// beside the derived one, and the derivation by supernet accuracy within
// new limits without training again, with the Pareto front), and random
// baselines of the same predicted latency retrained with the same recipe.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_TOOLS_QDSL_SEARCHEVALUATION_H
#define QDSL_TOOLS_QDSL_SEARCHEVALUATION_H

#include "SearchReport.h"

#include "codegen/latency/ArchitectureSampling.h"

#include <string>

namespace qdsl::tool {

class Session;

/// Builds the model file `qdFile` into `projectDirectory` and trains it from scratch with the search's recipe and `seed` into
/// `trainDirectory`; `lastTrain` gets its last epoch's record. With `build`
/// false the project is there already (another seed). The build's output
/// goes to `buildLog`. 0, or 1 having said why.
int retrainModel(const std::string &qdFile, const std::string &projectDirectory,
                 const std::string &trainDirectory, uint64_t seed, bool build,
                 const std::string &buildLog, llvm::json::Object &lastTrain);

/// Scores architectures with the trained supernet of the search in
/// `searchDirectory` (its search.json's data settings): each one's top-1 on
/// the search's validation examples with the weights it inherited. Each call
/// leaves its paths and scores in `workDirectory`.
class SupernetScorer {
public:
  SupernetScorer(std::string searchDirectory, std::string workDirectory,
                 const llvm::json::Object &searchSettings);
  /// Why the supernet cannot score (a search made before scoring existed),
  /// or "".
  const std::string &unusable() const { return problem; }
  bool operator()(const std::vector<cost::Architecture> &architectures,
                  std::vector<double> &accuracies);
  /// Validation examples behind the last scores.
  int64_t examplesScored() const { return lastExamples; }

private:
  std::string searchDirectory, workDirectory, problem;
  int64_t lastExamples = 0;
  std::vector<std::string> dataFlags;
  int calls = 0;
};

/// --rank-samples K: the supernet's scores of K random architectures within
/// the limits and of the derived one, into `out.ranking` (and a line).
int rankWithSupernet(SupernetScorer &scorer, SearchOutcome &out);

/// --derive accuracy: the architecture within every limit with the best
/// supernet score, found by evolution (or every one, where the space is
/// small enough); every architecture scored, and the Pareto front of score
/// against latency on each device, into `out.pareto`.
int deriveByAccuracy(SupernetScorer &scorer, SearchOutcome &out);

/// --baselines N, --retrain-seeds S: the derived model retrained with S
/// seeds, N random architectures within 3% of its predicted latency on
/// every device retrained once each, and Welch's test between them, into
/// `out.baselines`.
/// With a supernet that can score: Kendall's τ between its scores of these
/// architectures and their retrained test top-1.
int trainBaselines(Session &session, const std::string &directory, SupernetScorer &scorer,
                   SearchOutcome &out);

} // namespace qdsl::tool

#endif // QDSL_TOOLS_QDSL_SEARCHEVALUATION_H
