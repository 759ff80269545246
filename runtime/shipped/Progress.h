//===- Progress.h - a training run's progress bar and metrics log -*- C++ -*-===//
//
// What a generated training program shows and records: on a terminal, one
// line redrawn in place (a bar, steps done, rate, time left, the latest
// metrics); elsewhere (a log file, CI), a plain line every tenth of the
// way, so logs stay short. Metrics go to a JSON-lines file, one object per
// event, flushed as written so a crash loses nothing already reported.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_RUNTIME_SHIPPED_PROGRESS_H
#define QDSL_RUNTIME_SHIPPED_PROGRESS_H

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <ostream>
#include <string>

namespace qdsl::rt {

/// Seconds since some fixed point; tests pass their own.
using Clock = std::function<double()>;
Clock steadyClock();

/// `h:mm:ss`, or `m:ss` under an hour.
std::string formatDuration(double seconds);

class ProgressBar {
public:
  ProgressBar(std::ostream &out, bool terminal, std::string label, int64_t total,
              Clock clock = steadyClock());

  /// `done` of `total` steps finished; `status` is shown after the numbers.
  void update(int64_t done, const std::string &status = "");
  /// Ends the line (terminal) or prints the last one (plain).
  void finish(const std::string &status = "");

private:
  std::string line(int64_t done, const std::string &status) const;

  std::ostream &out;
  bool terminal;
  std::string label;
  int64_t total;
  Clock clock;
  double start;
  int64_t lastTenth = -1;
  double lastDraw = -1;
};

/// Appends JSON objects to a file, one a line.
class MetricsLog {
public:
  MetricsLog() = default;
  ~MetricsLog();
  MetricsLog(const MetricsLog &) = delete;
  MetricsLog &operator=(const MetricsLog &) = delete;

  /// Opens `path`: for appending when `append` (a resumed run continues
  /// its log), else emptied (a new run never mixes with an old one).
  bool open(const std::string &path, std::string &error, bool append = true);
  /// Opens a resumed run's log: the records of steps after `step` (those
  /// of a run that stopped before its next checkpoint, which the resumed
  /// run makes again) are removed, and a {"event": "resume"} record marks
  /// where the run continues, so that no step is in the log twice.
  bool resume(const std::string &path, int64_t step, int64_t epoch, std::string &error);
  /// Writes {"event": event, ...numbers, ...texts}; false on a write error.
  bool write(const std::string &event, const std::map<std::string, double> &numbers,
             const std::map<std::string, std::string> &texts = {});

private:
  std::FILE *file = nullptr;
};

} // namespace qdsl::rt

#endif // QDSL_RUNTIME_SHIPPED_PROGRESS_H
