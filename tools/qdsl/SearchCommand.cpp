//===- SearchCommand.cpp - qdsl search ------------------------------------===//
//
// `qdsl search SPACE -o DIR` runs the whole search (docs/NAS.md): the
// supernet project (qdsl compile --search) and its `search` program, the
// architecture derived from the search's probabilities within every
// latency limit (codegen/latency/ArchitectureDerivation.h), its retraining
// by the generated trainer, its latency measured on this machine
// (tools/driver/PredictTiming.h), and the report and plots
// (SearchReport.h).

#include "Compile.h"
#include "Options.h"
#include "ProfileMeasurement.h"
#include "Search.h"
#include "SearchEvaluation.h"
#include "SearchReport.h"
#include "Session.h"

#include "codegen/Targets.h"
#include "codegen/latency/DeviceProfile.h"
#include "dialect/QuadraOps.h"
#include "passes/analysis/ModelStatistics.h"
#include "runtime/shipped/Contract.h"
#include "tools/driver/PredictTiming.h"
#include "tools/driver/Programs.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"

#include <thread>

using namespace llvm;

namespace qdsl::tool {

namespace {

/// The file that marks a folder as qdsl search's own.
constexpr const char *kSearchMarker = ".qdsl-search";

/// What qdsl search refuses before anything is compiled: flags that the
/// programs it runs check too, but only after minutes of building.
int checkSearchFlags() {
  if (outputFile.empty() || outputFile == "-")
    return reportError("a search needs a directory: add -o DIR");
  const codegen::Target *target = codegen::lookupTarget(searchTarget);
  if (!target || !target->runnableHere)
    return reportError("--target must be a target this machine runs (x86-64-avx2, "
                       "x86-64-avx512), got '" + searchTarget + "'");
  if (std::string why = codegen::whyNotTimedHere(*target); !why.empty())
    return reportError(why);
  if (!(archLearningRate > 0 && archLearningRate <= 1))
    return reportError("--arch-lr must be in (0, 1], got " + shownNumber(archLearningRate));
  if (archEvery < 1)
    return reportError("--arch-every must be at least 1");
  if (deriveRule != "argmax" && deriveRule != "fill" && deriveRule != "accuracy")
    return reportError("--derive must be argmax, fill or accuracy, got '" + deriveRule + "'");
  if (retrainSeeds < 1 || retrainSeeds > 100)
    return reportError("--retrain-seeds must be from 1 to 100, got " + Twine(retrainSeeds.getValue()));
  if (scoreExamples < 1)
    return reportError("--score-examples must be at least 1");
  if (evolveGenerations.getNumOccurrences() && deriveRule != "accuracy")
    return reportError("--evolve-generations goes with --derive accuracy");
  if (evolveGenerations > 1000)
    return reportError("--evolve-generations must be at most 1000, got " +
                       Twine(evolveGenerations.getValue()));
  if (rankSamples > 100000)
    return reportError("--rank-samples must be at most 100000, got " +
                       Twine(rankSamples.getValue()));
  if (baselineCount > 1000)
    return reportError("--baselines must be at most 1000, got " + Twine(baselineCount.getValue()));
  if (gateGradients != "pair" && gateGradients != "all")
    return reportError("--gates must be pair or all, got '" + gateGradients + "'");
  if (!(layerScaleInit >= 0 && layerScaleInit <= 10))
    return reportError("--layer-scale-init must be from 0 (as declared) to 10, got " +
                       shownNumber(layerScaleInit));
  if (!(clipNorm >= 0 && clipNorm <= 1e30))
    return reportError("--clip must be from 0 (off) to 1e30, got " + shownNumber(clipNorm));
  // What the programs check too, but only after minutes of building.
  if (!(labelSmoothing >= 0 && labelSmoothing < 1))
    return reportError("--label-smoothing must be in [0, 1), got " + shownNumber(labelSmoothing));
  if (latencyLoss != "additive" && latencyLoss != "multiplicative")
    return reportError("--latency-loss must be additive or multiplicative, got '" +
                       latencyLoss + "'");
  if (searchDataset != "fashion-mnist" && searchDataset != "folder")
    return reportError("--dataset must be fashion-mnist or folder, got '" + searchDataset + "'");
  if (searchDataset == "folder" && dataDirectory.empty())
    return reportError("--dataset folder needs --data DIR (DIR/train and DIR/val, one subfolder "
                       "of images per class)");
  if (!dataDirectory.empty() && !sys::fs::is_directory(dataDirectory))
    return reportError("--data '" + dataDirectory + "' is not a directory (expected " +
                       (searchDataset == "folder" ? "train/ and val/ folders of images"
                                                  : "Fashion-MNIST's four IDX files") +
                       " in it)");
  if (unsigned cpus = std::thread::hardware_concurrency();
      profileThreads < 1 || (cpus && profileThreads > cpus))
    return reportError("--threads must be from 1 to the " + Twine(cpus) +
                       " CPUs of this machine (they are pinned one per CPU), got " +
                       Twine(profileThreads.getValue()));
  if (searchResume && searchOverwrite)
    return reportError("--resume continues the search in -o, --overwrite replaces it: give one");
  if (launcher.getNumOccurrences()) {
    StringRef first = StringRef(launcher).trim().split(' ').first;
    if (first.empty())
      return reportError("--launcher is empty; expected a command such as \"mpirun -np 4\"");
    if (!sys::findProgramByName(first))
      return reportError("--launcher '" + launcher + "': cannot find '" + first.str() +
                         "' on PATH");
  }
  if (!fromSearch.empty() && !sys::fs::exists(fromSearch + "/search/search.json"))
    return reportError("--from-search '" + fromSearch +
                       "' holds no search (search/search.json): give the -o directory of an "
                       "earlier qdsl search");
  // With --from-search nothing is searched: a flag of the search would be
  // ignored, so it is refused.
  if (!fromSearch.empty())
    for (const cl::Option *flag :
         std::initializer_list<const cl::Option *>{&searchEpochs, &warmupEpochs, &archLearningRate,
                                                   &archEvery, &latencyLoss, &validation,
                                                   &gateGradients, &searchResume, &latencyOnly,
                                                   &layerScaleInit})
      if (flag->getNumOccurrences())
        return reportError("--" + flag->ArgStr + " belongs to the search, which --from-search "
                           "does not run; drop it (the earlier search's settings are reported)");
  using namespace contract;
  for (auto [flag, value, low, high] :
       {std::tuple<const char *, long long, long long, long long>{"--epochs", searchEpochs, 1,
                                                                  kMaxEpochs},
        {"--retrain-epochs", retrainEpochs, 1, kMaxEpochs},
        {"--batch", searchBatch, 1, kMaxBatch},
        {"--validation", validation, 1, kMaxExamples}})
    if (value < low || value > high)
      return reportError(Twine(flag) + " must be from " + Twine(low) + " to " + Twine(high) +
                         ", got " + Twine(value));
  if (fromSearch.empty() && trainSubset > 0 && trainSubset <= validation)
    return reportError("--train-subset " + Twine(trainSubset.getValue()) +
                       " leaves no training example after the " +
                       Twine(validation.getValue()) + " --validation ones");
  if (warmupEpochs >= searchEpochs)
    return reportError("--warmup-epochs " + Twine(warmupEpochs.getValue()) +
                       " leaves no epoch to search in; --epochs is " + Twine(searchEpochs.getValue()));
  if (sys::fs::exists(outputFile + "/report.json") && !searchOverwrite)
    return reportError("-o '" + outputFile + "' holds an earlier search (report.json): give a "
                       "new directory or --overwrite");
  const bool stopped = sys::fs::exists(outputFile + "/search/checkpoint.safetensors");
  if (fromSearch.empty() && stopped && !searchResume && !searchOverwrite)
    return reportError("-o '" + outputFile + "' holds a search that was stopped "
                       "(search/checkpoint.safetensors): continue it with --resume (the same "
                       "flags), or start over with --overwrite");
  if (searchResume && !stopped)
    return reportError("--resume: -o '" + outputFile + "' holds no stopped search "
                       "(search/checkpoint.safetensors)");
  // The folder is qdsl search's, or new or empty: a search writes over
  // DIR/train, DIR/model, ... and must never do so over a user's own run.
  const std::string marker = outputFile + "/" + kSearchMarker;
  if (sys::fs::is_directory(outputFile) && !sys::fs::exists(marker) &&
      !sys::fs::exists(outputFile + "/search/search.json") && !stopped) {
    std::error_code ec;
    sys::fs::directory_iterator first(outputFile, ec), end;
    if (!ec && first != end)
      return reportError("-o '" + outputFile + "' holds files that qdsl search did not write (no " +
                         kSearchMarker + "): give a new or empty directory");
  } else if (sys::fs::exists(outputFile) && !sys::fs::is_directory(outputFile)) {
    return reportError("-o '" + outputFile + "' is a file; a search needs a directory");
  }
  if (std::error_code ec = sys::fs::create_directories(outputFile + "/logs"))
    return reportError("cannot create '" + outputFile + "': " + ec.message());
  if (!sys::fs::exists(marker) &&
      writeOutputFile(marker, "qdsl search writes this folder; it may replace what is in it\n"))
    return 1;
  return 0;
}

/// The space's latency on `c`'s device into `spaces`, said in one line;
/// an error when even its fastest architecture exceeds the limit.
mlir::LogicalResult estimateLimit(SelectedModel &selected, const cost::SearchConstraint &c,
                                  std::vector<cost::SpaceLatency> &spaces, bool &everyFits) {
  mlir::func::FuncOp space = selected.model;
  auto latency = cost::estimateSpace(*selected.module, space, c.profile, 1);
  if (failed(latency))
    return mlir::failure();
  auto [fastest, slowest] = cost::latencyRange(*latency);
  if (fastest * 1e3 > c.limitMs) {
    selected.session->error() << "the latency limit " << shownNumber(c.limitMs) << " ms on '"
                              << c.device << "' cannot be met: the fastest architecture of '"
                              << space.getSymName() << "' takes "
                              << formatv("{0:f3}", fastest * 1e3).str() << " ms there (profile "
                              << c.profile.file << ")";
    return mlir::failure();
  }
  if (slowest * 1e3 > c.limitMs)
    everyFits = false;
  // A measured profile predicts the configurations it never timed from
  // families fitted on other shapes: say so, with the remedy.
  if (c.profile.calibrated && latency->measuredConfigurations < latency->kernelConfigurations)
    errs() << formatv("qdsl: warning: profile '{0}' never measured {1} of the {2} kernel "
                      "configurations of '{3}' (they are predicted from its family models, "
                      "fitted on other shapes); profile the space first: qdsl profile {4} "
                      "-o {5}.json (docs/NAS.md)\n",
                      c.profile.file,
                      latency->kernelConfigurations - latency->measuredConfigurations,
                      latency->kernelConfigurations, space.getSymName(), inputFile.getValue(),
                      c.device);
  outs() << formatv("limit on {0}: {1} ms; architectures take {2:f3} to {3:f3} ms ({4})\n",
                    c.device, shownNumber(c.limitMs), fastest * 1e3, slowest * 1e3,
                    c.profile.calibrated ? "measured profile " + c.profile.file
                                         : "uncalibrated profile " + c.profile.file +
                                               ": published figures only");
  spaces.push_back(std::move(*latency));
  return mlir::success();
}

/// 1. The supernet of the space (as qdsl compile --search writes it, with
/// the limits found already), built, and its search into DIR/search.
int searchSupernet(Session &session, const std::string &directory, const std::string &spaceFile,
                   const std::vector<cost::SearchConstraint> &constraints) {
  std::string supernet = directory + "/supernet";
  outs() << "compiling the supernet into " << supernet << "\n";
  outs().flush();
  ProjectRequest request;
  request.target = codegen::lookupTarget(searchTarget);
  request.search = request.train = true;
  request.directory = supernet;
  request.source = spaceFile;
  request.constraints = constraints;
  request.announce = false;
  mlir::OwningOpRef<mlir::ModuleOp> module = session.generate();
  mlir::func::FuncOp model = module ? session.selectModel(*module) : nullptr;
  if (!model)
    return failed(session.finish(false)), 1;
  if (writeModelProject(session, *module, model, request) ||
      driver::buildProject(supernet, jobs, directory + "/logs/supernet-build.log"))
    return 1;
  std::vector<std::string> args = {
      "--epochs",       std::to_string(searchEpochs), "--warmup-epochs",
      std::to_string(warmupEpochs), "--batch", std::to_string(searchBatch),
      "--seed",         std::to_string(seed),         "--threads", std::to_string(profileThreads),
      "--latency-loss", latencyLoss,                  "--validation", std::to_string(validation),
      "--arch-lr",      exactNumber(archLearningRate),
      "--arch-every",   std::to_string(archEvery),
      "--gates",        gateGradients,
      "--clip",         exactNumber(clipNorm),
      "--out",          directory + "/search"};
  if (searchResume || searchOverwrite)
    args.push_back(searchResume ? "--resume" : "--overwrite");
  if (latencyOnly)
    args.push_back("--latency-only");
  if (layerScaleInit > 0)
    args.insert(args.end(), {"--layer-scale-init", exactNumber(layerScaleInit)});
  if (trainSubset > 0)
    args.insert(args.end(), {"--train-subset", std::to_string(trainSubset)});
  if (!dataDirectory.empty())
    args.insert(args.end(), {"--data", dataDirectory});
  args.insert(args.end(), {"--dataset", searchDataset});
  for (const cost::SearchConstraint &c : constraints)
    args.insert(args.end(), {"--limit", c.device + "=" + exactNumber(c.limitMs)});
  outs() << "searching (" << searchEpochs << " epochs, " << warmupEpochs << " of warm-up)\n";
  outs().flush();
  return driver::runLaunched(launcher, supernet + "/build/search", args);
}

int writeDerived(Session &session, const std::string &directory,
                 const std::vector<std::string> &devices, const std::vector<double> &limitsMs,
                 SearchOutcome &out);
void checkMeasuredLatency(SearchOutcome &out);

/// 2. The derived architecture: the most probable one within every limit
/// (grown by --derive=fill; or the best scored by the supernet, --derive
/// accuracy), what holds each of its layers, and derived.qd.
int deriveArchitecture(Session &session, const std::string &directory,
                       const cost::LayerProbabilities &probabilities, SupernetScorer &scorer,
                       SearchOutcome &out) {
  std::vector<double> limitsMs;
  std::vector<std::string> devices;
  for (const cost::SearchConstraint &c : out.constraints) {
    limitsMs.push_back(c.limitMs);
    devices.push_back(c.device);
  }
  if (deriveRule == "accuracy") {
    if (!scorer.unusable().empty())
      return reportError("--derive accuracy: the supernet cannot score: " + scorer.unusable());
    if (deriveByAccuracy(scorer, out))
      return 1;
    return writeDerived(session, directory, devices, limitsMs, out);
  }
  cost::Derivation derivation =
      cost::mostProbableWithinLimits(probabilities, out.spaces, limitsMs);
  out.picks = derivation.picks;
  if (out.picks.empty())
    return reportError(
        derivation.exact
            ? formatv("none of the {0} architectures of the space meets every limit jointly "
                      "(each limit alone can be met): loosen one of them",
                      derivation.architectures)
                  .str()
            : formatv("the repair from the most probable architecture found none within every "
                      "limit (the space has {0:e2} architectures, too many to enumerate): "
                      "loosen a limit",
                      derivation.architectures)
                  .str());
  if (out.picks != out.argmax)
    outs() << "the most probable architecture (" << choicesText(out.argmax)
           << ") is over a limit; taking the most probable one within every limit ("
           << choicesText(out.picks) << (derivation.exact ? ", exact: " : ", repaired: ")
           << formatv("{0} architectures", derivation.architectures) << ")\n";
  if (deriveRule == "fill") {
    std::vector<int64_t> within = out.picks;
    out.picks = cost::fillBudget(probabilities, out.picks, out.spaces, limitsMs);
    if (out.picks != within)
      outs() << "--derive=fill: " << choicesText(within) << " grown to "
             << choicesText(out.picks) << " within every limit\n";
  }
  return writeDerived(session, directory, devices, limitsMs, out);
}

/// What holds each layer of `out.picks`, and derived.qd and choices.txt;
/// -1 to go on.
int writeDerived(Session &session, const std::string &directory,
                 const std::vector<std::string> &devices, const std::vector<double> &limitsMs,
                 SearchOutcome &out) {
  out.holds = cost::limitsHoldingLayers(out.spaces, limitsMs, out.picks);
  cost::printLayerHolds(out.holds, out.spaces.front(), devices, outs());
  session.options.choices = choicesText(out.picks);
  std::vector<std::string> header = {
      formatv("Found by qdsl search (seed {0}, {1} search epochs, --derive={2}):",
              out.settings.getInteger("seed").value_or(0),
              out.settings.getInteger("search_epochs").value_or(0), deriveRule.getValue())
          .str()};
  for (auto [c, s, basis] : llvm::zip(out.constraints, out.spaces, out.limitProfiles))
    header.push_back(formatv("  {0}: predicted {1:f3} ms, limit {2} ms ({3}, {4})", c.device,
                             cost::additiveLatency(s, out.picks) * 1e3, shownNumber(c.limitMs),
                             basis.basis, sys::path::filename(c.profile.file))
                         .str());
  mlir::FailureOr<std::string> derived =
      deriveModel(session, sys::path::filename(inputFile).str(), header, directory);
  if (failed(derived))
    return failed(session.finish(false)) ? 1 : 0;
  if (writeOutputFile(directory + "/derived.qd", *derived) ||
      writeOutputFile(directory + "/choices.txt", choicesText(out.picks) + "\n"))
    return 1;
  return -1;
}

/// 3. The derived model retrained from scratch by the generated trainer,
/// and its latency measured on this machine at batch 1.
int retrainAndMeasure(const std::string &directory, const std::vector<int64_t> &inputShape,
                      SearchOutcome &out) {
  std::string model = directory + "/model";
  outs() << "retraining the derived model (" << retrainEpochs << " epochs)\n";
  outs().flush();
  if (retrainModel(directory + "/derived.qd", model, directory + "/train", seed, /*build=*/true,
                   directory + "/logs/model-build.log", out.lastTrain))
    return 1;
  std::string error;
  if (std::error_code ec = sys::fs::copy_file(directory + "/train/weights.safetensors",
                                              directory + "/weights.safetensors"))
    return reportError("cannot copy the trained weights: " + ec.message());
  // As qdsl profile measures: its --rounds rounds of --repeat timed runs.
  driver::PredictTimingOptions timing;
  timing.threads = profileThreads;
  timing.repeat = profileRepeat;
  timing.weights = directory + "/weights.safetensors";
  timing.stem = "latency";
  std::vector<int64_t> shape = {1};
  shape.insert(shape.end(), inputShape.begin(), inputShape.end());
  if (!driver::measureLatency(model + "/build/predict", shape, directory + "/logs", timing,
                              profileRounds, out.measuredMs, error))
    return reportError(error);
  out.testAccuracy = out.lastTrain.getNumber("test_top1").value_or(0);
  out.searchedAccuracies = {out.testAccuracy};
  outs() << formatv("derived model: test top-1 {0:f2}%, latency on this machine {1:f3} ms "
                    "(batch 1, {2} threads; the fastest of 8 rounds' medians of 5 runs, as "
                    "qdsl profile measures)\n",
                    100 * out.testAccuracy, out.measuredMs, profileThreads.getValue());
  checkMeasuredLatency(out);
  return 0;
}

/// The measurement closes the loop: each limit of this machine (a measured
/// profile of the search's target), the derived model's latency measured
/// here against its prediction and the limit; where it is more than a
/// profile's accuracy off or over the limit, what that means and what to
/// do, said now and in the last lines, and put in the report.
void checkMeasuredLatency(SearchOutcome &out) {
  // Where the probabilities are: this search's, or the one it derived from.
  const std::string searched = fromSearch.empty() ? outputFile : fromSearch;
  for (auto [c, s, basis] : llvm::zip(out.constraints, out.spaces, out.limitProfiles)) {
    if (basis.basis != "measured on this machine" && basis.basis != "measured on another machine")
      continue;
    double predicted = cost::additiveLatency(s, out.picks) * 1e3;
    double ratio = out.measuredMs / predicted;
    bool within = std::fabs(ratio - 1) <= kProfileAccuracy;
    bool over = out.measuredMs > c.limitMs;
    std::string meaning = formatv("measured {0:f3} ms, {1:f0}% of the {2} ms limit; predicted "
                                  "{3:f3} ms ({4:f2}x): ",
                                  out.measuredMs, 100 * out.measuredMs / c.limitMs,
                                  shownNumber(c.limitMs), predicted, ratio)
                              .str();
    if (within)
      meaning += "within the profile's accuracy";
    else if (ratio < 1)
      meaning += formatv("the profile overstates this machine's latency {0:f1}x: here the "
                         "limit allows about {0:f1}x more than the search took it to",
                         1 / ratio)
                     .str();
    else
      meaning += formatv("the profile understates this machine's latency {0:f1}x", ratio).str();
    if (over)
      meaning += "; the model is over the limit on this machine";
    std::string again = "qdsl search " + inputFile + " --from-search " + searched +
                        " -o NEW_DIR with the same --only and --latency-limit";
    std::string remedy;
    if (!within || over)
      remedy = basis.basis == "measured on this machine"
                   ? "the machine was busy, or the calibration does not carry over to this "
                     "model: profile the space here (qdsl profile " + inputFile + " -o " +
                         c.device + ".json) and re-derive: " + again + " and --device " +
                         c.device + ".json"
               : c.profile.calibration
                   ? "the profile is a calibration made on another machine: re-derive with its "
                     "base '" + c.profile.calibration->base + "' as --device (it is then "
                     "calibrated here): " + again
                   : "re-derive against a calibrated profile: " + again + ", without "
                     "--no-calibrate";
    json::Object check{{"device", c.device},
                       {"limit_ms", c.limitMs},
                       {"predicted_ms", predicted},
                       {"measured_ms", out.measuredMs},
                       {"measured_over_predicted", ratio},
                       {"tolerance", kProfileAccuracy},
                       {"within_tolerance", within},
                       {"over_limit", over},
                       {"meaning", meaning}};
    if (!remedy.empty()) {
      check["remedy"] = remedy;
      errs() << "qdsl: warning: on '" << c.device << "' " << meaning << "; " << remedy << "\n";
    }
    out.latencyChecks.push_back(std::move(check));
  }
}

} // namespace

int runSearch() {
  if (int status = checkSearchFlags())
    return status;
  const std::string directory = outputFile;
  // The space, its limits and what each device's latency model says of it.
  SelectedModel selected;
  if (int exitCode = loadSelectedModel(selected); exitCode >= 0)
    return exitCode;
  Session &session = *selected.session;
  mlir::func::FuncOp space = selected.model;
  bool hasChoice = false;
  space.walk([&](quadra::ChoiceOp) { hasChoice = true; });
  if (!hasChoice) {
    session.error() << "'" << space.getSymName()
                    << "' has no choices: qdsl search needs a search space";
    return failed(session.finish(false)) ? 1 : 0;
  }
  // The profiles are checked against this machine below, where a foreign
  // one is calibrated rather than warned about.
  deferMachineWarnings(true);
  cost::DeviceProfile given;
  if (!deviceProfile.empty() && !loadDeviceProfile(given))
    return 1;
  auto constraints = searchConstraints(space, given);
  deferMachineWarnings(false);
  if (failed(constraints))
    return failed(session.finish(false)) ? 1 : 0;
  SearchOutcome out;
  out.constraints = std::move(*constraints);
  if (calibrateSearchProfiles(*selected.module, space, directory, directory, out.constraints,
                              out.limitProfiles))
    return 1;
  bool everyArchitectureFits = true;
  for (const cost::SearchConstraint &c : out.constraints)
    if (failed(estimateLimit(selected, c, out.spaces, everyArchitectureFits)))
      return failed(session.finish(false)) ? 1 : 0;
  if (everyArchitectureFits)
    outs() << "every architecture of '" << space.getSymName()
           << "' meets every limit: the search is for accuracy alone\n";
  outs().flush();
  SmallString<256> spaceFile(inputFile);
  sys::fs::make_absolute(spaceFile);
  out.space = space.getSymName().str();
  out.source = spaceFile.str().str();

  // 1. The supernet and its search, or an earlier one's (--from-search).
  std::string searchJSON = directory + "/search/search.json";
  out.settings = json::Object{{"search_epochs", static_cast<int64_t>(searchEpochs)},
                              {"warmup_epochs", static_cast<int64_t>(warmupEpochs)},
                              {"latency_loss", latencyLoss},
                              {"arch_lr", archLearningRate.getValue()},
                              {"arch_every", static_cast<int64_t>(archEvery)},
                              {"gates", gateGradients},
                              {"latency_only", latencyOnly.getValue()},
                              {"layer_scale_init", layerScaleInit.getValue()},
                              {"clip", clipNorm.getValue()},
                              {"seed", static_cast<int64_t>(seed)}};
  if (!fromSearch.empty()) {
    searchJSON = fromSearch + "/search/search.json";
    if (earlierSearchSettings(out.settings))
      return 1;
  } else if (searchSupernet(session, directory, out.source, out.constraints)) {
    return 1;
  }
  // 2. The derived architecture.
  json::Value searchResult = nullptr;
  cost::LayerProbabilities probabilities;
  if (readProbabilities(searchJSON, out.spaces.front(), space.getSymName(), searchResult,
                        probabilities, out.argmax))
    return 1;
  out.result = searchResult.getAsObject();
  const json::Object *searchSettings = out.result->getObject("settings");
  SupernetScorer scorer(fromSearch.empty() ? directory : fromSearch.getValue(),
                        directory + "/scoring", searchSettings ? *searchSettings : json::Object());
  if (int status = deriveArchitecture(session, directory, probabilities, scorer, out);
      status >= 0)
    return status;
  if (rankSamples > 0 && !scorer.unusable().empty())
    errs() << "qdsl: warning: --rank-samples: the supernet cannot score: " << scorer.unusable()
           << "\n";
  else if (rankSamples > 0 && rankWithSupernet(scorer, out))
    return 1;
  mlir::OwningOpRef<mlir::ModuleOp> fixed = session.generate(/*applyChoices=*/true);
  auto fixedModel = fixed ? fixed->lookupSymbol<mlir::func::FuncOp>(space.getSymName())
                          : mlir::func::FuncOp();
  auto stats = fixedModel ? quadra::computeModelStatistics(fixedModel, 1)
                          : mlir::FailureOr<quadra::ModelStatistics>(mlir::failure());
  if (failed(stats))
    return failed(session.finish(false)) ? 1 : 0;
  out.params = static_cast<int64_t>(stats->params);
  out.macs = static_cast<int64_t>(stats->macs);
  outs() << "derived " << directory << "/derived.qd (choices " << choicesText(out.picks) << "; "
         << formatv("{0:f2} M params, {1:f1} M MACs", stats->params / 1e6, stats->macs / 1e6)
         << ")\n";
  // 3. Retraining and the latency on this machine.
  auto inputType = cast<mlir::RankedTensorType>(fixedModel.getArgument(0).getType());
  if (retrainAndMeasure(directory,
                        {inputType.getShape().begin() + 1, inputType.getShape().end()}, out))
    return 1;
  if (baselineCount > 0 || retrainSeeds > 1) {
    if (trainBaselines(session, directory, scorer, out))
      return 1;
  }
  // 4. The report and its plots.
  if (writeSearchReport(directory, out) || writeSearchPlots(directory, out))
    return 1;
  // The limits once more, each with what its figure rests on.
  for (auto [c, s, basis] : llvm::zip(out.constraints, out.spaces, out.limitProfiles))
    outs() << formatv("{0}: predicted {1:f3} ms of {2} ms ({3}{4})\n", c.device,
                      cost::additiveLatency(s, out.picks) * 1e3, shownNumber(c.limitMs),
                      basis.basis == "published figures" ? "predicted from published figures"
                                                         : "profile " + basis.basis,
                      basis.calibratedFrom.empty() ? "" : ", calibrated here");
  for (const json::Value &value : out.latencyChecks) {
    const json::Object &check = *value.getAsObject();
    if (const std::optional<StringRef> remedy = check.getString("remedy"))
      outs() << "measured on this machine for '" << *check.getString("device")
             << "': " << *check.getString("meaning") << "; " << *remedy << "\n";
  }
  outs() << "wrote " << directory << "/report.json, derived.qd, choices.txt, weights.safetensors "
         << "and the plots probabilities.svg, latency.svg, accuracy-latency.svg"
         << (out.evolvedScored.empty() && out.randomScored.empty() ? "" : ", pareto.svg") << "\n";
  return failed(session.finish(true)) ? 1 : 0;
}

} // namespace qdsl::tool
