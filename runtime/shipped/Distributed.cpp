//===- Distributed.cpp - data-parallel training over MPI ------------------===//

#include "Distributed.h"

#ifdef QDSL_WITH_MPI
// The C API only: MPI's deprecated C++ bindings need a library of their own.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>

namespace qdsl::rt {

namespace {

int processRank = 0, processCount = 1, processLocalRank = 0;
bool mpiStarted = false;
double timeoutSeconds = 600;

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The process count a launcher announced in the environment, 0 if none:
// Open MPI's mpirun, MPICH's and Intel MPI's Hydra (and Slurm's PMI-2),
// MVAPICH, Slurm's srun.
int launcherCount(std::string &variable) {
  for (const char *name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE",
                           "SLURM_STEP_NUM_TASKS"})
    if (const char *value = std::getenv(name)) {
      int count = std::atoi(value);
      if (count > 1) {
        variable = std::string(name) + "=" + value;
        return count;
      }
    }
  return 0;
}

// The SIGTERM handler's message, double-buffered so the handler never reads
// one half-written.
char stopMessages[2][2048];
size_t stopLengths[2] = {0, 0};
std::atomic<int> stopCurrent{0};

void onTerminate(int) {
  int current = stopCurrent.load();
  if (stopLengths[current] > 0) {
    ssize_t written = ::write(STDERR_FILENO, stopMessages[current], stopLengths[current]);
    (void)written;
  }
  ::_exit(128 + SIGTERM);
}

#ifdef QDSL_WITH_MPI
std::string mpiError(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<size_t>(length));
}

// Waits for `requests`, polling, until `deadline` seconds pass.
bool waitAll(std::vector<MPI_Request> &requests, const char *what, std::string &error) {
  const double deadline = now() + timeoutSeconds;
  for (;;) {
    int done = 0;
    int code = MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done,
                           MPI_STATUSES_IGNORE);
    if (code != MPI_SUCCESS) {
      error = std::string(what) + " failed: " + mpiError(code) +
              " (another process of the job has ended?)";
      return false;
    }
    if (done)
      return true;
    if (now() > deadline) {
      error = std::string("no answer from the other processes for ") +
              std::to_string(static_cast<int>(timeoutSeconds)) + " s during " + what +
              ": one of them hangs or has died";
      return false;
    }
    std::this_thread::yield();
  }
}

bool startedOk(int code, const char *what, std::string &error) {
  if (code == MPI_SUCCESS)
    return true;
  error = std::string(what) + " failed to start: " + mpiError(code);
  return false;
}
#endif

} // namespace

bool Processes::start(int &argc, char **&argv, const std::string &program, std::string &error) {
  std::string variable;
  const int announced = launcherCount(variable);
#ifdef QDSL_WITH_MPI
  int code = MPI_Init(&argc, &argv);
  if (code != MPI_SUCCESS) {
    error = "cannot start MPI: " + mpiError(code);
    return false;
  }
  mpiStarted = true;
  // Errors come back to the caller, which names the step and ends the job.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &processRank);
  MPI_Comm_size(MPI_COMM_WORLD, &processCount);
  MPI_Comm host;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, processRank, MPI_INFO_NULL,
                          &host) == MPI_SUCCESS) {
    MPI_Comm_rank(host, &processLocalRank);
    MPI_Comm_free(&host);
  }
  if (announced > 1 && processCount != announced) {
    error = "the launcher started " + std::to_string(announced) + " processes (" + variable +
            ") but MPI sees " + std::to_string(processCount) +
            ": this build's MPI cannot talk to that launcher (use the mpirun of the MPI " +
            program + " was built with)";
    return false;
  }
#else
  (void)argc;
  (void)argv;
  if (announced > 1) {
    error = "started as one of " + std::to_string(announced) + " processes (" + variable +
            ") but this " + program +
            " was built without MPI, so every process would train alone: install an MPI "
            "(Debian: openmpi-bin libopenmpi-dev), rebuild the project (CMake finds it), "
            "or run one process";
    return false;
  }
#endif
  if (processCount > 1) {
    struct sigaction action {};
    action.sa_handler = onTerminate;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, nullptr);
  }
  return true;
}

void Processes::stop() {
#ifdef QDSL_WITH_MPI
  if (mpiStarted) {
    mpiStarted = false;
    MPI_Finalize();
  }
#endif
}

