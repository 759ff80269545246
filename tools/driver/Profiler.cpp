//===- Profiler.cpp - measuring this machine into a device profile --------===//

#include "tools/driver/Profiler.h"

#include "tools/driver/PredictTiming.h"
#include "tools/driver/Programs.h"

#include "codegen/KernelCalls.h"
#include "codegen/ProjectWriter.h"
#include "codegen/latency/Calibrate.h"
#include "codegen/latency/DeviceProfile.h"
#include "codegen/latency/KernelCosts.h"
#include "dialect/QuadraOps.h"
#include "passes/Pipelines.h"
#include "runtime/shipped/Progress.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>
#include <thread>

using namespace llvm;

namespace qdsl::driver {

double Profiler::secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string Profiler::Progress::line() const {
  // Before the first of each: a build from the kernel cache takes about
  // 15 s, a visit about half a second.
  double build = buildsDone ? buildSeconds / buildsDone : 15;
  double visit = visitsDone ? visitSeconds / visitsDone : 0.5;
  double left = build * (buildsPlanned - std::min(buildsPlanned, buildsDone)) +
                visit * (visitsPlanned - std::min(visitsPlanned, visitsDone));
  return "[" + rt::formatDuration(secondsSince(start)) + " elapsed, about " +
         rt::formatDuration(left) + " left]";
}

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
      quadra::formArchitecture(module, picks, target.name);
  if (failed(copy))
    return false;
  auto model = (*copy)->lookupSymbol<mlir::func::FuncOp>(space.getSymName());
  codegen::ProjectOptions options;
  options.source = settings.sourceName;
  options.kernelCache = settings.kernelCache;
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
  for (int64_t b : settings.batches) {
    std::string input = work + "/input-" + std::to_string(b) + ".npy";
    if (!sys::fs::exists(input)) {
      std::vector<int64_t> shape = {b};
      shape.insert(shape.end(), type.getShape().begin() + 1, type.getShape().end());
      if (!writeRandomInput(input, shape, static_cast<unsigned>(b), failure))
        return false;
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
  std::string input = work + "/input-" + std::to_string(t.pass.batch) + ".npy";
  PredictTimingOptions timing;
  timing.threads = settings.threads;
  timing.repeat = settings.repeat;
  PredictTimes times;
  auto started = Clock::now();
  if (!timePredict(t.predict, input, work, timing, times, failure))
    return false;
  progress.visitSeconds += secondsSince(started);
  ++progress.visitsDone;
  t.runs += times.runs.size();
  t.roundSeconds.push_back(cost::median(times.runs));
  std::vector<double> kernelMedians;
  for (const cost::KernelSample &k : t.pass.kernels) {
    auto seconds = times.kernels.find(k.name);
    if (seconds == times.kernels.end()) {
      failure = "'" + work + "/" + timing.stem + ".json' has no time for kernel '" + k.name + "'";
      return false;
    }
    kernelMedians.push_back(cost::median(seconds->second));
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
                                    progress.visitsDone + settings.rounds * (timings.size() - first));
  for (unsigned round = 0; round < settings.rounds; ++round) {
    for (size_t i = first; i < timings.size(); ++i)
      if (!runOnce(timings[i]))
        return false;
    outs() << formatv("  round {0}/{1} timed  {2}\n", round + 1, settings.rounds,
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
  space.walk<mlir::WalkOrder::PreOrder>([&](quadra::ChoiceOp choice) {
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
      cover.size() + (choices.empty() ? 0 : settings.architectures + settings.refine);
  progress.visitsPlanned = progress.buildsPlanned * settings.batches.size() * settings.rounds;
  outs() << "profiling " << space.getSymName() << " (" << choices.size()
         << " choices) for " << target.name << " on " << settings.threads
         << " pinned threads, batches " << settings.batchesText << ": " << progress.buildsPlanned
         << " architectures to build and time\n";
  outs() << "building the cover architectures (every candidate of every layer):\n";
  for (const std::vector<int64_t> &picks : cover)
    if (!buildArchitecture(picks))
      return false;
  std::mt19937_64 random(settings.seed);
  if (!choices.empty() && settings.architectures > 0) {
    outs() << "building random architectures (seed " << settings.seed << "):\n";
    for (unsigned i = 0; i < settings.architectures; ++i) {
      std::vector<int64_t> picks;
      for (const cost::ChoiceLayer &choice : choices)
        picks.push_back(static_cast<int64_t>(random() % choice.candidates));
      if (!buildArchitecture(picks))
        return false;
    }
  }
  outs() << "timing (" << settings.rounds << " rounds of " << settings.repeat << " runs):\n";
  if (!timeRounds(0))
    return false;
  cost::fitProfile(profile, passes());
  if (!choices.empty() && settings.refine > 0) {
    outs() << "first fit:\n";
    cost::printFit(profile, outs());
    outs() << "refining where the error is largest:\n";
    size_t first = timings.size(), built = timedArchitectures.size();
    // Draws that repeat an architecture already timed are drawn again.
    for (unsigned draw = 0; draw < 50 * settings.refine &&
                            timedArchitectures.size() < built + settings.refine;
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
                           timedArchitectures.size(), space.getSymName(),
                           settings.sourceName, settings.threads,
                           settings.rounds, settings.repeat,
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
        quadra::formArchitecture(module, picks, target.name);
    if (failed(copy))
      return false;
    auto model = (*copy)->lookupSymbol<mlir::func::FuncOp>(space.getSymName());
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
  progress.visitsPlanned = chosen.size() * settings.batches.size() * settings.rounds;
  outs() << "calibrating '" << base.file << "' (" << base.device.name << ", "
         << base.device.threads << " threads) for this machine on " << settings.threads
         << " pinned threads: " << chosen.size() << " architectures of "
         << space.getSymName() << ", " << covered.size()
         << " kernel configurations, batches " << settings.batchesText << "\n";
  for (size_t i : chosen)
    if (!buildArchitecture(candidates[i]))
      return false;
  outs() << "timing (" << settings.rounds << " rounds of " << settings.repeat << " runs):\n";
  if (!timeRounds(0))
    return false;
  profile = cost::calibrateProfile(base, passes());
  profile.calibration->base = sys::path::filename(base.file).str();
  profile.calibration->seconds = secondsSince(started);
  profile.device.threads = static_cast<int>(settings.threads);
  profile.device.description = "this machine, calibrated by qdsl profile --calibrate";
  profile.source = formatv("calibrated by qdsl profile --calibrate from '{0}' on {1} "
                           "architectures of {2} ({3}), {4} pinned threads, {5} rounds of {6} "
                           "runs, in {7:f0} s; the base: {8}",
                           profile.calibration->base, chosen.size(),
                           space.getSymName(), settings.sourceName,
                           settings.threads, settings.rounds,
                           settings.repeat, profile.calibration->seconds, base.source)
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
                      100 * c.passRmspeBefore, 100 * c.passRmspeAfter, settings.outputName);
  return true;
}

cost::DeviceFigures hostFigures(const codegen::Target &target, unsigned threads) {
  cost::DeviceFigures d;
  d.name = "host-" + target.name;
  d.description = "this machine, as measured by qdsl profile";
  d.target = target.name;
  d.cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  d.threads = static_cast<int>(threads);
  d.vectorFloats = target.vectorFloats;
  d.peakGflops = 2.0 * 2 * d.vectorFloats * 3.0 * std::min(d.cores, d.threads);
  d.bandwidthGBs = 32;
  return d;
}

} // namespace qdsl::driver
