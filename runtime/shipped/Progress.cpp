//===- Progress.cpp - a training run's progress bar and metrics log -------===//

#include "Progress.h"
#include <sstream>
#include <filesystem>
#include "TensorFiles.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <sstream>

namespace qdsl::rt {

Clock steadyClock() {
  return [] {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
  };
}

std::string formatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0)
    return "?";
  int64_t s = int64_t(seconds + 0.5);
  if (s >= 3600)
    return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

ProgressBar::ProgressBar(std::ostream &out, bool terminal, std::string label,
                         int64_t total, Clock clock)
    : out(out), terminal(terminal), label(std::move(label)),
      total(std::max<int64_t>(1, total)), clock(std::move(clock)), start(this->clock()) {}

std::string ProgressBar::line(int64_t done, const std::string &status) const {
  double elapsed = clock() - start;
  double rate = elapsed > 0 ? done / elapsed : 0;
  double left = rate > 0 ? (total - done) / rate : NAN;
  std::string numbers = fmt::format("{}/{} {:.2f} it/s, {} left, {} elapsed", done, total, rate,
                                    formatDuration(left), formatDuration(elapsed));
  std::string text = label + " ";
  if (terminal) {
    const int width = 24;
    int filled = int(width * done / total);
    text += "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
  }
  text += numbers;
  if (!status.empty())
    text += "  " + status;
  return text;
}

void ProgressBar::update(int64_t done, const std::string &status) {
  done = std::clamp<int64_t>(done, 0, total);
  if (terminal) {
    // At most ten redraws a second: a fast loop must not drown in output.
    double now = clock();
    if (lastDraw >= 0 && now - lastDraw < 0.1 && done < total)
      return;
    lastDraw = now;
    out << "\r\033[K" << line(done, status) << std::flush;
    return;
  }
  int64_t tenth = done * 10 / total;
  if (tenth == lastTenth || tenth == 0)
    return;
  lastTenth = tenth;
  out << line(done, status) << "\n" << std::flush;
}

void ProgressBar::finish(const std::string &status) {
  if (terminal) {
    out << "\r\033[K" << line(total, status) << "\n" << std::flush;
  } else if (lastTenth < 10) {
    lastTenth = 10;
    out << line(total, status) << "\n" << std::flush;
  }
}

MetricsLog::~MetricsLog() {
  if (file)
    std::fclose(file);
}

bool MetricsLog::open(const std::string &path, std::string &error, bool append) {
  file = std::fopen(path.c_str(), append ? "a" : "w");
  if (!file) {
    error = "cannot open the metrics log '" + path + "': " + std::strerror(errno);
    return false;
  }
  return true;
}

bool MetricsLog::resume(const std::string &path, int64_t step, int64_t epoch,
                        std::string &error) {
  std::string text, kept;
  int64_t dropped = 0;
  if (!readFileBytes(path, text, error, uint64_t(1) << 30)) {
    // A run resumed without its log starts one.
    if (std::filesystem::exists(path))
      return false;
    error.clear();
  }
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_object() && record.contains("step") && record["step"].is_number() &&
        record["step"].get<double>() > static_cast<double>(step)) {
      ++dropped;
      continue;
    }
    kept += line + "\n";
  }
  if (dropped > 0 && !writeFileAtomically(path, kept, error))
    return false;
  return open(path, error, /*append=*/true) &&
         write("resume", {{"step", static_cast<double>(step)},
                          {"epoch", static_cast<double>(epoch)},
                          {"dropped_records", static_cast<double>(dropped)}});
}

bool MetricsLog::write(const std::string &event, const std::map<std::string, double> &numbers,
                       const std::map<std::string, std::string> &texts) {
  if (!file)
    return false;
  nlohmann::json object = {{"event", event}};
  for (const auto &[key, value] : numbers)
    object[key] = std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
  for (const auto &[key, value] : texts)
    object[key] = value;
  // A label that is not UTF-8 must not abort the run.
  std::string text = object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  return std::fwrite(text.data(), 1, text.size(), file) == text.size() &&
         std::fflush(file) == 0;
}

} // namespace qdsl::rt
