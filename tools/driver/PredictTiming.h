//===- PredictTiming.h - how qdsl times a generated predict -----*- C++ -*-===//
//
// One protocol for every latency qdsl measures (qdsl profile's fits and
// calibrations, qdsl search's measurement of the derived model): `predict`
// on pinned threads, one untimed warm-up pass, then timed passes whose
// seconds, end to end and per kernel, it writes with --profile-json. Rounds
// of such runs keep the fastest round's median: other tenants of a shared
// machine only ever slow a round down.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_TOOLS_DRIVER_PREDICTTIMING_H
#define QDSL_TOOLS_DRIVER_PREDICTTIMING_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/JSON.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace qdsl::driver {

/// Bounds on the JSON files qdsl reads back from itself and its programs:
/// far above what they write, low enough that a damaged or hostile file
/// cannot exhaust memory or the parser's recursion.
constexpr uint64_t kMaxJSONBytes = uint64_t(64) << 20;
constexpr int kMaxJSONDepth = 32;

/// The JSON of `path`, refused past the bounds above; null with `error`
/// naming the file ("not a file WRITER wrote" for one out of bounds).
llvm::json::Value readBoundedJSON(const std::string &path, llvm::StringRef writer,
                                  std::string &error);

/// Seeded standard-normal float32 values of `shape` into the .npy `path`.
bool writeRandomInput(const std::string &path, const std::vector<int64_t> &shape,
                      unsigned seed, std::string &error);

struct PredictTimingOptions {
  unsigned threads = 1;
  /// Timed passes per run (after one untimed).
  unsigned repeat = 5;
  /// Weights to load; empty: predict's seeded initialisers.
  std::string weights;
  /// Names the run's files in the work directory: STEM.json (the timings),
  /// STEM-output.npy, STEM.log (predict's output).
  std::string stem = "timing";
};

/// What one run of predict --profile-json measured, in seconds per timed
/// pass: end to end, and for each kernel by name.
struct PredictTimes {
  std::vector<double> runs;
  std::map<std::string, std::vector<double>> kernels;
};

/// Runs `predict` on `input` once as above, its files in `work`.
bool timePredict(const std::string &predict, const std::string &input, const std::string &work,
                 const PredictTimingOptions &options, PredictTimes &times, std::string &error);

/// End-to-end milliseconds of `predict` on seeded input of `shape` (batch
/// first): the fastest of `rounds` runs' medians.
bool measureLatency(const std::string &predict, const std::vector<int64_t> &shape,
                    const std::string &work, const PredictTimingOptions &options,
                    unsigned rounds, double &medianMs, std::string &error);

} // namespace qdsl::driver

#endif // QDSL_TOOLS_DRIVER_PREDICTTIMING_H