void Processes::abort(int status) {
#ifdef QDSL_WITH_MPI
  if (mpiStarted && processCount > 1) {
    setStopMessage("");  // this process said why already
    MPI_Abort(MPI_COMM_WORLD, status);
  }
#endif
  std::exit(status);
}

int Processes::rank() { return processRank; }
int Processes::count() { return processCount; }
int Processes::localRank() { return processLocalRank; }

bool Processes::withMpi() {
#ifdef QDSL_WITH_MPI
  return true;
#else
  return false;
#endif
}

std::string Processes::prefix() {
  return processCount > 1
             ? "rank " + std::to_string(processRank) + " of " + std::to_string(processCount) + ": "
             : "";
}

void Processes::setTimeout(double seconds) { timeoutSeconds = seconds; }

void Processes::setStopMessage(const std::string &message) {
  int next = 1 - stopCurrent.load();
  size_t length = std::min(message.size(), sizeof stopMessages[next]);
  std::memcpy(stopMessages[next], message.data(), length);
  stopLengths[next] = length;
  stopCurrent.store(next);
}

bool Processes::allOk(bool ok) {
#ifdef QDSL_WITH_MPI
  if (processCount > 1) {
    int value = ok ? 1 : 0;
    std::vector<MPI_Request> request(1);
    std::string error;
    if (MPI_Iallreduce(MPI_IN_PLACE, &value, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD,
                       &request[0]) != MPI_SUCCESS ||
        !waitAll(request, "agreeing to go on", error))
      return false;
    return value != 0;
  }
#endif
  return ok;
}

bool Processes::sum(std::vector<double> &values, std::string &error) {
#ifdef QDSL_WITH_MPI
  if (processCount > 1) {
    std::vector<MPI_Request> request(1);
    return startedOk(MPI_Iallreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()),
                                  MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &request[0]),
                   "a sum across processes", error) &&
           waitAll(request, "a sum across processes", error);
  }
#endif
  (void)values;
  (void)error;
  return true;
}

bool Processes::same(uint64_t value, const std::string &what, std::string &error) {
#ifdef QDSL_WITH_MPI
  if (processCount > 1) {
    uint64_t low = value, high = value;
    std::vector<MPI_Request> requests(2);
    if (!startedOk(MPI_Iallreduce(MPI_IN_PLACE, &low, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD,
                                &requests[0]),
                 "comparing checksums", error) ||
        !startedOk(MPI_Iallreduce(MPI_IN_PLACE, &high, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD,
                                &requests[1]),
                 "comparing checksums", error) ||
        !waitAll(requests, "comparing checksums", error))
      return false;
    if (low != high) {
      error = "the processes' " + what + " differ (checksums from " + std::to_string(low) +
              " to " + std::to_string(high) + ")";
      return false;
    }
  }
#endif
  (void)value;
  (void)what;
  (void)error;
  return true;
}

bool Processes::broadcast(std::string &bytes, std::string &error) {
#ifdef QDSL_WITH_MPI
  if (processCount > 1) {
    uint64_t size = bytes.size();
    std::vector<MPI_Request> request(1);
    if (!startedOk(MPI_Ibcast(&size, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD, &request[0]),
                 "a broadcast", error) ||
        !waitAll(request, "a broadcast", error))
      return false;
    bytes.resize(size);
    // MPI counts are ints: 1 GiB at a time.
    constexpr uint64_t kChunk = uint64_t(1) << 30;
    for (uint64_t at = 0; at < size; at += kChunk) {
      int n = static_cast<int>(std::min(kChunk, size - at));
      if (!startedOk(MPI_Ibcast(&bytes[at], n, MPI_BYTE, 0, MPI_COMM_WORLD, &request[0]),
                   "a broadcast", error) ||
          !waitAll(request, "a broadcast", error))
        return false;
    }
  }
#endif
  (void)bytes;
  (void)error;
  return true;
}

uint64_t weightChecksum(const TensorMap &weights, const std::vector<double> &more) {
  // FNV-1a over names and bytes.
  uint64_t hash = 1469598103934665603ULL;
  auto mix = [&hash](const void *data, size_t n) {
    const unsigned char *p = static_cast<const unsigned char *>(data);
    for (size_t i = 0; i < n; ++i)
      hash = (hash ^ p[i]) * 1099511628211ULL;
  };
  for (const auto &[name, tensor] : weights) {
    mix(name.data(), name.size());
    mix(tensor.data.data(), tensor.data.size() * sizeof(float));
  }
  mix(more.data(), more.size() * sizeof(double));
  return hash;
}

