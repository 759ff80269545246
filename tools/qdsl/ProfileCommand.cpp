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
//  3. Each family's predictor is fitted (codegen/CostModel.cpp), and the
//     per-pass overhead from the end-to-end times.
//  4. Adaptive sampling: --refine more architectures, drawing each layer's
//     candidate with probability growing with the error its kernels had,
//     are timed and everything is refitted.
//
// The profile is written atomically to -o, with every measurement.

#include "Latency.h"
#include "Options.h"
#include "Session.h"

#include "codegen/DeviceProfile.h"
#include "codegen/KernelCosts.h"
#include "codegen/ProjectWriter.h"
#include "dialect/QuadraOps.h"
#include "passes/Passes.h"
#include "runtime/TensorFiles.h"

#include "mlir/Pass/PassManager.h"
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

struct Choice {
  std::string layer;
  size_t candidates = 0;
};

/// One timed architecture at one batch. Each round gives the median of
/// its runs, end to end and per kernel; the figures kept are those of the
/// round with the fastest end-to-end median: other tenants of a shared
/// machine only ever slow a round down, so the least disturbed round is
/// the closest to what the code itself costs.
struct Timing {
  std::vector<int64_t> picks;
  std::string predict;  // the built program
  int64_t batch = 1;
  std::vector<double> roundSeconds;                  // per round
  std::vector<std::vector<double>> roundKernels;     // per round, per kernel
  size_t runs = 0;
  std::vector<cost::KernelSample> kernels;
  double seconds = 0;
};

class Profiler {
public:
  Profiler(SelectedModel &selected, const codegen::Target &target, std::string work,
           std::vector<int64_t> batches)
      : selected(selected), target(target), work(std::move(work)),
        batches(std::move(batches)) {}

  bool run(cost::DeviceProfile &profile);

private:
  /// Generates and builds `picks`, adding one Timing per batch; false on
  /// error, true (adding nothing) for an architecture built before.
  bool buildArchitecture(const std::vector<int64_t> &picks);
  /// Times every Timing from `first` on, `rounds` times in turn, so that a
  /// slow spell of the machine spreads over all of them.
  bool timeRounds(size_t first);
  bool runOnce(Timing &timing);
  void fit(cost::DeviceProfile &profile);
  std::vector<int64_t> adaptivePicks(const cost::DeviceProfile &profile, std::mt19937_64 &random);
  std::string describe(const std::vector<int64_t> &picks);

  SelectedModel &selected;
  const codegen::Target &target;
  std::string work;
  std::vector<int64_t> batches;
  std::vector<Choice> choices;
  std::vector<Timing> timings;
  std::set<std::string> timedArchitectures;
};

std::string Profiler::describe(const std::vector<int64_t> &picks) {
  std::string s;
  for (int64_t p : picks)
    s += (s.empty() ? "" : ",") + std::to_string(p);
  return s.empty() ? "(no choices)" : s;
}

bool Profiler::buildArchitecture(const std::vector<int64_t> &picks) {
  std::string key = describe(picks);
  if (timedArchitectures.count(key))
    return true;
  std::string project = work + "/arch-" + std::to_string(timedArchitectures.size());
  timedArchitectures.insert(key);
  mlir::FailureOr<mlir::OwningOpRef<mlir::ModuleOp>> copy =
      formArchitecture(*selected.module, picks, target);
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
  outs() << formatv("  {0,-40} built in {1:f0} s\n", key, secondsSince(started));
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
    timing.picks = picks;
    timing.batch = b;
    timing.predict = project + "/build/predict";
    timing.kernels = std::move(*kernels);
    timings.push_back(std::move(timing));
  }
  return true;
}

