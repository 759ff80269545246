//===- HostMachine.h - where a device profile was measured -------*- C++ -*-===//
//
// A profile measured on one machine predicts another machine of the "same"
// class badly: instances of one cloud CPU model differ by ~30% in FMA peak.
// So a measured profile records where it was made (the CPU, the threads,
// the FMA peak and memory bandwidth measured at that moment, the qdsl and
// Halide versions, the identity of the kernel generators), and the tools
// that read it compare that record with the machine they run on.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_CODEGEN_LATENCY_HOSTMACHINE_H
#define QDSL_CODEGEN_LATENCY_HOSTMACHINE_H

#include <string>
#include <vector>

namespace qdsl::cost {

struct MachineRecord {
  /// /proc/cpuinfo's model name (or "unknown").
  std::string cpuModel;
  /// CPUs the OS offers, and the worker threads the profile was timed with.
  int logicalCpus = 0;
  int threads = 0;
  /// Measured when the profile was made: fp32 FMA GFLOP/s on `threads`
  /// threads, and a streaming (triad) bandwidth in GB/s. 0: not measured.
  double fmaPeakGflops = 0, bandwidthGBs = 0;
  std::string qdslVersion;
  /// Halide's version as the profiled projects found it ("" when unknown).
  std::string halideVersion;
  /// A digest of every Halide generator source qdsl ships (codegen/halide):
  /// equal digests mean equal kernel code for equal configurations.
  std::string generators;
  /// UTC, ISO 8601.
  std::string measuredAt;
  /// How busy the machine was while the profile's passes were timed: the
  /// median over passes of (median round / fastest round − 1). 0.03-0.05
  /// on this machine class when quiet, 0.2 and more when neighbours load
  /// it; -1 when not recorded.
  double roundSpread = -1;
};

/// The spread above `quiet` that makes a timing suspect.
inline constexpr double kBusyRoundSpread = 0.10;

/// The version of this qdsl.
const char *qdslVersion();

/// fp32 FMA GFLOP/s of this machine on `threads` threads, best of a few
/// short runs lasting about `seconds` in all, on vectors of `vectorFloats`
/// (a target's width: 16 uses AVX-512 where the CPU has it; else AVX2+FMA
/// where it has that, else 128-bit vectors). 0 if it cannot be measured.
double measureFmaPeak(int threads, double seconds = 0.3, int vectorFloats = 8);

/// Streaming bandwidth (a triad over arrays far larger than the caches) on
/// `threads` threads, GB/s.
double measureBandwidth(int threads);

/// This machine, measured now for `threads` threads and a target of
/// `vectorFloats` lanes (the FMA peak is the target's); `generators` and
/// `halideVersion` come from the caller (they live in the code generator).
MachineRecord describeThisMachine(int threads, const std::string &generators,
                                  const std::string &halideVersion, int vectorFloats = 8);

/// How `here` differs from `recorded` in ways that change kernel times, one
/// phrase each ("FMA peak 151 GFLOP/s here, 192 when profiled (-21%)");
/// empty when it does not. The FMA peak counts when it differs by more than
/// `tolerance` (a fraction), the bandwidth by more than twice that; unknown
/// fields of either side are skipped.
std::vector<std::string> machineDifferences(const MachineRecord &recorded,
                                            const MachineRecord &here,
                                            double tolerance = 0.10);

} // namespace qdsl::cost

#endif // QDSL_CODEGEN_LATENCY_HOSTMACHINE_H