struct GradientAverager::Bucket {
  size_t begin = 0, end = 0;    // floats of `flat`
  size_t members = 0, ready = 0;
  bool running = false, done = false;
  double finished = 0;
#ifdef QDSL_WITH_MPI
  MPI_Request request = MPI_REQUEST_NULL;
  // Why the all-reduce could not start: MPI_Test on the null request it
  // leaves would report success, and the step would go on with this
  // process's own gradients as if they were the job's sum.
  std::string startError;
#endif
};

GradientAverager::GradientAverager(std::vector<std::string> names, std::vector<size_t> sizes,
                                   size_t extras, size_t bucketBytes)
    : names(std::move(names)), sizes(std::move(sizes)), extras(extras) {
  const size_t n = this->sizes.size();
  offsets.assign(n, 0);
  bucketOf.assign(n, 0);
  reported.assign(n, false);
  size_t at = 0;
  // The last gradients first: the backward pass finishes them first. A
  // bucket takes gradients until it holds `bucketBytes`, or would pass what
  // one MPI call can count.
  constexpr size_t kMostValues = size_t(1) << 30;
  for (size_t k = n; k-- > 0;) {
    const size_t held = buckets.empty() ? 0 : buckets.back().end - buckets.back().begin;
    if (buckets.empty() || held * sizeof(float) >= bucketBytes ||
        (held > 0 && held + this->sizes[k] + extras > kMostValues)) {
      buckets.emplace_back();
      buckets.back().begin = buckets.back().end = at;
    }
    offsets[k] = at;
    bucketOf[k] = buckets.size() - 1;
    at += this->sizes[k];
    buckets.back().end = at;
    ++buckets.back().members;
  }
  if (buckets.empty()) {
    buckets.emplace_back();
    buckets.back().begin = buckets.back().end = at;
  }
  // The extras close the last bucket, as one more member.
  extrasOffset = at;
  at += extras;
  buckets.back().end = at;
  ++buckets.back().members;
  flat.assign(at, 0.0f);
  stats.bytes = static_cast<double>(at * sizeof(float));
  stats.buckets = buckets.size();
}

GradientAverager::~GradientAverager() = default;

void GradientAverager::begin() {
  std::fill(reported.begin(), reported.end(), false);
  for (Bucket &b : buckets) {
    b.ready = 0;
    b.running = b.done = false;
#ifdef QDSL_WITH_MPI
    b.startError.clear();
#endif
  }
  launched = 0;
  earlyBytes = 0;
}

void GradientAverager::copyIn(size_t gradient, const float *values) {
  std::memcpy(flat.data() + offsets[gradient], values, sizes[gradient] * sizeof(float));
  reported[gradient] = true;
  ++buckets[bucketOf[gradient]].ready;
}

void GradientAverager::ready(size_t gradient, const float *values) {
  if (gradient >= reported.size() || reported[gradient])
    return;
  copyIn(gradient, values);
  launchReady();
}

#ifdef QDSL_WITH_MPI
namespace {
// QDSL_TEST_FAIL_ALLREDUCE=RANK,STEP (tests only, docs/DISTRIBUTED.md): the
// process of that rank fails to start the first bucket of its STEP-th
// gradient averaging of this run (from 1: the training step's number when
// the run did not resume, but every averaged step of a search counts) with
// MPI_ERR_OTHER instead of calling MPI, so that a test can check that the
// job stops and names the process and the error.
bool injectedFailure(int64_t step, size_t bucket) {
  static const std::pair<long, long> where = [] {
    const char *value = std::getenv("QDSL_TEST_FAIL_ALLREDUCE");
    long rank = -1, at = -1;
    if (value && std::sscanf(value, "%ld,%ld", &rank, &at) != 2)
      rank = at = -1;
    return std::make_pair(rank, at);
  }();
  return bucket == 0 && where.first == processRank && where.second == step;
}
} // namespace
#endif

