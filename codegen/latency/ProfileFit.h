//===- ProfileFit.h - a device profile from timed architectures -*- C++ -*-===//
//
// What `qdsl profile` does with its measurements: fit each kernel family's
// predictor (CostModel.h) and the time outside the kernels, say how well
// they fit, and where the fit is worst (for adaptive sampling). Plain C++
// over the samples; the tool builds and times the architectures.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_LATENCY_PROFILEFIT_H
#define QDSL_CODEGEN_LATENCY_PROFILEFIT_H

#include "codegen/latency/CostModel.h"

#include "llvm/Support/raw_ostream.h"

#include <string>
#include <vector>

namespace qdsl::cost {

/// One architecture of a search space timed at one batch: its kernels
/// with their measured seconds, and the whole pass.
struct TimedPass {
  /// The candidate picked in each choice layer.
  std::vector<int64_t> picks;
  int64_t batch = 1;
  std::vector<KernelSample> kernels;
  double seconds = 0;
};

/// "0,3,1", or "(no choices)".
std::string describePicks(const std::vector<int64_t> &picks);

/// Fits every family's predictor to the kernels of `passes`, the fallback
/// (a roofline over all of them) and the time outside the kernels
/// (fitOverhead); keeps every measurement.
void fitProfile(DeviceProfile &profile, const std::vector<TimedPass> &passes);

/// `passes` as the profile's end-to-end record (`DeviceProfile::passes`).
void recordPasses(DeviceProfile &profile, const std::vector<TimedPass> &passes);

/// The time outside the kernel timers of `passes` (pass time minus its
/// kernels' times) as a + b·batch + c·kernels, non-negative least squares.
void fitOverhead(DeviceProfile &profile, const std::vector<TimedPass> &passes);

/// An architecture's pass predicted by a profile fitted without it.
struct HeldOutPass {
  std::string model;
  int64_t batch = 1;
  double predicted = 0, measured = 0;
};

/// Leave-one-architecture-out: for each architecture of `passes` (all its
/// batches together), fits a profile on the others (measured medians of
/// the configurations they timed, predictors, overheads) and predicts it.
/// Empty with fewer than three architectures.
std::vector<HeldOutPass> crossValidateArchitectures(const DeviceProfile &profile,
                                                  const std::vector<TimedPass> &passes);

/// Median signed error, RMSPE and share within ±10% of `heldOut`, per batch.
void printHeldOut(const std::vector<HeldOutPass> &heldOut, llvm::raw_ostream &os);

/// A choice layer of the space: its name and how many candidates it has.
struct ChoiceLayer {
  std::string name;
  size_t candidates = 0;
};

/// For each layer and candidate, the mean relative error (capped at 1) of
/// the layer's kernels in the passes that picked it; -1 where none did.
std::vector<std::vector<double>> candidateErrors(const DeviceProfile &profile,
                                                 const std::vector<TimedPass> &passes,
                                                 const std::vector<ChoiceLayer> &layers);

/// Per family: predictor, samples, in-sample and leave-one-out errors; then
/// the kernel-level accuracy of the fits and of the measured medians.
void printFit(const DeviceProfile &profile, llvm::raw_ostream &os);

} // namespace qdsl::cost

#endif // QDSL_CODEGEN_LATENCY_PROFILEFIT_H
