//===- CostModel.h - kernel latency predictors and device profiles -*- C++ -*-===//
//
// A model's latency on a device is the sum of its kernels' latencies (the
// kernels --quadra-form-kernels forms for the device's target, so the cost
// model and the code generator agree on what a kernel is) plus a small
// per-pass overhead. Each kernel family has its own predictor over the
// kernel's configuration, fitted to measurements by `qdsl profile` and
// chosen among three forms by leave-one-out error:
//
//   roofline   t = o + max(flops / (e_c·peak), bytes / (e_m·bandwidth))
//   linear     t = c0 + c1·MACs + c2·bytes            (coefficients ≥ 0)
//   loglinear  log t = β·[1, log MACs, log bytes, log batch, log p…]
//
// where p are the family's numeric generator parameters (channels, kernel
// size, height, …). Fits minimise relative error, the measure the accuracy
// target is stated in. A device profile (DeviceProfile.h) stores the
// device's figures, the predictor of each family and the measurements.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_LATENCY_COSTMODEL_H
#define QDSL_CODEGEN_LATENCY_COSTMODEL_H

#include "codegen/latency/HostMachine.h"

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace qdsl::cost {

/// One kernel call at a batch size: what the predictors see, and, for a
/// measurement, the time it took.
struct KernelSample {
  std::string name;
  std::string family;
  /// Generator and parameters: equal configurations run the same code.
  std::string configuration;
  int64_t batch = 1;
  /// Multiply-accumulates and bytes read and written (activations at this
  /// batch, every weight once).
  double macs = 0, bytes = 0;
  /// The generator's numeric parameters (booleans excluded).
  std::vector<std::pair<std::string, double>> params;
  /// Median measured time; 0 when not measured.
  double seconds = 0;
  /// A fused kernel's parts: the kernels it replaces (for
  /// ln_mlp_scale_residual, its expanding and contracting halves as
  /// ln_pwconv_gelu and pwconv_scale_residual kernels). A profile with no
  /// fit of the fused family but fits of every part's predicts the sum of
  /// the parts (an upper bound: the fused kernel moves less).
  std::vector<KernelSample> parts;
};

/// The published or measured figures of a device.
struct DeviceFigures {
  std::string name;
  std::string description;
  /// The qdsl target whose fusion rules form this device's kernels.
  std::string target;
  double peakGflops = 0;    // fp32, all cores used
  double bandwidthGBs = 0;  // sustained memory bandwidth
  int cores = 0;
  int threads = 0;
  int vectorFloats = 0;
};

enum class Form { Roofline, Linear, LogLinear };
const char *formName(Form form);
bool parseForm(const std::string &name, Form &form);

/// A fitted predictor of one kernel family.
struct FamilyModel {
  Form form = Form::Roofline;
  /// Roofline: {overhead_s, compute_efficiency, memory_efficiency};
  /// linear: {c0, c1, c2}; loglinear: β in the order of `features`.
  std::vector<double> coefficients;
  /// Loglinear only: "macs", "bytes", "batch", then parameter names.
  std::vector<std::string> features;
  /// Loglinear only: the most MACs a sample had, per batch (from the samples
  /// when fitted, from the profile's measurements when read). A kernel with
  /// more is predicted as the largest one timed, scaled in proportion to its
  /// work: a power law fitted inside the range (time ~ MACs^0.8, say) would
  /// underestimate a kernel 4x larger than any timed (QuadraNet36-T's
  /// against a search space of half its width) by a third.
  std::map<int64_t, double> largestMacs;
  /// Fit quality on its measurements: RMSPE (as a fraction) and the share
  /// within ±10%, in sample and leave-one-out.
  size_t samples = 0;
  double rmspe = 0, within10 = 0, looRmspe = 0, looWithin10 = 0;
};

/// What `qdsl profile --calibrate` found: per kernel family, how much
/// slower (> 1) or faster this machine is than the base profile predicts,
/// at each batch size it timed. A calibrated profile predicts the base's
/// time times this factor, interpolated linearly in log(batch) between the
/// batches timed and held constant beyond them (a batch changes how well a
/// kernel spreads over the threads, so machines differ by batch too).
struct CalibrationFactor {
  /// Batch size → factor, at least one entry.
  std::map<int64_t, double> byBatch;
  /// How many kernel measurements it rests on (0: no kernel of the family
  /// was timed; the overall factor stands in).
  size_t kernels = 0;

  double at(int64_t batch) const;
};

/// How a calibrated profile was made: the profile it started from, the
/// factors, and how well the result predicts the kernels and passes it
/// timed.
struct CalibrationRecord {
  /// The base profile's file name (no directory) and its `source`.
  std::string base, baseSource;
  /// Where the base profile was measured, when it says.
  std::optional<MachineRecord> baseMachine;
  std::map<std::string, CalibrationFactor> factors;
  /// Over every timed kernel: for families with no factor of their own.
  CalibrationFactor overall;
  /// Time outside the kernels here / what the base predicts for it.
  double overheadFactor = 1;
  /// RMSPE and share within ±10% on the calibration kernels, under the base
  /// profile and under the calibrated one; and on the whole passes.
  double kernelRmspeBefore = 0, kernelWithin10Before = 0, kernelRmspeAfter = 0,
         kernelWithin10After = 0, passRmspeBefore = 0, passRmspeAfter = 0;
  size_t kernels = 0, passes = 0;
  double seconds = 0;

  /// The factor of `family` at `batch`.
  double factor(const std::string &family, int64_t batch) const;
};

struct DeviceProfile {
  /// Version 2 added `machine`, `calibration` and `overhead.per_kernel_us`;
  /// version 1 files are still read (without them).
  static constexpr int kVersion = 2;
  DeviceFigures device;
  /// False for profiles built from published figures alone.
  bool calibrated = false;
  /// Where the figures come from, and how it was measured.
  std::string source;
  /// The file the profile was read from (not written into it), for errors.
  std::string file;
  /// Time outside the kernels per forward pass: a + b·batch seconds, plus
  /// `kernelOverhead` per kernel call (what the per-kernel timers do not
  /// see between two kernels: the call, the thread pool waking, the next
  /// kernel's first cache misses). Estimates add it to each kernel, so a
  /// layer's time includes the overhead of its own kernels.
  double passOverhead = 0, exampleOverhead = 0, kernelOverhead = 0;
  /// Where a measured profile was made; absent in published-figure
  /// profiles and in profiles written before version 2.
  std::optional<MachineRecord> machine;
  /// Present in a calibrated profile: every kernel prediction (measured
  /// median or predictor) is the base's times the factor of its family and
  /// batch; the overheads were scaled when calibrating.
  std::optional<CalibrationRecord> calibration;
  /// The predictor of a family with no fit of its own: a roofline.
  FamilyModel fallback;
  std::map<std::string, FamilyModel> families;
  std::vector<KernelSample> measurements;
  /// End-to-end figures of the profiling run (seconds), when measured.
  struct Pass {
    std::string model;
    int64_t batch = 1;
    double seconds = 0, kernelSeconds = 0;
  };
  std::vector<Pass> passes;

  /// Median measured time per family, configuration and batch (from
  /// `measurements`; see indexMeasurements). A configuration the profile
  /// measured is predicted by its median — what the machine did in the
  /// contexts profiling put it in — unless `useMeasured` is off; any other
  /// by its family's fitted predictor.
  std::map<std::string, double> measuredMedians;
  bool useMeasured = true;
};

/// Rebuilds `profile.measuredMedians` from its measurements.
void indexMeasurements(DeviceProfile &profile);

/// A roofline with the given efficiencies and per-kernel overhead.
FamilyModel rooflineModel(double overheadSeconds, double computeEfficiency,
                          double memoryEfficiency);

/// Whether a loglinear predictor may name `feature`: macs, bytes, batch or
/// a generator parameter (a lower-case identifier).
bool isFeatureName(const std::string &feature);

/// The feature of `model` that `kernel` does not have (its predictor would
/// read it as 1), or "" when it has them all.
std::string missingFeature(const FamilyModel &model, const KernelSample &kernel);

/// Predicted seconds of `kernel` under `model` on `device`.
double predictWith(const FamilyModel &model, const DeviceFigures &device,
                   const KernelSample &kernel);

/// Whether `kernel` is predicted as the sum of its parts in `profile`: no
/// measured median and no fit of its family, a fit of every part's family.
bool predictedFromParts(const DeviceProfile &profile, const KernelSample &kernel);

/// Which predictor predictKernel uses for `kernel`: "measured", its
/// family's form, "parts", or "fallback roofline".
std::string predictorUsed(const DeviceProfile &profile, const KernelSample &kernel);

/// Predicted seconds of `kernel`: its measured median, its family's
/// predictor, its parts' sum, or the fallback (times the calibration factor
/// of its family).
double predictKernel(const DeviceProfile &profile, const KernelSample &kernel);

/// Predicted seconds `kernel` adds to a pass: its own time and the
/// profile's per-kernel overhead.
double predictCall(const DeviceProfile &profile, const KernelSample &kernel);

/// Whether the device's roofline says `kernel` is limited by arithmetic
/// (else by memory traffic).
bool isComputeBound(const DeviceFigures &device, const KernelSample &kernel);

/// Predicted seconds of one forward pass of kernels `kernels` at `batch`.
double predictPass(const DeviceProfile &profile,
                   const std::vector<KernelSample> &kernels, int64_t batch);

/// The non-negative θ minimising Σ_r (rows[r]·θ − targets[r])² (a handful
/// of columns: every subset is solved exactly).
std::vector<double> nonNegativeLeastSquares(const std::vector<std::vector<double>> &rows,
                                            const std::vector<double> &targets);

/// Fits `form` to `samples` (all of one family, each measured).
FamilyModel fitForm(Form form, const std::vector<KernelSample> &samples,
                    const DeviceFigures &device);

/// Fits every form and keeps the one with the lowest leave-one-out RMSPE
/// (the roofline alone when there are too few samples for the others).
FamilyModel fitFamily(const std::vector<KernelSample> &samples,
                      const DeviceFigures &device);

/// RMSPE (fraction) and share within ±10% of predictions against truths.
struct Accuracy {
  double rmspe = 0, within10 = 0;
  size_t count = 0;
};
Accuracy accuracy(const std::vector<double> &predicted,
                  const std::vector<double> &measured);

/// Median of `values` (which it reorders); 0 when empty.
double median(std::vector<double> values);

} // namespace qdsl::cost

#endif // QDSL_CODEGEN_LATENCY_COSTMODEL_H