void GradientAverager::launchReady() {
  while (launched < buckets.size() && buckets[launched].ready == buckets[launched].members) {
#ifdef QDSL_WITH_MPI
    // After a bucket that could not start, the others would pair with the
    // other processes' wrong buckets: none starts, and waitAll() reports.
    if (launched > 0 && !buckets[launched - 1].startError.empty())
      return;
#endif
    const size_t index = launched++;
    Bucket &b = buckets[index];
    b.running = true;
#ifdef QDSL_WITH_MPI
    if (processCount > 1) {
      int code = injectedFailure(stats.steps + 1, index)
                     ? MPI_ERR_OTHER
                     : MPI_Iallreduce(MPI_IN_PLACE, flat.data() + b.begin,
                                      static_cast<int>(b.end - b.begin), MPI_FLOAT, MPI_SUM,
                                      MPI_COMM_WORLD, &b.request);
      if (code != MPI_SUCCESS) {
        b.request = MPI_REQUEST_NULL;
        b.startError = mpiError(code);
      }
    }
#else
    (void)index;
#endif
  }
}

void GradientAverager::poll() {
#ifdef QDSL_WITH_MPI
  for (size_t k = 0; k < launched; ++k) {
    Bucket &b = buckets[k];
    if (b.done)
      continue;
    int done = 0;
    if (!b.startError.empty() ||
        MPI_Test(&b.request, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS || !done)
      return;  // waitAll() reports an error; later buckets wait behind this one
    b.done = true;
  }
#endif
}

bool GradientAverager::waitAll(std::string &error) {
#ifdef QDSL_WITH_MPI
  if (processCount > 1) {
    const double deadline = now() + timeoutSeconds;
    for (Bucket &b : buckets) {
      if (!b.startError.empty()) {
        error = "the gradient all-reduce could not start: " + b.startError;
        return false;
      }
      while (!b.done) {
        int done = 0;
        int code = MPI_Test(&b.request, &done, MPI_STATUS_IGNORE);
        if (code != MPI_SUCCESS) {
          error = "the gradient all-reduce failed: " + mpiError(code) +
                  " (another process of the job has ended?)";
          return false;
        }
        if (done) {
          b.done = true;
        } else if (now() > deadline) {
          error = "no answer from the other processes for " +
                  std::to_string(static_cast<int>(timeoutSeconds)) +
                  " s during the gradient all-reduce: one of them hangs or has died";
          return false;
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
#endif
  (void)error;
  return true;
}

bool GradientAverager::finish(TensorMap &gradients, std::vector<float> &extraValues,
                              std::string &error) {
  const double backwardEnd = now();
  for (size_t k = 0; k < launched; ++k)
    earlyBytes += static_cast<double>((buckets[k].end - buckets[k].begin) * sizeof(float));
  for (size_t g = 0; g < sizes.size(); ++g)
    if (!reported[g]) {
      const Tensor &t = gradients.at(names[g]);
      copyIn(g, t.data.data());
    }
  std::copy(extraValues.begin(), extraValues.begin() + std::min(extras, extraValues.size()),
            flat.begin() + extrasOffset);
  ++buckets.back().ready;
  launchReady();
  if (!waitAll(error))
    return false;
  const double waited = now() - backwardEnd;
  stats.exposedBest = stats.steps == 0 ? waited : std::min(stats.exposedBest, waited);
  stats.steps += 1;
  stats.exposed += waited;
  stats.early += (earlyBytes - stats.early) / static_cast<double>(stats.steps);
  const float scale = 1.0f / static_cast<float>(processCount);
  for (size_t g = 0; g < sizes.size(); ++g) {
    Tensor &t = gradients.at(names[g]);
    const float *from = flat.data() + offsets[g];
    for (size_t i = 0; i < sizes[g]; ++i)
      t.data[i] = from[i] * scale;
  }
  extraValues.assign(flat.begin() + extrasOffset, flat.begin() + extrasOffset + extras);
  return true;
}

bool GradientAverager::timeAlone(int repeats, std::string &error) {
  double best = 1e300;
  for (int r = 0; r < repeats; ++r) {
    begin();
    std::fill(flat.begin(), flat.end(), 0.0f);
    for (Bucket &b : buckets)
      b.ready = b.members;
    const double start = now();
    launchReady();
    if (!waitAll(error))
      return false;
    best = std::min(best, now() - start);
  }
  begin();
  stats.alone = best;
  return true;
}

} // namespace qdsl::rt
