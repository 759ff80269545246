// The parts of a compiled model that do not depend on the model: weights,
// activation memory, error handling and profiling around the kernels that
// model_kernels.cpp runs.
#include "qdsl_model_internal.h"

#include "runtime/shipped/ArenaPlanner.h"
#include "runtime/shipped/Contract.h"
#include "runtime/shipped/Parallel.h"
#include "runtime/shipped/TensorFiles.h"

#include "HalideRuntime.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <set>

namespace qdsl_model {

namespace {

// Halide reports kernel errors through a global handler; keep the message of
// the failing call for the error we return.
thread_local std::string halide_message;
std::once_flag handler_once;

void capture_halide_error(void *, const char *message) {
    halide_message = message ? message : "";
    while (!halide_message.empty() && halide_message.back() == '\n')
        halide_message.pop_back();
}

}  // namespace

struct Model::State {
    qdsl::rt::TensorMap weights;
    std::map<std::string, Buffer<float>> weight_buffers;
    // Packed linear weights by name, "^T" appended for a transpose.
    std::map<std::string, std::vector<float>> packed;
    std::map<std::string, Buffer<float>> packed_buffers;
    // Activation memory kept between passes: the model's and its training
    // step's.
    Arena forward_arena, train_arena;
    bool ready = false;
    // A supernet's path (Model::setPaths); empty: every candidate runs.
    std::vector<int> active;
    std::vector<uint64_t> recomputed;
    GradientListener listener;
    // Which gradient (index in kGradientNames) each training result id is.
    std::map<int, int> gradient_of_result;

    // Views every weight with its dimensions reversed (Halide's order) and
    // packs linear weights into panels [C_out / p][C_in][p].
    void prepare() {
        weight_buffers.clear();
        packed.clear();
        packed_buffers.clear();
        for (auto &[name, tensor] : weights) {
            std::vector<int> dims(tensor.shape.rbegin(), tensor.shape.rend());
            if (dims.empty())
                dims.push_back(1);
            Buffer<float> view(tensor.data.data(), dims);
            view.set_host_dirty();
            weight_buffers.emplace(name, std::move(view));
        }
        pack();
        ready = true;
    }

    // (Re)packs the linear weights: after loading, and after every
    // optimiser step; with `changed`, only the weights it names (a
    // supernet's step changes one path's).
    void pack(const std::function<bool(const std::string &)> *changed = nullptr) {
        for (const PackSpec &spec : kPackSpecs) {
            if (changed && !(*changed)(spec.name))
                continue;
            const qdsl::rt::Tensor &w = weights.at(spec.name);
            // A transposed pack reads w[i, o] as the weight [out, in] of
            // the gradient's product.
            const size_t rows = static_cast<size_t>(w.shape[0]), cols = static_cast<size_t>(w.shape[1]);
            int in = static_cast<int>(spec.transposed ? cols : rows);
            int out = static_cast<int>(spec.transposed ? rows : cols);
            int p = spec.panel, panels = out / p;
            std::string key = packed_key(spec.name, spec.transposed);
            std::vector<float> &data = packed[key];
            data.resize(static_cast<size_t>(in) * out);
            const float *from = w.data.data();
            float *to = data.data();
            auto pack_panels = [&, p, in](size_t first, size_t last) {
                for (size_t q = first; q < last; ++q)
                    for (int i = 0; i < in; ++i)
                        for (int j = 0; j < p; ++j) {
                            size_t o = q * p + j;
                            to[(q * in + i) * p + j] =
                                spec.transposed ? from[o * cols + i] : from[i * cols + o];
                        }
            };
            qdsl::rt::forEachRange(static_cast<size_t>(panels), pack_panels,
                                   std::max<size_t>(1, (size_t(1) << 16) / (size_t(in) * p)));
            auto it = packed_buffers.find(key);
            if (it == packed_buffers.end())
                it = packed_buffers.emplace(key, Buffer<float>(data.data(), {p, in, panels})).first;
            it->second.set_host_dirty();
        }
        for (auto &entry : weight_buffers)
            if (!changed || (*changed)(entry.first))
                entry.second.set_host_dirty();
    }

    bool can_run(int batch, std::string &error) const { return check_can_run(ready, batch, error); }

