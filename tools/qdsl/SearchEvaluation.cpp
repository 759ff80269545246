//===- SearchEvaluation.cpp - what qdsl search proves of its result -------===//

#include "SearchEvaluation.h"

#include "Compile.h"
#include "Options.h"
#include "Session.h"

#include "codegen/Targets.h"
#include "tools/driver/PredictTiming.h"
#include "tools/driver/Programs.h"
#include "tools/driver/Statistics.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <cmath>

using namespace llvm;

namespace qdsl::tool {

namespace {

std::vector<double> limitsOf(const SearchOutcome &out) {
  std::vector<double> limits;
  for (const cost::SearchConstraint &c : out.constraints)
    limits.push_back(c.limitMs);
  return limits;
}

json::Object latencies(const SearchOutcome &out, ArrayRef<int64_t> picks) {
  json::Object ms;
  for (auto [c, s] : llvm::zip(out.constraints, out.spaces))
    ms[c.device] = cost::additiveLatency(s, picks) * 1e3;
  return ms;
}

json::Array scoredJSON(const SearchOutcome &out, ArrayRef<SearchOutcome::Point> points) {
  json::Array array;
  for (const SearchOutcome::Point &p : points)
    array.push_back(json::Object{{"choices", choicesText(p.picks)},
                                 {"accuracy", p.accuracy},
                                 {"predicted_ms", latencies(out, p.picks)}});
  return array;
}

} // namespace

int retrainModel(const std::string &qdFile, const std::string &projectDirectory,
                 const std::string &trainDirectory, uint64_t seed, bool build,
                 const std::string &buildLog, json::Object &lastTrain) {
  if (build) {
    // The model file stands alone: none of the space's --model, -D or -I.
    int exitCode = 0;
    std::unique_ptr<Session> model = loadSession(qdFile, FrontEndOptions(), exitCode);
    mlir::OwningOpRef<mlir::ModuleOp> module = model ? model->generate() : nullptr;
    mlir::func::FuncOp fixed = module ? model->selectModel(*module) : nullptr;
    if (!fixed)
      return model ? (failed(model->finish(false)), 1) : 1;
    ProjectRequest request;
    request.target = codegen::lookupTarget(searchTarget);
    request.train = true;
    request.labelSmoothing = labelSmoothing;
    request.directory = projectDirectory;
    request.source = qdFile;
    request.announce = false;
    if (writeModelProject(*model, *module, fixed, request) ||
        driver::buildProject(projectDirectory, jobs, buildLog))
      return 1;
  }
  std::vector<std::string> args = {"--epochs", std::to_string(retrainEpochs), "--batch",
                                   std::to_string(searchBatch), "--seed", std::to_string(seed),
                                   "--clip", exactNumber(clipNorm),
                                   "--threads", std::to_string(profileThreads), "--out",
                                   trainDirectory, "--overwrite"};
  if (trainSubset > 0)
    args.insert(args.end(), {"--train-subset", std::to_string(trainSubset)});
  if (testSubset > 0)
    args.insert(args.end(), {"--test-subset", std::to_string(testSubset)});
  if (!dataDirectory.empty())
    args.insert(args.end(), {"--data", dataDirectory});
  args.insert(args.end(), {"--dataset", searchDataset});
  if (driver::runLaunched(launcher, projectDirectory + "/build/train", args))
    return 1;
  std::string error;
  if (!lastEpoch(trainDirectory + "/metrics.jsonl", lastTrain, error))
    return reportError(error);
  return 0;
}

SupernetScorer::SupernetScorer(std::string searchDirectory, std::string workDirectory,
                               const json::Object &settings)
    : searchDirectory(std::move(searchDirectory)), workDirectory(std::move(workDirectory)) {
  auto subset = settings.getInteger("train_subset");
  auto validation = settings.getInteger("validation_examples");
  if (!subset || !validation || !settings.getInteger("subset_seed")) {
    problem = "its search.json records no train_subset, validation_examples and subset_seed "
              "(a search made before supernet scoring): search again to score";
    return;
  }
  dataFlags = {"--train-subset", std::to_string(*subset), "--validation",
               std::to_string(*validation), "--subset-seed",
               std::to_string(*settings.getInteger("subset_seed")), "--batch",
               std::to_string(searchBatch), "--threads", std::to_string(profileThreads),
               "--score-examples", std::to_string(scoreExamples)};
  if (*subset == 0)
    dataFlags.erase(dataFlags.begin(), dataFlags.begin() + 2);
  if (auto dataset = settings.getString("dataset"))
    dataFlags.insert(dataFlags.end(), {"--dataset", dataset->str()});
  if (!dataDirectory.empty())
    dataFlags.insert(dataFlags.end(), {"--data", dataDirectory});
}

bool SupernetScorer::operator()(const std::vector<cost::Architecture> &architectures,
                                std::vector<double> &accuracies) {
  std::string call = workDirectory + "/" + std::to_string(++calls);
  std::string text;
  for (const cost::Architecture &a : architectures)
    text += choicesText(a) + "\n";
  if (std::error_code ec = sys::fs::create_directories(call))
    return reportError("cannot create '" + call + "': " + ec.message()), false;
  if (writeOutputFile(call + "/paths.txt", text))
    return false;
  std::vector<std::string> args = {"--score", call + "/paths.txt", "--weights",
                                   searchDirectory + "/search/supernet.safetensors", "--out",
                                   call};
  args.insert(args.end(), dataFlags.begin(), dataFlags.end());
  if (driver::runProgram(searchDirectory + "/supernet/build/search", args,
                         workDirectory + "/scoring.log"))
    return false;
  std::string error;
  json::Value scores = driver::readBoundedJSON(call + "/scores.json", "search --score", error);
  const json::Object *o = scores.getAsObject();
  const json::Array *list = o ? o->getArray("scores") : nullptr;
  if (!list || list->size() != architectures.size())
    return reportError("'" + call + "/scores.json' does not score the " +
                       Twine(architectures.size()) + " paths asked" +
                       (error.empty() ? "" : ": " + error)),
           false;
  lastExamples = o->getInteger("validation_examples").value_or(0);
  accuracies.clear();
  for (const json::Value &s : *list)
    accuracies.push_back(s.getAsObject() ? s.getAsObject()->getNumber("accuracy").value_or(-1)
                                         : -1);
  return true;
}

int rankWithSupernet(SupernetScorer &scorer, SearchOutcome &out) {
  cost::ArchitectureFilter filter;
  filter.limitsMs = limitsOf(out);
  std::vector<cost::Architecture> architectures = cost::sampleArchitectures(
      out.spaces, filter, rankSamples, out.settings.getInteger("seed").value_or(0) + 7,
      {out.picks});
  architectures.insert(architectures.begin(), out.picks);
  std::vector<double> accuracies;
  outs() << "scoring the derived and " << architectures.size() - 1
         << " random architectures within the limits with the supernet's weights\n";
  outs().flush();
  if (!scorer(architectures, accuracies))
    return 1;
  out.randomScored.clear();
  for (size_t i = 1; i < architectures.size(); ++i)
    out.randomScored.push_back({architectures[i], accuracies[i]});
  std::vector<double> random(accuracies.begin() + 1, accuracies.end());
  size_t above = llvm::count_if(random, [&](double a) { return a > accuracies[0]; });
  const double median = driver::median(random);
  auto [lowest, highest] = std::minmax_element(random.begin(), random.end());
  out.ranking = json::Object{
      {"validation_examples", scorer.examplesScored()},
      {"derived", json::Object{{"choices", choicesText(out.picks)}, {"accuracy", accuracies[0]}}},
      {"derived_rank", static_cast<int64_t>(above + 1)},
      {"random_count", static_cast<int64_t>(random.size())},
      {"random_median", median},
      {"random", scoredJSON(out, out.randomScored)}};
  if (!random.empty())
    outs() << formatv("supernet scores: derived {0:f2}%, {1} random within the limits "
                      "{2:f2}-{3:f2}% (median {4:f2}%): the derived ranks {5} of {6}\n",
                      100 * accuracies[0], random.size(), 100 * *lowest, 100 * *highest,
                      100 * median, above + 1, random.size() + 1);
  return 0;
}

int deriveByAccuracy(SupernetScorer &scorer, SearchOutcome &out) {
  cost::ArchitectureFilter filter;
  filter.limitsMs = limitsOf(out);
  cost::EvolutionOptions options;
  options.generations = evolveGenerations;
  options.seed = out.settings.getInteger("seed").value_or(0);
  bool exhaustive = false;
  outs() << "deriving by supernet accuracy within the limits (evolution: population "
         << options.population << ", " << options.generations << " generations)\n";
  outs().flush();
  std::vector<cost::ScoredArchitecture> scored =
      cost::evolveArchitectures(out.spaces, filter, options, std::ref(scorer), exhaustive);
  if (scored.empty())
    return reportError("no architecture within every limit could be scored");
  out.picks = scored.front().picks;
  out.evolvedScored.clear();
  for (const cost::ScoredArchitecture &s : scored)
    out.evolvedScored.push_back({s.picks, s.score});
  json::Object fronts;
  for (auto [c, space] : llvm::zip(out.constraints, out.spaces)) {
    std::vector<SearchOutcome::Point> front;
    for (size_t i : paretoFrontOf(space, out.evolvedScored))
      front.push_back(out.evolvedScored[i]);
    fronts[c.device] = scoredJSON(out, front);
  }
  out.pareto = json::Object{{"exhaustive", exhaustive},
                            {"scored", static_cast<int64_t>(scored.size())},
                            {"best", json::Object{{"choices", choicesText(out.picks)},
                                                  {"accuracy", scored.front().score}}},
                            {"front", std::move(fronts)},
                            {"evaluated", scoredJSON(out, out.evolvedScored)}};
  outs() << formatv("{0} {1} architectures within the limits; the best scores {2:f2}% "
                    "({3})\n",
                    exhaustive ? "scored all" : "evolution scored", scored.size(),
                    100 * scored.front().score, choicesText(out.picks));
  return 0;
}

int trainBaselines(Session &session, const std::string &directory, SupernetScorer &scorer,
                   SearchOutcome &out) {
  const uint64_t first = seed;
  // The derived model with the other seeds, in the project built already.
  for (unsigned s = 1; s < retrainSeeds; ++s) {
    outs() << "retraining the derived model with seed " << first + s << "\n";
    outs().flush();
    json::Object last;
    if (retrainModel(directory + "/derived.qd", directory + "/model",
                     directory + "/train-seed" + std::to_string(first + s), first + s,
                     /*build=*/false, "", last))
      return 1;
    out.searchedAccuracies.push_back(last.getNumber("test_top1").value_or(0));
  }
  cost::ArchitectureFilter filter;
  filter.limitsMs = limitsOf(out);
  for (const cost::SpaceLatency &s : out.spaces)
    filter.targetMs.push_back(cost::additiveLatency(s, out.picks) * 1e3);
  std::vector<cost::Architecture> drawn =
      cost::sampleArchitectures(out.spaces, filter, baselineCount, first + 11, {out.picks});
  if (drawn.size() < baselineCount)
    errs() << "qdsl: warning: only " << drawn.size() << " architectures other than the derived "
           << "one lie within 3% of its predicted latency on every device; --baselines asked "
           << baselineCount << "\n";
  out.baselineModels.clear();
  const std::string saved = session.options.choices;
  for (auto [i, picks] : llvm::enumerate(drawn)) {
    std::string name = "baseline-" + std::to_string(i + 1);
    std::string folder = directory + "/baselines/" + name;
    if (std::error_code ec = sys::fs::create_directories(folder))
      return reportError("cannot create '" + folder + "': " + ec.message());
    outs() << "baseline " << i + 1 << " of " << drawn.size() << ": " << choicesText(picks)
           << ", retraining\n";
    outs().flush();
    session.options.choices = choicesText(picks);
    mlir::FailureOr<std::string> model = deriveModel(
        session, sys::path::filename(inputFile).str(),
        {"A random baseline of qdsl search: within 3% of the derived model's predicted "
         "latency on every device."},
        folder);
    json::Object last;
    if (failed(model))
      return failed(session.finish(false)), 1;
    if (writeOutputFile(folder + "/model.qd", *model) ||
        retrainModel(folder + "/model.qd", folder + "/model", folder + "/train", first,
                     /*build=*/true, directory + "/logs/" + name + "-build.log", last))
      return 1;
    out.baselineModels.push_back({picks, last.getNumber("test_top1").value_or(0)});
  }
  session.options.choices = saved;
  std::vector<double> baseline;
  for (const SearchOutcome::Point &p : out.baselineModels)
    baseline.push_back(p.accuracy);
  driver::TTest test = driver::welchTest(out.searchedAccuracies, baseline);
  out.baselines = json::Object{
      {"band", 0.03},
      {"searched_test_accuracy", json::Array(out.searchedAccuracies)},
      {"searched_mean", driver::mean(out.searchedAccuracies)},
      {"searched_sd", driver::standardDeviation(out.searchedAccuracies)},
      {"baseline_mean", driver::mean(baseline)},
      {"baseline_sd", driver::standardDeviation(baseline)},
      {"models", scoredJSON(out, out.baselineModels)},
      {"test", json::Object{{"kind", test.kind}, {"t", test.t}, {"df", test.df}, {"p", test.p}}}};
  // Does the supernet rank these architectures as training them alone
  // does? Kendall's τ between its scores and their test top-1.
  if (scorer.unusable().empty() && !baseline.empty()) {
    std::vector<cost::Architecture> models = {out.picks};
    std::vector<double> retrained = {driver::mean(out.searchedAccuracies)}, scores;
    for (const SearchOutcome::Point &p : out.baselineModels) {
      models.push_back(p.picks);
      retrained.push_back(p.accuracy);
    }
    if (!scorer(models, scores))
      return 1;
    double tau = driver::kendallTau(scores, retrained);
    json::Array pairs;
    for (auto [picks, score, accuracy] : llvm::zip(models, scores, retrained))
      pairs.push_back(json::Object{{"choices", choicesText(picks)},
                                   {"supernet_accuracy", score},
                                   {"test_accuracy", accuracy}});
    out.baselines["supernet_vs_retrained"] =
        json::Object{{"kendall_tau", tau}, {"architectures", std::move(pairs)}};
    outs() << formatv("the supernet's scores against the retrained test top-1 of these {0} "
                      "architectures: Kendall tau {1:f2}\n",
                      models.size(), tau);
  }
  outs() << formatv("baselines: searched {0:f2}% ({1} seed{2}), {3} random at its latency "
                    "{4:f2} ± {5:f2}%; {6} t = {7:f2}, p = {8:f3}\n",
                    100 * driver::mean(out.searchedAccuracies), out.searchedAccuracies.size(),
                    out.searchedAccuracies.size() == 1 ? "" : "s", baseline.size(),
                    100 * driver::mean(baseline), 100 * driver::standardDeviation(baseline),
                    test.kind, test.t, test.p);
  return 0;
}

} // namespace qdsl::tool
