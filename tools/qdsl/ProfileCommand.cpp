//===- ProfileCommand.cpp - qdsl profile ----------------------------------===//
//
// Measures this machine and fits a device profile:
//
//  1. Architectures of the search space: first the "cover" ones (every
//     layer takes candidate c, for each c), so that every kernel
//     configuration of the space is timed; then random ones (--seed), which
//     put the same kernels in other neighbourhoods.
//  2. Each is generated into a project of its own (kernels from the kernel
//     cache after their first build) and built; then --rounds rounds visit
//     every architecture at every batch size in turn, each visit running
//     its `predict` (pinned threads, a warm-up pass, --repeat timed passes).
//     A visit gives medians, end to end and per kernel; the visit with the
//     fastest end-to-end median is kept (see Timing).
//  3. Each family's predictor is fitted, and the per-pass overhead from the
//     end-to-end times (codegen/latency/ProfileFit.cpp).
//  4. Adaptive sampling: --refine more architectures, drawing each layer's
//     candidate with probability growing with the error its kernels had,
//     are timed and everything is refitted.
//
// The profile is written atomically to -o, with every measurement.

#include "Options.h"
#include "Session.h"

#include "codegen/ProjectWriter.h"
#include "codegen/latency/Calibrate.h"
#include "codegen/latency/DeviceProfile.h"
#include "codegen/latency/ProfileLookup.h"
#include "codegen/latency/KernelCosts.h"
#include "codegen/latency/ProfileFit.h"
#include "dialect/QuadraOps.h"
#include "passes/Pipelines.h"
#include "runtime/shipped/Progress.h"
#include "runtime/shipped/TensorFiles.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"

#include <chrono>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <thread>

using namespace llvm;

namespace qdsl::tool {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// One timed architecture at one batch. Each round gives the median of
/// its runs, end to end and per kernel; the figures kept are those of the
/// round with the fastest end-to-end median: other tenants of a shared
/// machine only ever slow a round down, so the least disturbed round is
/// the closest to what the code itself costs.
struct Timing {
  /// Picks, batch, kernels; seconds from the best round.
  cost::TimedPass pass;
  std::string predict;  // the built program
  std::vector<double> roundSeconds;                  // per round
  std::vector<std::vector<double>> roundKernels;     // per round, per kernel
  size_t runs = 0;
};

/// How far profiling is and how long the rest should take: builds and
/// timing visits planned and done, each at its own mean cost so far.
struct ProfileProgress {
  Clock::time_point start = Clock::now();
  size_t buildsPlanned = 0, buildsDone = 0, visitsPlanned = 0, visitsDone = 0;
  double buildSeconds = 0, visitSeconds = 0;

  std::string line() const {
    // Before the first of each: a build from the kernel cache takes about
    // 15 s, a visit about half a second.
    double build = buildsDone ? buildSeconds / buildsDone : 15;
    double visit = visitsDone ? visitSeconds / visitsDone : 0.5;
    double left = build * (buildsPlanned - std::min(buildsPlanned, buildsDone)) +
                  visit * (visitsPlanned - std::min(visitsPlanned, visitsDone));
    return "[" + rt::formatDuration(secondsSince(start)) + " elapsed, about " +
           rt::formatDuration(left) + " left]";
  }
};

class Profiler {
public:
  Profiler(SelectedModel &selected, const codegen::Target &target, std::string work,
           std::vector<int64_t> batches)
      : selected(selected), target(target), work(std::move(work)),
        batches(std::move(batches)) {}

  bool run(cost::DeviceProfile &profile);
  /// Times a few architectures and carries `base` over to this machine.
  bool calibrate(const cost::DeviceProfile &base, unsigned architectures,
                 cost::DeviceProfile &profile);
  /// The Halide version the built projects found ("" before any build).
  std::string halideVersion() const { return halide; }
  /// How busy the machine was while timing (MachineRecord::roundSpread).
  double roundSpread() const;

private:
  /// The choice layers of the space, and the architectures that cover
  /// every candidate (the last one where a layer has fewer).
  void findChoices();
  std::vector<std::vector<int64_t>> coverArchitectures() const;
  /// Generates and builds `picks`, adding one Timing per batch; false on
  /// error, true (adding nothing) for an architecture built before.
  bool buildArchitecture(const std::vector<int64_t> &picks);
  /// Times every Timing from `first` on, `rounds` times in turn, so that a
  /// slow spell of the machine spreads over all of them.
  bool timeRounds(size_t first);
  bool runOnce(Timing &timing);
  std::vector<cost::TimedPass> passes() const;
  std::vector<int64_t> adaptivePicks(const cost::DeviceProfile &profile, std::mt19937_64 &random);