bool Profiler::runOnce(Timing &t) {
  std::string input = work + "/input-" + std::to_string(t.batch) + ".npy",
              output = work + "/output.npy", result = work + "/timing.json";
  std::string threads = std::to_string(profileThreads), repeat = std::to_string(profileRepeat);
  SmallVector<StringRef> args = {t.predict,   "--input", input,   "--output",       output,
                                 "--threads", threads,   "--pin", "--warmup",       "1",
                                 "--repeat",  repeat,    "--profile-json", result};
  std::string message, log = work + "/predict.log";
  std::optional<StringRef> redirect = StringRef(log);
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
  for (const cost::KernelSample &k : t.kernels) {
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
  t.seconds = t.roundSeconds[best];
  for (auto [i, k] : llvm::enumerate(t.kernels))
    k.seconds = t.roundKernels[best][i];
  return true;
}

bool Profiler::timeRounds(size_t first) {
  for (unsigned round = 0; round < profileRounds; ++round)
    for (size_t i = first; i < timings.size(); ++i)
      if (!runOnce(timings[i]))
        return false;
  for (size_t i = first; i < timings.size(); ++i)
    outs() << formatv("  {0,-40} batch {1,3}: {2,9:f3} ms  ({3} kernels; {4} runs, best "
                      "round median)\n",
                      describe(timings[i].picks), timings[i].batch, timings[i].seconds * 1e3,
                      timings[i].kernels.size(), timings[i].runs);
  outs().flush();
  return true;
}

void Profiler::fit(cost::DeviceProfile &profile) {
  std::map<std::string, std::vector<cost::KernelSample>> byFamily;
  std::vector<cost::KernelSample> all;
  for (const Timing &t : timings)
    for (const cost::KernelSample &k : t.kernels) {
      byFamily[k.family].push_back(k);
      all.push_back(k);
    }
  profile.families.clear();
  for (const auto &[family, samples] : byFamily)
    profile.families[family] = cost::fitFamily(samples, profile.device);
  profile.fallback = cost::fitForm(cost::Form::Roofline, all, profile.device);
  // Time outside the kernels: a + b·batch by least squares.
  double n = 0, sb = 0, sbb = 0, sr = 0, sbr = 0;
  for (const Timing &t : timings) {
    double kernels = 0;
    for (const cost::KernelSample &k : t.kernels)
      kernels += k.seconds;
    double rest = t.seconds - kernels, b = static_cast<double>(t.batch);
    n += 1, sb += b, sbb += b * b, sr += rest, sbr += b * rest;
  }
  double det = n * sbb - sb * sb;
  double slope = det > 0 ? (n * sbr - sb * sr) / det : 0;
  double intercept = n > 0 ? (sr - slope * sb) / n : 0;
  if (slope < 0 || intercept < 0) {
    slope = std::max(0.0, sbb > 0 ? sbr / sbb : 0);
    intercept = std::max(0.0, n > 0 ? (sr - slope * sb) / n : 0);
  }
  profile.passOverhead = intercept;
  profile.exampleOverhead = slope;
  profile.measurements = all;
  cost::indexMeasurements(profile);
  profile.passes.clear();
  for (const Timing &t : timings) {
    cost::DeviceProfile::Pass pass;
    pass.model = describe(t.picks);
    pass.batch = t.batch;
    pass.seconds = t.seconds;
    for (const cost::KernelSample &k : t.kernels)
      pass.kernelSeconds += k.seconds;
    profile.passes.push_back(pass);
  }
}

std::vector<int64_t> Profiler::adaptivePicks(const cost::DeviceProfile &profile,
                                             std::mt19937_64 &random) {
  // Mean relative error of each layer's kernels per candidate chosen.
  std::vector<std::vector<double>> error(choices.size()), count(choices.size());
  for (size_t l = 0; l < choices.size(); ++l) {
    error[l].assign(choices[l].candidates, 0);
    count[l].assign(choices[l].candidates, 0);
  }
  for (const Timing &t : timings)
    for (const cost::KernelSample &k : t.kernels)
      for (size_t l = 0; l < choices.size(); ++l)
        if (StringRef(k.name).starts_with(choices[l].layer + "/")) {
          // Capped: one tiny kernel off by 50× must not make every draw
          // the same architecture.
          double e = std::min(
              1.0, std::fabs(cost::predictKernel(profile, k) - k.seconds) / k.seconds);
          error[l][t.picks[l]] += e;
          count[l][t.picks[l]] += 1;
        }
  std::vector<int64_t> picks;
  for (size_t l = 0; l < choices.size(); ++l) {
    std::vector<double> weights;
    for (size_t c = 0; c < choices[l].candidates; ++c)
      weights.push_back(0.05 + (count[l][c] > 0 ? error[l][c] / count[l][c] : 0.1));
    std::discrete_distribution<int64_t> draw(weights.begin(), weights.end());
    picks.push_back(draw(random));
  }
  return picks;
}

void printFit(const cost::DeviceProfile &profile, raw_ostream &os) {
  os << formatv("  {0,-28} {1,-9} {2,7} {3,9} {4,9} {5,9} {6,9}\n", "family", "predictor",
                "samples", "RMSPE", "±10%", "LOO RMSPE", "LOO ±10%");
  for (const auto &[family, m] : profile.families)
    os << formatv("  {0,-28} {1,-9} {2,7} {3,8:f1}% {4,8:f1}% {5,8:f1}% {6,8:f1}%\n", family,
                  cost::formName(m.form), m.samples, m.rmspe * 100, m.within10 * 100,
                  m.looRmspe * 100, m.looWithin10 * 100);
  std::vector<double> predicted, measured, fitted;
  cost::DeviceProfile fitOnly = profile;
  fitOnly.useMeasured = false;
  for (const cost::KernelSample &k : profile.measurements) {
    predicted.push_back(cost::predictKernel(profile, k));
    fitted.push_back(cost::predictKernel(fitOnly, k));
    measured.push_back(k.seconds);
  }
  cost::Accuracy kernels = cost::accuracy(predicted, measured);
  cost::Accuracy fits = cost::accuracy(fitted, measured);
  os << formatv("  kernels ({0} measurements): fitted predictors RMSPE {1:f1}%, {2:f1}% within "
                "±10%; configuration medians RMSPE {3:f1}%, {4:f1}% within ±10%\n",
                kernels.count, fits.rmspe * 100, fits.within10 * 100, kernels.rmspe * 100,
                kernels.within10 * 100);
}

bool Profiler::run(cost::DeviceProfile &profile) {
  auto started = Clock::now();
  selected.model.walk<mlir::WalkOrder::PreOrder>([&](quadra::ChoiceOp choice) {
    choices.push_back({choice.getLayer().str(), choice.getAlternatives().size()});
    return mlir::WalkResult::skip();
  });
  size_t widest = 1;
  for (const Choice &c : choices)
    widest = std::max(widest, c.candidates);
  outs() << "profiling " << selected.model.getSymName() << " (" << choices.size()
         << " choices) for " << target.name << " on " << profileThreads
         << " pinned threads, batches " << profileBatches << "\n";
  outs() << "building the cover architectures (every candidate of every layer):\n";
  for (size_t c = 0; c < widest; ++c) {
    std::vector<int64_t> picks;
    for (const Choice &choice : choices)
      picks.push_back(static_cast<int64_t>(std::min(c, choice.candidates - 1)));
    if (!buildArchitecture(picks))
      return false;
  }
  std::mt19937_64 random(seed);
  if (!choices.empty() && profileArchitectures > 0) {
    outs() << "building random architectures (seed " << seed << "):\n";
    for (unsigned i = 0; i < profileArchitectures; ++i) {
      std::vector<int64_t> picks;
      for (const Choice &choice : choices)
        picks.push_back(static_cast<int64_t>(random() % choice.candidates));
      if (!buildArchitecture(picks))
        return false;
    }
  }
  outs() << "timing (" << profileRounds << " rounds of " << profileRepeat << " runs):\n";
  if (!timeRounds(0))
    return false;
  fit(profile);
  if (!choices.empty() && profileRefine > 0) {
    outs() << "first fit:\n";
    printFit(profile, outs());
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
    fit(profile);
  }
  outs() << "fit:\n";
  printFit(profile, outs());
  std::vector<double> predicted, measured, fitted;
  cost::DeviceProfile fitOnly = profile;
  fitOnly.useMeasured = false;
  for (const Timing &t : timings) {
    predicted.push_back(cost::predictPass(profile, t.kernels, t.batch));
    fitted.push_back(cost::predictPass(fitOnly, t.kernels, t.batch));
    measured.push_back(t.seconds);
  }
  cost::Accuracy passes = cost::accuracy(predicted, measured);
  cost::Accuracy fits = cost::accuracy(fitted, measured);
  outs() << formatv("  end to end on the profiling architectures ({0} passes, in sample): "
                    "RMSPE {1:f1}%, {2:f1}% within ±10% (fitted predictors only: {3:f1}%, "
                    "{4:f1}%)\n",
                    passes.count, passes.rmspe * 100, passes.within10 * 100, fits.rmspe * 100,
                    fits.within10 * 100);
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

int runProfile() {
  std::string name = target.empty() ? "x86-64-avx2" : target.getValue();
  const codegen::Target *t = codegen::lookupTarget(name);
  if (!t)
    return reportError("unknown target '" + name + "'; qdsl profile measures x86-64-avx2 or "
                       "opencl kernels on this machine");
  if (!t->runnableHere)
    return reportError("target " + name + " does not run on this machine; profile it on "
                       "the device itself, or use a shipped profile from profiles/");
  if (outputFile.empty() || outputFile == "-")
    return reportError("qdsl profile needs -o PROFILE.json");
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
  int exitCode = 0;
  if (!loadSelectedModel(selected, exitCode))
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

  cost::DeviceProfile profile;
  profile.device = hostFigures(*t);
  profile.calibrated = true;
  Profiler profiler(selected, *t, std::string(work), batches);
  bool ok = profiler.run(profile);
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
