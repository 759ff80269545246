//===- Profiler.h - measuring this machine into a device profile -*- C++ -*-===//
//
// What `qdsl profile` does (docs/COST_MODEL.md):
//
//  1. Architectures of the search space: first the "cover" ones (every
//     layer takes candidate c, for each c), so that every kernel
//     configuration of the space is timed; then random ones (seed), which
//     put the same kernels in other neighbourhoods.
//  2. Each is generated into a project of its own (kernels from the kernel
//     cache after their first build) and built; then rounds visit every
//     architecture at every batch size in turn, each visit timing its
//     `predict` (PredictTiming.h). A visit gives medians, end to end and
//     per kernel; the visit with the fastest end-to-end median is kept.
//  3. Each family's predictor is fitted, and the per-pass overhead from the
//     end-to-end times (codegen/latency/ProfileFit.cpp).
//  4. Adaptive sampling: more architectures, drawing each layer's
//     candidate with probability growing with the error its kernels had,
//     are timed and everything is refitted.
//
// Or, calibrating a profile measured elsewhere: a few cover architectures
// that hold the most kernel configurations, timed, and the profile's
// predictors scaled to them (codegen/latency/Calibrate.cpp). Progress goes
// to stdout.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_TOOLS_DRIVER_PROFILER_H
#define QDSL_TOOLS_DRIVER_PROFILER_H

#include "codegen/Targets.h"
#include "codegen/latency/CostModel.h"
#include "codegen/latency/ProfileFit.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

#include <chrono>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace qdsl::driver {

struct ProfilerOptions {
  /// The batch sizes every architecture is timed at.
  std::vector<int64_t> batches = {1};
  /// Pinned threads; timed passes per visit, and rounds of visits.
  unsigned threads = 2, repeat = 5, rounds = 8;
  /// Random architectures after the cover ones (drawn with `seed`), and
  /// adaptive ones after.
  unsigned architectures = 0, refine = 0;
  uint64_t seed = 0;
  /// How the profile's description names the space file, the batches, and
  /// the profile being written.
  std::string sourceName, batchesText, outputName;
  /// The kernel cache of the projects it writes; empty for none.
  std::string kernelCache;
};

/// Figures of this machine that the predictors start from: cores from the
/// OS, peak from the vector width and 2 FMA units per core at a nominal
/// 3 GHz, and a nominal bandwidth; the fits absorb the difference.
cost::DeviceFigures hostFigures(const codegen::Target &target, unsigned threads);

class Profiler {
public:
  /// Profiles the space (or model) `space` of `module` for `target`,
  /// writing projects into `work`.
  Profiler(mlir::ModuleOp module, mlir::func::FuncOp space, const codegen::Target &target,
           std::string work, ProfilerOptions settings)
      : module(module), space(space), target(target), work(std::move(work)),
        settings(std::move(settings)) {}

  bool run(cost::DeviceProfile &profile);
  /// Times a few architectures and carries `base` over to this machine.
  bool calibrate(const cost::DeviceProfile &base, unsigned architectures,
                 cost::DeviceProfile &profile);
  /// The Halide version the built projects found ("" before any build).
  std::string halideVersion() const { return halide; }
  /// How busy the machine was while timing (MachineRecord::roundSpread).
  double roundSpread() const;
  /// Why run() or calibrate() failed when nothing else said so ("" when a
  /// diagnostic or a build's message did).
  const std::string &error() const { return failure; }

private:
  using Clock = std::chrono::steady_clock;

  /// One timed architecture at one batch. Each round gives the median of
  /// its runs, end to end and per kernel; the figures kept are those of
  /// the round with the fastest end-to-end median: other tenants of a
  /// shared machine only ever slow a round down, so the least disturbed
  /// round is the closest to what the code itself costs.
  struct Timing {
    /// Picks, batch, kernels; seconds from the best round.
    cost::TimedPass pass;
    std::string predict;                            // the built program
    std::vector<double> roundSeconds;               // per round
    std::vector<std::vector<double>> roundKernels;  // per round, per kernel
    size_t runs = 0;
  };

  /// How far profiling is and how long the rest should take: builds and
  /// timing visits planned and done, each at its own mean cost so far.
  struct Progress {
    Clock::time_point start = Clock::now();
    size_t buildsPlanned = 0, buildsDone = 0, visitsPlanned = 0, visitsDone = 0;
    double buildSeconds = 0, visitSeconds = 0;
    std::string line() const;
  };

  static double secondsSince(Clock::time_point start);
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

  mlir::ModuleOp module;
  mlir::func::FuncOp space;
  const codegen::Target &target;
  std::string work;
  ProfilerOptions settings;
  std::vector<cost::ChoiceLayer> choices;
  std::vector<Timing> timings;
  std::set<std::string> timedArchitectures;
  Progress progress;
  std::string halide, failure;
};

} // namespace qdsl::driver

#endif // QDSL_TOOLS_DRIVER_PROFILER_H