  SelectedModel &selected;
  const codegen::Target &target;
  std::string work;
  std::vector<int64_t> batches;
  std::vector<cost::ChoiceLayer> choices;
  std::vector<Timing> timings;
  std::set<std::string> timedArchitectures;
  ProfileProgress progress;
  std::string halide;
};

double Profiler::roundSpread() const {
  std::vector<double> spreads;
  for (const Timing &t : timings)
    if (!t.roundSeconds.empty()) {
      double fastest = *std::min_element(t.roundSeconds.begin(), t.roundSeconds.end());
      if (fastest > 0)
        spreads.push_back(cost::median(t.roundSeconds) / fastest - 1);
    }
  return spreads.empty() ? -1 : cost::median(spreads);
}

std::vector<cost::TimedPass> Profiler::passes() const {
  std::vector<cost::TimedPass> all;
  for (const Timing &t : timings)
    all.push_back(t.pass);
  return all;
}

bool Profiler::buildArchitecture(const std::vector<int64_t> &picks) {
  std::string key = cost::describePicks(picks);
  if (timedArchitectures.count(key))
    return true;
  std::string project = work + "/arch-" + std::to_string(timedArchitectures.size());
  timedArchitectures.insert(key);
  mlir::FailureOr<mlir::OwningOpRef<mlir::ModuleOp>> copy =
      quadra::formArchitecture(*selected.module, picks, target.name);
  if (failed(copy))
    return false;
  auto model = (*copy)->lookupSymbol<mlir::func::FuncOp>(selected.model.getSymName());
  codegen::ProjectOptions options;
  options.source = inputFile;
  options.kernelCache = kernelCacheDirectory();
  if (failed(codegen::writeProject(model, nullptr, target, project, options)))
    return false;
  auto started = Clock::now();
  if (buildProject(project, 0, work + "/build.log"))
    return false;
  double seconds = secondsSince(started);
  progress.buildSeconds += seconds;
  ++progress.buildsDone;
  progress.buildsPlanned = std::max(progress.buildsPlanned, progress.buildsDone);
  if (halide.empty())
    if (auto version = MemoryBuffer::getFile(project + "/" + codegen::kHalideVersionFile))
      halide = (*version)->getBuffer().trim().str();
  outs() << formatv("  {0,-40} built in {1:f0} s  {2}\n", key, seconds, progress.line());
  outs().flush();

  auto type = llvm::cast<mlir::RankedTensorType>(model.getArgument(0).getType());
  for (int64_t b : batches) {
    std::string error, input = work + "/input-" + std::to_string(b) + ".npy";
    if (!sys::fs::exists(input)) {
      std::vector<int64_t> shape = {b};
      shape.insert(shape.end(), type.getShape().begin() + 1, type.getShape().end());
      rt::Tensor x(shape);
      std::mt19937 random(static_cast<unsigned>(b));
      std::normal_distribution<float> normal;
      for (float &v : x.data)
        v = normal(random);
      if (!rt::writeNpy(input, x, error)) {
        reportError(error);
        return false;
      }
    }
    mlir::FailureOr<std::vector<cost::KernelSample>> kernels =
        codegen::kernelSamples(model, target, b);
    if (failed(kernels))
      return false;
    Timing timing;
    timing.pass.picks = picks;
    timing.pass.batch = b;
    timing.predict = project + "/build/predict";
    timing.pass.kernels = std::move(*kernels);
    timings.push_back(std::move(timing));
  }
  return true;
}

bool Profiler::runOnce(Timing &t) {
  std::string input = work + "/input-" + std::to_string(t.pass.batch) + ".npy",
              output = work + "/output.npy", result = work + "/timing.json";
  std::string threads = std::to_string(profileThreads), repeat = std::to_string(profileRepeat);
  SmallVector<StringRef> args = {t.predict,   "--input", input,   "--output",       output,
                                 "--threads", threads,   "--pin", "--warmup",       "1",
                                 "--repeat",  repeat,    "--profile-json", result};
  std::string message, log = work + "/predict.log";
  std::optional<StringRef> redirect = StringRef(log);
  auto started = Clock::now();
  if (int status = sys::ExecuteAndWait(t.predict, args, std::nullopt,
                                       {std::nullopt, redirect, redirect}, 0, 0, &message)) {
    reportError("running '" + t.predict + "' failed (exit " + Twine(status) + ") " + message +
                "; see " + log);
    return false;
  }
  auto buffer = MemoryBuffer::getFile(result);
  if (!buffer) {
    reportError("predict wrote no profile '" + result + "'");
    return false;
  }
  Expected<json::Value> parsed = json::parse((*buffer)->getBuffer());
  if (!parsed) {
    reportError("'" + result + "': " + toString(parsed.takeError()));
    return false;
  }
  const json::Object *root = parsed->getAsObject();
  const json::Array *runs = root ? root->getArray("runs") : nullptr;
  const json::Array *measured = root ? root->getArray("kernels") : nullptr;
  if (!runs || !measured) {
    reportError("'" + result + "' is not a profile written by predict --profile-json");
    return false;
  }
  progress.visitSeconds += secondsSince(started);
  ++progress.visitsDone;
  std::vector<double> passRuns;
  for (const json::Value &x : *runs)
    if (auto d = x.getAsNumber())
      passRuns.push_back(*d);
  t.runs += passRuns.size();
  t.roundSeconds.push_back(cost::median(passRuns));
  std::map<std::string, const json::Array *> byName;
  for (const json::Value &k : *measured)
    if (const json::Object *o = k.getAsObject())
      if (auto name = o->getString("kernel"))
        byName[name->str()] = o->getArray("seconds");
  std::vector<double> kernelMedians;
  for (const cost::KernelSample &k : t.pass.kernels) {
    const json::Array *seconds = byName[k.name];
    if (!seconds) {
      reportError("'" + result + "' has no time for kernel '" + k.name + "'");
      return false;
    }
    std::vector<double> values;
    for (const json::Value &x : *seconds)
      if (auto d = x.getAsNumber())
        values.push_back(*d);
    kernelMedians.push_back(cost::median(values));
  }
  t.roundKernels.push_back(std::move(kernelMedians));
  size_t best = std::min_element(t.roundSeconds.begin(), t.roundSeconds.end()) -
                t.roundSeconds.begin();
  t.pass.seconds = t.roundSeconds[best];
  for (auto [i, k] : llvm::enumerate(t.pass.kernels))
    k.seconds = t.roundKernels[best][i];
  return true;
}

bool Profiler::timeRounds(size_t first) {
  progress.visitsPlanned = std::max(progress.visitsPlanned,
                                    progress.visitsDone + profileRounds * (timings.size() - first));
  for (unsigned round = 0; round < profileRounds; ++round) {
    for (size_t i = first; i < timings.size(); ++i)
      if (!runOnce(timings[i]))
        return false;
    outs() << formatv("  round {0}/{1} timed  {2}\n", round + 1, profileRounds.getValue(),
                      progress.line());
    outs().flush();
  }
  for (size_t i = first; i < timings.size(); ++i)
    outs() << formatv("  {0,-40} batch {1,3}: {2,9:f3} ms  ({3} kernels; {4} runs, best "
                      "round median)\n",
                      cost::describePicks(timings[i].pass.picks), timings[i].pass.batch,
                      timings[i].pass.seconds * 1e3, timings[i].pass.kernels.size(),
                      timings[i].runs);
  outs().flush();
  return true;
}

std::vector<int64_t> Profiler::adaptivePicks(const cost::DeviceProfile &profile,
                                             std::mt19937_64 &random) {
  std::vector<std::vector<double>> error = cost::candidateErrors(profile, passes(), choices);
  std::vector<int64_t> picks;
  for (size_t l = 0; l < choices.size(); ++l) {
    std::vector<double> weights;
    for (double e : error[l])
      weights.push_back(0.05 + (e >= 0 ? e : 0.1));
    std::discrete_distribution<int64_t> draw(weights.begin(), weights.end());
    picks.push_back(draw(random));
  }
  return picks;
}

void Profiler::findChoices() {
  choices.clear();
  selected.model.walk<mlir::WalkOrder::PreOrder>([&](quadra::ChoiceOp choice) {
    choices.push_back({choice.getLayer().str(), choice.getAlternatives().size()});
    return mlir::WalkResult::skip();
  });
}

std::vector<std::vector<int64_t>> Profiler::coverArchitectures() const {
  size_t widest = 1;
  for (const cost::ChoiceLayer &c : choices)
    widest = std::max(widest, c.candidates);
  std::vector<std::vector<int64_t>> cover;
  for (size_t c = 0; c < widest; ++c) {
    std::vector<int64_t> picks;
    for (const cost::ChoiceLayer &choice : choices)
      picks.push_back(static_cast<int64_t>(std::min(c, choice.candidates - 1)));
    cover.push_back(picks);
  }
  return cover;
}

bool Profiler::run(cost::DeviceProfile &profile) {
  auto started = Clock::now();
  findChoices();
  std::vector<std::vector<int64_t>> cover = coverArchitectures();
  progress.buildsPlanned =
      cover.size() + (choices.empty() ? 0 : profileArchitectures + profileRefine);
  progress.visitsPlanned = progress.buildsPlanned * batches.size() * profileRounds;
  outs() << "profiling " << selected.model.getSymName() << " (" << choices.size()
         << " choices) for " << target.name << " on " << profileThreads
         << " pinned threads, batches " << profileBatches << ": " << progress.buildsPlanned
         << " architectures to build and time\n";
  outs() << "building the cover architectures (every candidate of every layer):\n";
  for (const std::vector<int64_t> &picks : cover)
    if (!buildArchitecture(picks))
      return false;
  std::mt19937_64 random(seed);
  if (!choices.empty() && profileArchitectures > 0) {
    outs() << "building random architectures (seed " << seed << "):\n";
    for (unsigned i = 0; i < profileArchitectures; ++i) {
      std::vector<int64_t> picks;
      for (const cost::ChoiceLayer &choice : choices)
        picks.push_back(static_cast<int64_t>(random() % choice.candidates));
      if (!buildArchitecture(picks))
        return false;
    }
  }
  outs() << "timing (" << profileRounds << " rounds of " << profileRepeat << " runs):\n";
  if (!timeRounds(0))
    return false;
  cost::fitProfile(profile, passes());
  if (!choices.empty() && profileRefine > 0) {
    outs() << "first fit:\n";
    cost::printFit(profile, outs());
    outs() << "refining where the error is largest:\n";
    size_t first = timings.size(), built = timedArchitectures.size();
    // Draws that repeat an architecture already timed are drawn again.
    for (unsigned draw = 0; draw < 50 * profileRefine &&
                            timedArchitectures.size() < built + profileRefine;
         ++draw)
      if (!buildArchitecture(adaptivePicks(profile, random)))
        return false;
    if (!timeRounds(first))
      return false;
    cost::fitProfile(profile, passes());
  }
  outs() << "fit:\n";
  cost::printFit(profile, outs());
  std::vector<double> predicted, measured, fitted;
  cost::DeviceProfile fitOnly = profile;
  fitOnly.useMeasured = false;
  for (const Timing &t : timings) {
    predicted.push_back(cost::predictPass(profile, t.pass.kernels, t.pass.batch));
    fitted.push_back(cost::predictPass(fitOnly, t.pass.kernels, t.pass.batch));
    measured.push_back(t.pass.seconds);
  }
  cost::Accuracy passes = cost::accuracy(predicted, measured);
  cost::Accuracy fits = cost::accuracy(fitted, measured);
  outs() << formatv("  end to end on the profiling architectures ({0} passes, in sample): "
                    "RMSPE {1:f1}%, {2:f1}% within ±10% (fitted predictors only: {3:f1}%, "
                    "{4:f1}%)\n",
                    passes.count, passes.rmspe * 100, passes.within10 * 100, fits.rmspe * 100,
                    fits.within10 * 100);
  outs() << formatv("  time outside the kernel timers: {0:f1} us per pass + {1:f2} us per "
                    "example + {2:f2} us per kernel\n",
                    profile.passOverhead * 1e6, profile.exampleOverhead * 1e6,
                    profile.kernelOverhead * 1e6);
  cost::printHeldOut(cost::crossValidateArchitectures(profile, this->passes()), outs());
  profile.source = formatv("measured by qdsl profile on {0} architectures of {1} ({2}), "
                           "{3} pinned threads, {4} rounds of {5} runs (the fastest round's "
                           "medians kept), in {6:f0} s",
                           timedArchitectures.size(), selected.model.getSymName(),
                           inputFile.getValue(), profileThreads.getValue(),
                           profileRounds.getValue(), profileRepeat.getValue(),
                           secondsSince(started))
                       .str();
  outs() << formatv("profiled in {0:f0} s\n", secondsSince(started));
  return true;
}

bool Profiler::calibrate(const cost::DeviceProfile &base, unsigned count,
                         cost::DeviceProfile &profile) {
  auto started = Clock::now();
  findChoices();
  // Greedily, the cover architectures that add the most kernel
  // configurations not yet timed: few builds, every family, varied shapes.
  std::vector<std::vector<int64_t>> candidates = coverArchitectures();
  std::vector<std::set<std::string>> configurations;
  for (const std::vector<int64_t> &picks : candidates) {
    mlir::FailureOr<mlir::OwningOpRef<mlir::ModuleOp>> copy =
        quadra::formArchitecture(*selected.module, picks, target.name);
    if (failed(copy))
      return false;
    auto model = (*copy)->lookupSymbol<mlir::func::FuncOp>(selected.model.getSymName());
    mlir::FailureOr<std::vector<cost::KernelSample>> kernels =
        codegen::kernelSamples(model, target, 1);
    if (failed(kernels))
      return false;
    std::set<std::string> set;
    for (const cost::KernelSample &k : *kernels)
      set.insert(k.family + "\n" + k.configuration);
    configurations.push_back(std::move(set));
  }
  std::set<std::string> covered;
  std::vector<size_t> chosen;
  while (chosen.size() < count) {
    size_t best = candidates.size(), bestNew = 0;
    for (size_t i = 0; i < candidates.size(); ++i) {
      size_t fresh = 0;
      for (const std::string &c : configurations[i])
        fresh += !covered.count(c);
      if (fresh > bestNew)
        best = i, bestNew = fresh;
    }
    if (best == candidates.size())
      break;
    chosen.push_back(best);
    covered.insert(configurations[best].begin(), configurations[best].end());
  }
  progress.buildsPlanned = chosen.size();
  progress.visitsPlanned = chosen.size() * batches.size() * profileRounds;
  outs() << "calibrating '" << base.file << "' (" << base.device.name << ", "
         << base.device.threads << " threads) for this machine on " << profileThreads
         << " pinned threads: " << chosen.size() << " architectures of "
         << selected.model.getSymName() << ", " << covered.size()
         << " kernel configurations, batches " << profileBatches << "\n";
  for (size_t i : chosen)
    if (!buildArchitecture(candidates[i]))
      return false;
  outs() << "timing (" << profileRounds << " rounds of " << profileRepeat << " runs):\n";
  if (!timeRounds(0))
    return false;
  profile = cost::calibrateProfile(base, passes());
  profile.calibration->base = sys::path::filename(base.file).str();
  profile.calibration->seconds = secondsSince(started);
  profile.device.threads = static_cast<int>(profileThreads);
  profile.device.description = "this machine, calibrated by qdsl profile --calibrate";
  profile.source = formatv("calibrated by qdsl profile --calibrate from '{0}' on {1} "
                           "architectures of {2} ({3}), {4} pinned threads, {5} rounds of {6} "
                           "runs, in {7:f0} s; the base: {8}",
                           profile.calibration->base, chosen.size(),
                           selected.model.getSymName(), inputFile.getValue(),
                           profileThreads.getValue(), profileRounds.getValue(),
                           profileRepeat.getValue(), profile.calibration->seconds, base.source)
                       .str();
  outs() << "calibration:\n";
  cost::printCalibration(*profile.calibration, outs());
  outs() << formatv("calibrated in {0:f0} s\n", profile.calibration->seconds);
  // Factors fitted to the very kernels they are checked on should lower
  // the error there; a rise means the timings were disturbed.
  const cost::CalibrationRecord &c = *profile.calibration;
  if (c.kernelRmspeAfter > c.kernelRmspeBefore || c.passRmspeAfter > c.passRmspeBefore)
    errs() << formatv("qdsl: warning: the calibration made the profile worse on the kernels "
                      "it timed (RMSPE {0:f1}% -> {1:f1}%, whole passes {2:f1}% -> {3:f1}%): "
                      "the timings were disturbed (a busy machine); calibrate again when it "
                      "is quiet before trusting {4}\n",
                      100 * c.kernelRmspeBefore, 100 * c.kernelRmspeAfter,
                      100 * c.passRmspeBefore, 100 * c.passRmspeAfter, outputFile.getValue());
  return true;
}

/// Figures of this machine that the predictors start from: cores from the
/// OS, peak from the vector width and 2 FMA units per core at a nominal
/// 3 GHz, and a nominal bandwidth; the fits absorb the difference.
cost::DeviceFigures hostFigures(const codegen::Target &target) {
  cost::DeviceFigures d;
  d.name = "host-" + target.name;
  d.description = "this machine, as measured by qdsl profile";
  d.target = target.name;
  d.cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  d.threads = static_cast<int>(profileThreads);
  d.vectorFloats = target.vectorFloats;
  d.peakGflops = 2.0 * 2 * d.vectorFloats * 3.0 * std::min(d.cores, d.threads);
  d.bandwidthGBs = 32;
  return d;
}

} // namespace

