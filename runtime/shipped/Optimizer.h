//===- Optimizer.h - AdamW, its schedule, clipping and checkpoints -*- C++ -*-===//
//
// The optimiser of the paper's recipe, for the generated training programs:
// AdamW with decoupled weight decay (as torch.optim.AdamW), a learning rate
// that warms up linearly and then follows a cosine to its minimum (per
// step), gradient clipping by global norm (as torch.nn.utils.
// clip_grad_norm_), and checkpoints that hold the weights and the
// optimiser's state so that a resumed run continues exactly.
//
// Plain C++ (the generated projects carry it, as they carry TensorFiles).
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_RUNTIME_SHIPPED_OPTIMIZER_H
#define QDSL_RUNTIME_SHIPPED_OPTIMIZER_H

#include "Tensor.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace qdsl::rt {

struct AdamWOptions {
  double learningRate = 4e-3;
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;
  double weightDecay = 0.05;
};

/// Linear warm-up from 0 to `peak` over `warmupSteps`, then a cosine from
/// `peak` down to `minimum` at `totalSteps`.
struct LearningRateSchedule {
  double peak = 4e-3, minimum = 1e-6;
  int64_t warmupSteps = 0, totalSteps = 1;

  double at(int64_t step) const;
};

/// Whether a weight decays: not 1-D tensors (biases, norm scales and
/// offsets, layer scales), as timm's optimiser factory that the paper's
/// recipe uses.
bool decaysByDefault(const Tensor &weight);

class AdamW {
public:
  explicit AdamW(AdamWOptions options = {}) : options(options) {}

  /// One update of every weight in `weights` from its gradient in
  /// `gradients` (same names and shapes) at learning rate `lr`; with
  /// `updates`, only of the weights it accepts (a supernet's path). Each
  /// weight's bias correction counts its own updates: a supernet candidate
  /// updated one step in seven takes Adam's steps, not 2-3x larger ones.
  void step(TensorMap &weights, const TensorMap &gradients, double lr,
            const std::function<bool(const std::string &)> &updates = {});

  /// Steps taken (calls of `step`), and the updates of one weight.
  int64_t steps() const { return count; }
  int64_t updates(const std::string &name) const;
  const AdamWOptions &settings() const { return options; }

  /// The state as tensors `adamw.m.<name>` and `adamw.v.<name>`, and back;
  /// `restore` checks that the state fits `weights` and names what does not.
  /// Weights updated fewer times than `steps` (a supernet's) have their
  /// count in `partialUpdates` (save), by name; the others took every step.
  /// A count of 0 in `restore` is a weight of `weights` never updated.
  void save(TensorMap &into, std::map<std::string, int64_t> *partialUpdates = nullptr) const;
  bool restore(const TensorMap &from, const TensorMap &weights, int64_t steps,
               std::string &error, const std::map<std::string, int64_t> &partialUpdates = {});

private:
  AdamWOptions options;
  int64_t count = 0;
  TensorMap m, v;
  std::map<std::string, int64_t> updateCount;
};

/// The global L2 norm of all gradients (with `includes`, of those it
/// accepts: the weights a step updates); scales them to `maxNorm` when above
/// it (maxNorm ≤ 0: never). Returns the norm before clipping, which is not
/// finite when a gradient is not.
double clipGradientNorm(TensorMap &gradients, double maxNorm,
                        const std::function<bool(const std::string &)> &includes = {});

/// A training run's state between epochs.
struct Checkpoint {
  TensorMap weights;
  AdamW optimizer;
  int64_t epoch = 0;  // epochs completed
  int64_t step = 0;   // optimiser steps taken
  uint64_t seed = 0;
  std::string model;
  /// The run's flags that decide what a step does (batch, subset,
  /// augmentation, ...), by name: a resumed run must give the same.
  std::map<std::string, std::string> settings;
};

/// Writes weights, optimiser state and counters to one safetensors file,
/// atomically (a temporary file and a rename), so a crash leaves the last
/// checkpoint whole.
bool saveCheckpoint(const std::string &path, const Checkpoint &checkpoint,
                    std::string &error);
/// Reads a checkpoint; fails naming the file and what is missing or wrong.
bool loadCheckpoint(const std::string &path, Checkpoint &checkpoint,
                    std::string &error);
/// The same for a file's bytes already in memory; `path` is used in errors.
bool parseCheckpoint(const std::string &bytes, const std::string &path, Checkpoint &checkpoint,
                     std::string &error);

} // namespace qdsl::rt

#endif // QDSL_RUNTIME_SHIPPED_OPTIMIZER_H
