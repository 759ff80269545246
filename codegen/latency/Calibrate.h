//===- Calibrate.h - a device profile carried to this machine ----*- C++ -*-===//
//
// `qdsl profile --calibrate BASE.json` times a few architectures here
// instead of the many a full profile needs, and carries BASE's predictors
// over: each kernel family's time is scaled by the ratio of what its
// kernels took here to what BASE predicts for them, per batch size, and
// the time outside the kernels likewise. Machines of one class differ
// mostly by a factor per kind of work (clock, memory, cache sizes) and by
// how well work spreads over their threads (which the batch changes);
// docs/COST_MODEL.md measures how well.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_LATENCY_CALIBRATE_H
#define QDSL_CODEGEN_LATENCY_CALIBRATE_H

#include "codegen/latency/ProfileFit.h"

namespace qdsl::cost {

/// `base` carried to the kernels and passes timed here (`passes`, kernels
/// with their measured seconds): a factor per family and batch (the overall
/// one for a family no timed kernel belongs to) that predictKernel applies,
/// the overheads scaled by the ratio of the time outside the kernels here
/// to what `base` predicts, `passes` as the profile's passes, and the
/// record's errors (its `base` and `seconds` are left for the caller).
/// `base` must not be calibrated itself.
DeviceProfile calibrateProfile(const DeviceProfile &base, const std::vector<TimedPass> &passes);

/// Prints the factors and the errors on the calibration kernels and passes
/// before and after.
void printCalibration(const CalibrationRecord &record, llvm::raw_ostream &os);

/// Whether `calibrated` is a calibration of `base`: it records `base`'s
/// file name and source and, when both say, the machine and the time
/// `base` was measured (a base re-measured elsewhere under the same name
/// is another base). What qdsl search reuses an earlier calibration on.
bool isCalibrationOf(const DeviceProfile &calibrated, const DeviceProfile &base);

} // namespace qdsl::cost

#endif // QDSL_CODEGEN_LATENCY_CALIBRATE_H