    static std::string packed_key(const std::string &name, bool transposed) {
        return transposed ? name + "^T" : name;
    }
};

Model::Model() : state(new State) {
    std::call_once(handler_once, [] { halide_set_error_handler(capture_halide_error); });
}

Model::~Model() = default;

const ModelInfo &Model::info() const { return kModelInfo; }

void Model::setThreads(int threads) {
    halide_set_num_threads(threads);
    qdsl::rt::setWorkerThreads(threads);
}

void Model::initialize(uint64_t seed) {
    state->weights = initial_weights(seed);
    state->prepare();
}

bool Model::loadWeights(const std::string &path, std::string &error) {
    qdsl::rt::TensorMap loaded;
    if (!read_weights(path, loaded, error))
        return false;
    state->weights = std::move(loaded);
    state->prepare();
    return true;
}

bool Model::setWeights(qdsl::rt::TensorMap loaded, const std::string &path,
                       std::string &error) {
    if (!check_weights(loaded, path, error))
        return false;
    state->weights = std::move(loaded);
    state->prepare();
    return true;
}

bool Model::saveWeights(const std::string &path, std::string &error) const {
    return write_weights(path, state->weights, error);
}

bool Model::setPrecision(const std::string &precision, std::string &error) {
    if (precision == "fp32")
        return true;
    if (precision != "tf32" && precision != "bf16")
        error = "'" + precision + "': expected fp32, tf32 or bf16";
    else
        error = "'" + precision + "': the " + kModelInfo.target +
                " target computes in fp32 only (tf32 and bf16 are the cuda target's)";
    return false;
}

bool Model::forward(const float *input, int batch, float *output, std::string &error,
                    Profile *profile) {
    if (!state->can_run(batch, error))
        return false;
    state->forward_arena.prepare(kForwardBuffers, batch, !state->active.empty());
    Pass pass(*state, state->forward_arena, batch, input, output, profile);
    if (run_kernels(pass))
        return true;
    error = pass.error();
    return false;
}

qdsl::rt::TensorMap &Model::weights() { return state->weights; }

void Model::weightsChanged() { state->pack(); }

void Model::weightsChanged(const std::function<bool(const std::string &)> &changed) {
    state->pack(&changed);
}

uint64_t Model::trainingArenaBytes() const { return state->train_arena.size; }

bool Model::canTrain() { return !kTrainResults.empty(); }

const char *Model::trainingSetup() { return kTrainingSetup; }

const std::vector<std::string> &Model::gradientNames() { return kGradientNames; }

// The CPU targets average host gradients (the caller's MPI all-reduce).
bool Model::canAverageOnDevice() { return false; }
bool Model::selectDevice(int, std::string &) { return true; }
bool Model::newDeviceGroupId(std::string &, std::string &error) {
    error = "the " + kModelInfo.target + " target has no device-side all-reduce";
    return false;
}
bool Model::joinDeviceGroup(int, int, const std::string &, std::string &error) {
    std::string none;
    return newDeviceGroupId(none, error);
}

void Model::setGradientListener(GradientListener listener) {
    state->listener = std::move(listener);
    state->gradient_of_result.clear();
    for (size_t g = 0; g < kGradientNames.size(); ++g)
        state->gradient_of_result[kTrainResults[g + 2]] = static_cast<int>(g);
}

bool Model::trainStep(const float *input, const int32_t *labels, int batch, float &loss,
                      float *logits, qdsl::rt::TensorMap &gradients, std::string &error,
                      Profile *profile) {
    if (!canTrain()) {
        error = "this project has no training step: compile the model with qdsl compile --train";
        return false;
    }
    if (!state->can_run(batch, error) || !check_labels(labels, batch, error))
        return false;
    state->train_arena.prepare(kTrainBuffers, batch, !state->active.empty());
    std::vector<float *> outputs;
    for (const std::string &name : kGradientNames) {
        const qdsl::rt::Tensor &w = state->weights.at(name);
        qdsl::rt::Tensor &grad = gradients[name];
        grad.shape = w.shape;
        grad.data.resize(w.data.size());
        outputs.push_back(grad.data.data());
    }
    Pass pass(*state, state->train_arena, batch, input, nullptr, profile, labels, outputs);
    if (!run_train_kernels(pass)) {
        error = pass.error();
        return false;
    }
    loss = pass.data(kTrainResults[0])[0];
    const float *out = pass.data(kTrainResults[1]);
    std::copy(out, out + kModelInfo.output_size() * static_cast<size_t>(batch), logits);
    for (size_t g = 0; g < kGradientNames.size(); ++g)
        if (!qdsl::contract::isGradientActivation(kTrainResults[g + 2])) {
            const float *data = pass.data(kTrainResults[g + 2]);
            std::copy(data, data + gradients[kGradientNames[g]].data.size(), outputs[g]);
        }
    return true;
}

void Arena::prepare(const std::vector<BufferSpec> &specs, int n, bool one_path) {
    if (table == &specs && batch == n && exclusive == one_path)
        return;
    size = plan_arena(specs, n, one_path, offset, bytes);
    // Over-allocated by an alignment so that every buffer starts on one.
    const size_t align = qdsl::rt::kArenaAlignment / sizeof(float);
    memory.clear();
    memory.shrink_to_fit();
    memory.resize(size / sizeof(float) + align);
    uintptr_t start = reinterpret_cast<uintptr_t>(memory.data());
    base = reinterpret_cast<float *>((start + qdsl::rt::kArenaAlignment - 1) /
                                     qdsl::rt::kArenaAlignment * qdsl::rt::kArenaAlignment);
    table = &specs;
    batch = n;
    exclusive = one_path;
}

const std::vector<SearchLayer> &Model::searchLayers() { return kSearchLayers; }

bool Model::setPaths(const std::vector<int> &active, const std::vector<uint64_t> &recomputed,
                     std::string &error) {
    if (active.empty() && recomputed.empty()) {
        state->active.clear();
        state->recomputed.clear();
        return true;
    }
    if (kSearchLayers.empty()) {
        error = kModelInfo.name + " is not a supernet (compile a space with qdsl compile "
                "--search): it has no paths to set";
        return false;
    }
    if (active.size() != kSearchLayers.size() || recomputed.size() != kSearchLayers.size()) {
        error = "a path needs one candidate and one recompute mask per search layer (" +
                std::to_string(kSearchLayers.size()) + "), got " + std::to_string(active.size()) +
                " and " + std::to_string(recomputed.size());
        return false;
    }
    for (size_t l = 0; l < active.size(); ++l) {
        const SearchLayer &layer = kSearchLayers[l];
        size_t count = layer.candidates.size();
        constexpr size_t most = qdsl::contract::kMaxSupernetCandidates;
        if (active[l] < 0 || static_cast<size_t>(active[l]) >= count || count > most ||
            (count < most && (recomputed[l] >> count) != 0)) {
            error = "search layer '" + layer.name + "' has " + std::to_string(count) +
                    " candidates; the path picks " + std::to_string(active[l]);
            return false;
        }
    }
    if (!state->ready) {
        error = "no weights: call initialize() or loadWeights() first";
        return false;
    }
    for (size_t l = 0; l < active.size(); ++l)
        for (size_t c = 0; c < kSearchLayers[l].gates.size(); ++c) {
            qdsl::rt::Tensor &gate = state->weights.at(kSearchLayers[l].gates[c]);
            std::fill(gate.data.begin(), gate.data.end(), static_cast<int>(c) == active[l] ? 1.0f : 0.0f);
            state->weight_buffers.at(kSearchLayers[l].gates[c]).set_host_dirty();
        }
    state->active = active;
    state->recomputed = recomputed;
    return true;
}

bool Pass::on_path(int layer, int candidate, int kind) const {
    if (state.active.empty())
        return true;
    if (kind == 0)
        return state.active[static_cast<size_t>(layer)] == candidate;
    return (state.recomputed[static_cast<size_t>(layer)] >> candidate) & 1u;
}

void Pass::zero(std::initializer_list<Buffer<float> *> outputs) {
    for (Buffer<float> *out : outputs)
        std::fill(out->data(), out->data() + out->number_of_elements(), 0.0f);
    report(outputs);
}

void Pass::report(std::initializer_list<Buffer<float> *> outputs) {
    if (!state.listener || !label_data)  // forward passes have no gradients
        return;
    for (Buffer<float> *out : outputs)
        for (auto it = allocations.rbegin(); it != allocations.rend(); ++it)
            if (it->first == out->data()) {
                auto g = state.gradient_of_result.find(it->second);
                if (g != state.gradient_of_result.end())
                    state.listener(g->second, out->data());
                break;
            }
    allocations.clear();
    state.listener(-1, nullptr);
}

Buffer<float> Pass::allocated(int id, float *data, std::vector<int> dims) {
    if (state.listener)
        allocations.emplace_back(data, id);
    return Buffer<float>(data, dims);
}

Pass::Pass(Model::State &state, Arena &arena, int batch, const float *input, float *output,
           Profile *profile, const int32_t *labels, std::vector<float *> gradients)
    : state(state), arena(arena), batch(batch), input(input), output(output), profile(profile),
      label_data(labels), gradients(std::move(gradients)) {}

float *Pass::storage(int id, size_t elements) const {
    if (id == qdsl::contract::kInputActivation)
        return const_cast<float *>(input);
    if (id == qdsl::contract::kOutputActivation)
        return output;
    if (qdsl::contract::isGradientActivation(id))
        return gradients.at(qdsl::contract::gradientOfActivation(id));
    // The generated tables and calls agree by construction; a mismatch is
    // a bug in qdsl, not in the model.
    if (static_cast<size_t>(id) >= arena.bytes.size() || elements * sizeof(float) > arena.bytes[id]) {
        fmt::print(stderr, "qdsl_model: activation {} does not fit its planned buffer\n", id);
        std::abort();
    }
    return arena.base + arena.offset[id] / sizeof(float);
}

const float *Pass::data(int id) const {
    return qdsl::contract::isGradientActivation(id)
               ? gradients.at(qdsl::contract::gradientOfActivation(id))
               : arena.base + arena.offset.at(id) / sizeof(float);
}

namespace {
std::vector<int> image_dims(const std::vector<int64_t> &shape, int batch) {
    // NHWC [H, W, C] → (c, x, y, n)
    return {static_cast<int>(shape[2]), static_cast<int>(shape[1]),
            static_cast<int>(shape[0]), batch};
}
std::vector<int> row_dims(const std::vector<int64_t> &shape, int batch) {
    int rows = batch;
    for (size_t i = 0; i + 1 < shape.size(); ++i)
        rows *= static_cast<int>(shape[i]);
    return {static_cast<int>(shape.back()), rows};
}
std::vector<int> tensor_dims(const std::vector<int64_t> &shape) {
    return std::vector<int>(shape.rbegin(), shape.rend());
}
size_t elements(const std::vector<int64_t> &shape, int batch) {
    size_t n = static_cast<size_t>(batch);
    for (int64_t d : shape)
        n *= static_cast<size_t>(d);
    return n;
}
}  // namespace

Buffer<float> Pass::image(int id, const std::vector<int64_t> &shape) {
    Buffer<float> b(storage(id, elements(shape, batch)), image_dims(shape, batch));
    b.set_host_dirty();
    return b;
}

Buffer<float> Pass::rows(int id, const std::vector<int64_t> &shape, bool batched) {
    int n = batched ? batch : 1;
    Buffer<float> b(storage(id, elements(shape, n)), row_dims(shape, n));
    b.set_host_dirty();
    return b;
}

Buffer<float> Pass::tensor(int id, const std::vector<int64_t> &shape) {
    Buffer<float> b(storage(id, elements(shape, 1)), tensor_dims(shape));
    b.set_host_dirty();
    return b;
}

Buffer<int32_t> Pass::labels() {
    Buffer<int32_t> b(const_cast<int32_t *>(label_data), {batch});
    b.set_host_dirty();
    return b;
}

Buffer<float> Pass::new_image(int id, const std::vector<int64_t> &shape) {
    return allocated(id, storage(id, elements(shape, batch)), image_dims(shape, batch));
}

Buffer<float> Pass::new_rows(int id, const std::vector<int64_t> &shape, bool batched) {
    int n = batched ? batch : 1;
    return allocated(id, storage(id, elements(shape, n)), row_dims(shape, n));
}

Buffer<float> Pass::new_tensor(int id, const std::vector<int64_t> &shape) {
    return allocated(id, storage(id, elements(shape, 1)), tensor_dims(shape));
}

Buffer<float> &Pass::weight(const char *name) { return state.weight_buffers.at(name); }

Buffer<float> &Pass::packed(const char *name, bool transposed) {
    return state.packed_buffers.at(Model::State::packed_key(name, transposed));
}

bool Pass::run(const char *kernel, const char *family,
               std::initializer_list<Buffer<float> *> outputs,
               const std::function<int()> &call) {
    halide_message.clear();
    auto start = std::chrono::steady_clock::now();
    int status = call();
    // GPU targets leave the results on the device.
    for (Buffer<float> *result : outputs)
        if (status == 0)
            status = result->copy_to_host();
    if (profile)
        profile->add(kernel, family,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (status != 0) {
        message = "kernel '" + std::string(kernel) + "' failed (Halide error " +
                  std::to_string(status) + ")" +
                  (halide_message.empty() ? "" : ": " + halide_message);
        return false;
    }
    report(outputs);
    return true;
}

}  // namespace qdsl_model
