//===- Distributed.h - data-parallel training over MPI -----------*- C++ -*-===//
//
// The processes of a data-parallel run (`mpirun -np N train ...`, `srun`),
// for the generated training programs. Every process holds the whole model,
// computes the gradients of its shard of each global batch, and the
// gradients are averaged across processes before clipping and AdamW, so all
// processes take the same step. The averaging runs as non-blocking
// all-reduces in buckets, each started as soon as the backward pass has
// finished its gradients (GradientAverager), so communication overlaps the
// rest of the backward pass.
//
// Built with QDSL_WITH_MPI (CMake's FindMPI found an implementation) this is
// MPI; built without, a program is one process, and one started by an MPI
// launcher refuses to run rather than train N unrelated copies.
//
// Every collective here polls with a deadline: a process that died or hangs
// ends the job with a message instead of blocking the others forever.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_RUNTIME_SHIPPED_DISTRIBUTED_H
#define QDSL_RUNTIME_SHIPPED_DISTRIBUTED_H

#include "Tensor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qdsl::rt {

/// The job's processes, started once at the top of main.
class Processes {
public:
  /// Starts MPI (when built with it). Fails, with a message for the user,
  /// when a launcher started the program but it was built without MPI, or
  /// when the launcher's process count and MPI's disagree (a launcher
  /// whose MPI this build cannot talk to).
  static bool start(int &argc, char **&argv, const std::string &program, std::string &error);
  /// Ends MPI; every process calls it on the way out (not after abort()).
  static void stop();
  /// Ends the whole job at once with `status` (MPI_Abort): for an error
  /// found by one process while the others wait in a collective.
  [[noreturn]] static void abort(int status);

  static int rank();
  static int count();
  /// This process's rank among those on its host (which GPU it takes).
  static int localRank();
  static bool distributed() { return count() > 1; }
  /// Whether the program was built with MPI.
  static bool withMpi();
  /// "rank R of N: " when distributed, "" otherwise: how messages of one
  /// process start.
  static std::string prefix();

  /// How long a collective may wait for the other processes before the job
  /// is ended as hung (seconds; default 600).
  static void setTimeout(double seconds);

  /// What a process prints when the launcher stops it (another process of
  /// the job died, say): kept up to date by the training loop, printed by
  /// the SIGTERM handler. Empty: nothing is printed.
  static void setStopMessage(const std::string &message);

  /// Whether `ok` holds on every process (a logical AND); the way the
  /// phases before training agree that all of them can go on.
  static bool allOk(bool ok);
  /// Element-wise sums across processes, in place.
  static bool sum(std::vector<double> &values, std::string &error);
  /// Whether `value` is the same on every process; the error says that
  /// the processes' `what` differ.
  static bool same(uint64_t value, const std::string &what, std::string &error);
  /// Rank 0's `bytes` on every process.
  static bool broadcast(std::string &bytes, std::string &error);
};

/// A checksum of every weight's bytes, in name order, and of `more`
/// (a search's architecture parameters): equal on two processes when their
/// values are bit for bit equal.
uint64_t weightChecksum(const TensorMap &weights, const std::vector<double> &more = {});

/// Averages a training step's gradients across processes in buckets of
/// about `bucketBytes` (at most 2^30 values: MPI counts are ints), in the reverse of the gradients' order (the order
/// the backward pass finishes them). Extra values (the loss, the number of
/// correct answers) ride in the last bucket and are summed, not averaged.
///
///   averager.begin();
///   ... model.trainStep(), its listener calling averager.ready(g, values)
///       as each gradient is final, and averager.poll() after each kernel
///   averager.finish(gradients, extras, error);
///
/// Buckets start in a fixed order on every process (a bucket waits for the
/// one before it), as MPI requires of collectives.
class GradientAverager {
public:
  GradientAverager(std::vector<std::string> names, std::vector<size_t> sizes, size_t extras,
                   size_t bucketBytes);
  ~GradientAverager();

  void begin();
  void ready(size_t gradient, const float *values);
  void poll();
  /// Takes the gradients not yet reported from `gradients`, waits for every
  /// bucket, and writes the averages back into `gradients` and the sums of
  /// the extras into `extras`.
  bool finish(TensorMap &gradients, std::vector<float> &extras, std::string &error);

  struct Statistics {
    int64_t steps = 0;
    double bytes = 0;          // per step
    size_t buckets = 0;
    double exposed = 0;        // seconds waited after the backward pass ended, all steps
    double exposedBest = 0;    // the least of one step (the others add the processes' skew)
    double early = 0;          // bytes per step started before the backward pass ended
    double alone = 0;          // seconds of the same all-reduces with nothing to hide them
  };
  const Statistics &statistics() const { return stats; }

  /// Times the step's all-reduces on their own (the best of `repeats`),
  /// into statistics().alone: what the overlap is measured against. A
  /// collective: every process calls it at the same point.
  bool timeAlone(int repeats, std::string &error);

private:
  struct Bucket;
  void launchReady();
  bool waitAll(std::string &error);
  void copyIn(size_t gradient, const float *values);

  std::vector<std::string> names;
  std::vector<size_t> sizes, offsets;
  std::vector<size_t> bucketOf;
  std::vector<Bucket> buckets;
  std::vector<float> flat;
  std::vector<bool> reported;
  size_t extras, extrasOffset = 0;
  size_t launched = 0;
  double earlyBytes = 0;
  Statistics stats;
};

} // namespace qdsl::rt

#endif // QDSL_RUNTIME_SHIPPED_DISTRIBUTED_H