int runMachine() {
  if (unsigned cpus = std::thread::hardware_concurrency();
      profileThreads < 1 || (cpus && profileThreads > cpus))
    return reportError("--threads must be from 1 to the " + Twine(cpus) +
                       " CPUs of this machine");
  cost::MachineRecord m = cost::describeThisMachine(static_cast<int>(profileThreads),
                                                    codegen::generatorsDigest(), "");
  if (json) {
    outs() << formatv("{0:2}", cost::machineToJSON(m)) << "\n";
    return 0;
  }
  outs() << formatv("{0}, {1} CPUs\n"
                    "on {2} threads: FMA peak {3:f1} GFLOP/s, streaming bandwidth {4:f1} GB/s\n"
                    "qdsl {5}, kernel generators {6}\n",
                    m.cpuModel, m.logicalCpus, m.threads, m.fmaPeakGflops, m.bandwidthGBs,
                    m.qdslVersion, m.generators);
  return 0;
}

int runProfile() {
  cost::DeviceProfile base;
  bool calibrating = !calibrateBase.empty();
  if (calibrating) {
    std::string error;
    // A file, or the name of a shipped profile (or one in $QDSL_PROFILE_PATH).
    bool found = sys::fs::exists(calibrateBase) || StringRef(calibrateBase).ends_with(".json")
                     ? cost::readProfile(calibrateBase, base, error)
                     : cost::findDeviceProfile(calibrateBase, base, error);
    if (!found)
      return reportError("--calibrate: " + error);
    if (!base.calibrated || base.measurements.empty())
      return reportError("--calibrate '" + calibrateBase + "': the profile holds no "
                         "measurements (published figures only); calibrate a profile that "
                         "qdsl profile measured, or run qdsl profile without --calibrate");
    if (base.calibration)
      return reportError("--calibrate '" + calibrateBase + "' is itself calibrated (from '" +
                         base.calibration->base + "'); calibrate that full profile instead");
    if (!target.empty() && target != base.device.target)
      return reportError("--target " + target + " differs from the target of --calibrate '" +
                         calibrateBase + "' (" + base.device.target + ")");
  }
  if (calibrating && (profileArchitectures.getNumOccurrences() ||
                      profileRefine.getNumOccurrences() || seed.getNumOccurrences()))
    return reportError("--architectures, --refine and --seed choose what a full profile times; "
                       "--calibrate times the cover architectures (--calibrate-architectures)");
  if (!calibrating && calibrateArchitectures.getNumOccurrences())
    return reportError("--calibrate-architectures needs --calibrate BASE.json");
  if (calibrating && calibrateArchitectures < 1)
    return reportError("--calibrate-architectures must be at least 1");
  std::string name = calibrating ? base.device.target
                                 : target.empty() ? codegen::kDefaultTarget : target.getValue();
  const codegen::Target *t = codegen::lookupTarget(name);
  if (!t)
    return reportError("unknown target '" + name + "'; qdsl profile measures x86-64-avx2 or "
                       "opencl kernels on this machine");
  if (!t->runnableHere)
    return reportError("target " + name + " does not run on this machine; profile it on "
                       "the device itself, or use a shipped profile from profiles/");
  if (outputFile.empty() || outputFile == "-")
    return reportError("qdsl profile needs -o PROFILE.json");
  // What would fail at the end of a long run fails now.
  if (sys::fs::is_directory(outputFile))
    return reportError("-o '" + outputFile + "' is a directory; expected the profile's file");
  SmallString<256> parent(outputFile);
  sys::path::remove_filename(parent);
  if (!parent.empty() && !sys::fs::is_directory(parent))
    return reportError("-o '" + outputFile + "': the directory '" + parent + "' does not exist");
  if (unsigned cpus = std::thread::hardware_concurrency(); cpus && profileThreads > cpus)
    return reportError("--threads " + Twine(profileThreads.getValue()) + " is more than the " +
                       Twine(cpus) + " CPUs of this machine; the threads are pinned one per CPU");
  if (profileRepeat < 5 || profileRounds < 1)
    return reportError("--repeat must be at least 5 (each round keeps the median of its runs) "
                       "and --rounds at least 1");
  if (profileThreads < 1)
    return reportError("--threads must be at least 1");
  std::vector<int64_t> batches;
  SmallVector<StringRef> parts;
  StringRef(profileBatches).split(parts, ',');
  for (StringRef part : parts) {
    int64_t b;
    if (part.trim().getAsInteger(10, b) || b < 1 || b > 4096)
      return reportError("--batches expects batch sizes from 1 to 4096 separated by commas, "
                         "got '" + profileBatches + "'");
    batches.push_back(b);
  }
  SelectedModel selected;
  if (int exitCode = loadSelectedModel(selected); exitCode >= 0)
    return exitCode;

  SmallString<256> work(profileWork);
  bool temporary = work.empty();
  if (temporary) {
    if (std::error_code ec = sys::fs::createUniqueDirectory("qdsl-profile", work))
      return reportError("cannot create a temporary directory: " + ec.message());
  } else if (std::error_code ec = sys::fs::create_directories(work)) {
    return reportError("cannot create '" + profileWork + "': " + ec.message());
  }
  sys::fs::make_absolute(work);

  // Where the measurements are made: measured before the builds load the
  // machine.
  cost::MachineRecord machine =
      cost::describeThisMachine(static_cast<int>(profileThreads), codegen::generatorsDigest(), "");
  outs() << formatv("this machine: {0}, {1} CPUs; on {2} threads FMA peak {3:f0} GFLOP/s, "
                    "memory bandwidth {4:f1} GB/s\n",
                    machine.cpuModel, machine.logicalCpus, machine.threads, machine.fmaPeakGflops,
                    machine.bandwidthGBs);
  if (calibrating) {
    if (base.machine)
      for (const std::string &d : cost::machineDifferences(*base.machine, machine))
        outs() << "  differs from where '" << calibrateBase << "' was measured: " << d << "\n";
    else
      outs() << "  '" << calibrateBase << "' does not say where it was measured (written "
             << "before qdsl 0.15)\n";
  }
  cost::DeviceProfile profile;
  profile.device = hostFigures(*t);
  profile.calibrated = true;
  Profiler profiler(selected, *t, std::string(work), batches);
  bool ok = calibrating ? profiler.calibrate(base, calibrateArchitectures, profile)
                        : profiler.run(profile);
  machine.halideVersion = profiler.halideVersion();
  machine.roundSpread = std::round(profiler.roundSpread() * 1e4) / 1e4;
  profile.machine = machine;
  if (ok && machine.roundSpread >= 0)
    outs() << formatv("timing rounds: the median round {0:f1}% slower than the fastest\n",
                      machine.roundSpread * 100);
  if (ok && machine.roundSpread > cost::kBusyRoundSpread)
    errs() << formatv("qdsl: warning: the machine was busy while timing: the median round was "
                      "{0:f0}% slower than the fastest (3-5% when this machine class is "
                      "quiet), so the fastest rounds may be slow too and the profile high; "
                      "run it again when the machine is quiet\n",
                      machine.roundSpread * 100);
  if (temporary && ok)
    sys::fs::remove_directories(work);
  else if (!ok)
    errs() << "qdsl: the profiling projects are kept in " << work << "\n";
  if (!ok)
    return 1;
  if (int status = writeOutputFile(outputFile, cost::formatProfile(profile)))
    return status;
  outs() << "wrote " << outputFile << "\n";
  return 0;
}

} // namespace qdsl::tool
