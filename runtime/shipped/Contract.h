// What qdsl and the code it generates agree on, written once.
//
// The compiler (dialect, passes, code generation) and every generated
// project (model library, train, the Halide generators) include this header,
// so a value both sides read cannot drift apart: activation codes, activation
// ids, the metadata keys of the files both write. The names of the quadra.*
// attributes are here too, so that every name the IR and the files use is
// in one place (only the compiler reads those). docs/CONTRACTS.md describes
// the rest of the agreement: generator parameters, kernel names, file
// formats.
//
// Plain C++17, no MLIR or LLVM: it is copied into every project.
#ifndef QDSL_RUNTIME_SHIPPED_CONTRACT_H
#define QDSL_RUNTIME_SHIPPED_CONTRACT_H

#include <cstddef>

namespace qdsl::contract {

// --- The activation a pointwise kernel applies, or whose derivative it
// multiplies by (generator parameters `activation`, `activation_grad`).
enum class Activation : int { None = 0, Gelu = 1, Relu = 2 };

// --- Activation ids in model_kernels.cpp. Each tensor a pass computes in
// the arena has an id from kFirstArenaActivation on; these name the others.
inline constexpr int kFirstArenaActivation = 1;
inline constexpr bool isArenaActivation(int id) { return id >= kFirstArenaActivation; }
/// The pass's input images.
inline constexpr int kInputActivation = 0;
/// The model's output, written straight into the caller's array.
inline constexpr int kOutputActivation = -1;
/// A training step's gradient of weight `g` (of kGradientNames), written
/// straight into the caller's tensor: -2, -3, ...
inline constexpr int gradientActivation(std::size_t g) { return -2 - static_cast<int>(g); }
inline constexpr bool isGradientActivation(int id) { return id <= -2; }
inline constexpr std::size_t gradientOfActivation(int id) {
    return static_cast<std::size_t>(-2 - id);
}

// --- Attributes of a function: what it is ("model" or "space"), its
// latency limits by device (its `constraint latency(...)`), and for an
// architecture fixed out of a space the candidate picked for each choice.
inline constexpr char kKindAttr[] = "quadra.kind";
inline constexpr char kLatencyLimitsAttr[] = "quadra.latency_limits_ms";
inline constexpr char kPicksAttr[] = "quadra.picks";

// --- A supernet (--quadra-supernet, docs/NAS.md): every candidate of every
// choice inlined, gated. On the function: one dictionary per choice layer
// {layer, candidates, gates}. On each op of candidate c of choice l:
// `quadra.path = [l, c]`, or `[l, c, 1]` on the copy of the candidate's
// forward ops that the architecture step recomputes for its gate gradient.
// On the layer scale that gates candidate c: `quadra.gate = [l, c]`.
inline constexpr char kSupernetAttr[] = "quadra.supernet";
inline constexpr char kPathAttr[] = "quadra.path";
inline constexpr char kGateAttr[] = "quadra.gate";

// --- Attributes of the training step that --quadra-autodiff builds
// (docs/TRAINING.md). On the step function: the weight names of its
// gradient results, the model it was built from and its memory policy.
inline constexpr char kGradientsAttr[] = "quadra.gradients";
inline constexpr char kTrainStepOfAttr[] = "quadra.train_step_of";
inline constexpr char kMemoryPolicyAttr[] = "quadra.memory_policy";
/// On an op of its backward pass, the position of the forward op it serves;
/// on a value the backward pass computes again instead of keeping it.
inline constexpr char kBackwardOfAttr[] = "quadra.backward_of";
inline constexpr char kRecomputeAttr[] = "quadra.recompute";

// --- Metadata keys of the safetensors files both sides write and read.
/// The model a weights, gradients or checkpoint file belongs to.
inline constexpr char kModelKey[] = "qdsl.model";
/// The loss of the step whose gradients a file holds (qdsl run --train,
/// train --gradients).
inline constexpr char kLossKey[] = "qdsl.loss";
/// The seed a weights file was initialised (or a run trained) with.
inline constexpr char kSeedKey[] = "qdsl.seed";
/// Every key qdsl writes starts with this.
inline constexpr char kKeyPrefix[] = "qdsl.";

// --- Ranges of the generated programs' flags (train, search) that qdsl
// search also checks before it spends minutes building them: wide enough
// for any real run, narrow enough that step counts cannot overflow.
inline constexpr long long kMaxEpochs = 100000;
inline constexpr long long kMaxBatch = 65536;
/// Examples of a subset or a validation split.
inline constexpr long long kMaxExamples = 1LL << 31;
/// Classes of a data set (labels are int32; a folder has one subfolder each).
inline constexpr long long kMaxClasses = 1LL << 20;

// --- The most candidates one layer of a supernet may have: a path's
// recompute set is one 64-bit mask a layer (qdsl_model.cpp's setPaths).
inline constexpr std::size_t kMaxSupernetCandidates = 64;

// --- A device's name: what `constraint latency("NAME")` gives, the search
// program's --limit NAME=MS, and the file NAME.json a profile is looked up
// as. Letters, digits, '-', '_' and '.', not starting with '.', at most
// kMaxDeviceName characters: it names a file, never a path.
inline constexpr std::size_t kMaxDeviceName = 64;
inline constexpr bool isDeviceName(const char *name, std::size_t size) {
    if (size == 0 || size > kMaxDeviceName || name[0] == '.')
        return false;
    for (std::size_t i = 0; i < size; ++i) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok)
            return false;
    }
    return true;
}

}  // namespace qdsl::contract

#endif  // QDSL_RUNTIME_SHIPPED_CONTRACT_H
