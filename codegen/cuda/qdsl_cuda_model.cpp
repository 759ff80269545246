// The Model of qdsl_model.h on an NVIDIA GPU: weights on the host (as every
// target keeps them) and uploaded to one device block, with the layer-scaled
// copies the matmuls read; activations in one device arena per function laid
// out by the memory planner; input and output through pinned host buffers;
// after the first forward pass at a batch size, the whole pass (copies in,
// kernels, copy out) replayed as one CUDA graph. A training step runs its
// kernels on the device and hands the loss, logits and gradients back to the
// host, where the caller's optimiser updates the weights (train.cpp: AdamW).
#include "qdsl_cuda_model.h"

#ifdef QDSL_WITH_NCCL
#include <nccl.h>
#endif

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

namespace qdsl_model {

namespace {

constexpr size_t kDeviceAlignment = 256;

size_t aligned(size_t bytes) {
    return (bytes + kDeviceAlignment - 1) / kDeviceAlignment * kDeviceAlignment;
}

}  // namespace

struct Model::State {
    qdsl_cuda::Context context;
    qdsl::rt::TensorMap weights;
    bool ready = false;
    GradientListener listener;

    // Every weight, then every folded weight and bias, in one device block.
    char *device_weights = nullptr;
    size_t device_weight_bytes = 0;
    std::map<std::string, float *> weight_at, scaled_weight_at, scaled_bias_at;

    // The forward pass's arena, input and output at `forward.batch` (0:
    // none yet), and the training step's arena, labels and gradients.
    DeviceArena forward, train;
    float *device_input = nullptr, *device_output = nullptr;
    float *pinned_input = nullptr, *pinned_output = nullptr;
    int graph_batch = 0;
    float *train_input = nullptr;
    int32_t *train_labels = nullptr;
    float *gradients = nullptr;
    std::vector<float *> gradient_at;
#ifdef QDSL_WITH_NCCL
    // The job's GPUs (joinDeviceGroup): the step's gradients are averaged
    // among them on the device.
    ncclComm_t group = nullptr;
#endif

    ~State() {
#ifdef QDSL_WITH_NCCL
        if (group)
            ncclCommDestroy(group);
#endif
        release_batch();
        release_train();
        context.release(device_weights);
        context.release(gradients);
    }

    void release_batch() {
        context.drop_graph();
        graph_batch = 0;
        context.release(forward.memory);
        context.release(device_input);
        context.release(device_output);
        context.release_host(pinned_input);
        context.release_host(pinned_output);
        forward = DeviceArena();
        device_input = device_output = pinned_input = pinned_output = nullptr;
    }

    void release_train() {
        context.release(train.memory);
        context.release(train_input);
        context.release(train_labels);
        train = DeviceArena();
        train_input = nullptr;
        train_labels = nullptr;
    }

    bool plan(DeviceArena &arena, const std::vector<BufferSpec> &table, int n,
              std::string &error) {
        arena.size = plan_arena(table, n, false, arena.offset, arena.bytes);
        arena.memory = static_cast<char *>(context.allocate(arena.size));
        arena.batch = n;
        if (!arena.memory)
            error = context.error();
        return arena.memory != nullptr;
    }

    /// Uploads the weights and their folded copies (allocating on the first
    /// call; the same addresses after, so a captured graph stays valid).
    bool upload(std::string &error) {
        std::vector<std::pair<std::string, std::vector<float>>> folded;
        for (const FoldSpec &spec : kFoldSpecs) {
            const qdsl::rt::Tensor &w = weights.at(spec.weight);
            const qdsl::rt::Tensor &gamma = weights.at(spec.gamma);
            const size_t in = static_cast<size_t>(w.shape[0]), out = static_cast<size_t>(w.shape[1]);
            std::vector<float> scaled(w.data.size());
            for (size_t i = 0; i < in; ++i)
                for (size_t o = 0; o < out; ++o)
                    scaled[i * out + o] = w.data[i * out + o] * gamma.data[o];
            folded.push_back({std::string("w:") + spec.weight, std::move(scaled)});
            if (spec.bias) {
                const qdsl::rt::Tensor &b = weights.at(spec.bias);
                std::vector<float> bias(out);
                for (size_t o = 0; o < out; ++o)
                    bias[o] = b.data[o] * gamma.data[o];
                folded.push_back({std::string("b:") + spec.weight, std::move(bias)});
            }
        }
        size_t total = 0;
        for (const auto &[name, tensor] : weights)
            total += aligned(tensor.data.size() * sizeof(float));
        for (const auto &[name, data] : folded)
            total += aligned(data.size() * sizeof(float));
        if (!device_weights || total != device_weight_bytes) {
            release_batch();
            release_train();
            context.release(device_weights);
            device_weights = static_cast<char *>(context.allocate(total));
            device_weight_bytes = total;
            if (!device_weights) {
                error = context.error();
                return false;
            }
        }
        size_t at = 0;
        auto place = [&](const float *data, size_t count) {
            float *device = reinterpret_cast<float *>(device_weights + at);
            context.copy_to_device(device, data, count * sizeof(float));
            at += aligned(count * sizeof(float));
            return device;
        };
        for (const auto &[name, tensor] : weights)
            weight_at[name] = place(tensor.data.data(), tensor.data.size());
        for (const auto &[name, data] : folded)
            (name[0] == 'w' ? scaled_weight_at : scaled_bias_at)[name.substr(2)] =
                place(data.data(), data.size());
        // The host copies of `folded` must outlive the copies.
        if (!context.synchronize()) {
            error = context.error();
            return false;
        }
        ready = true;
        return true;
    }

    /// A device to run on, weights and a batch of at least one.
    bool can_run(int batch, std::string &error) {
        if (!context.ok()) {
            error = context.error();
            return false;
        }
        return check_can_run(ready, batch, error);
    }

    bool prepare_batch(int n, std::string &error) {
        if (n == forward.batch)
            return true;
        release_batch();
        const size_t in = kModelInfo.input_size() * n * sizeof(float);
        const size_t out = kModelInfo.output_size() * n * sizeof(float);
        if (!plan(forward, kForwardBuffers, n, error))
            return false;
        device_input = static_cast<float *>(context.allocate(in));
        device_output = static_cast<float *>(context.allocate(out));
        pinned_input = static_cast<float *>(context.allocate_host(in));
        pinned_output = static_cast<float *>(context.allocate_host(out));
        if (!device_input || !device_output || !pinned_input || !pinned_output) {
            error = context.error();
            release_batch();
            return false;
        }
        return true;
    }

    bool prepare_train(int n, std::string &error) {
        if (!gradients) {
            size_t total = 0;
            for (const std::string &name : kGradientNames)
                total += aligned(weights.at(name).data.size() * sizeof(float));
            gradients = static_cast<float *>(context.allocate(total));
            if (!gradients) {
                error = context.error();
                return false;
            }
            size_t at = 0;
            for (const std::string &name : kGradientNames) {
                gradient_at.push_back(reinterpret_cast<float *>(reinterpret_cast<char *>(gradients) + at));
                at += aligned(weights.at(name).data.size() * sizeof(float));
            }
        }
        if (n == train.batch)
            return true;
        release_train();
        if (!plan(train, kTrainBuffers, n, error))
            return false;
        train_input = static_cast<float *>(context.allocate(kModelInfo.input_size() * n * sizeof(float)));
        train_labels = static_cast<int32_t *>(context.allocate(n * sizeof(int32_t)));
        if (!train_input || !train_labels) {
            error = context.error();
            release_train();
            return false;
        }
        return true;
    }
};

Model::Model() : state(new State) {}
Model::~Model() = default;

const ModelInfo &Model::info() const { return kModelInfo; }

void Model::setThreads(int) {}

bool Model::setPrecision(const std::string &precision, std::string &error) {
    qdsl_cuda::Precision p;
    if (!qdsl_cuda::parse_precision(precision, p)) {
        error = "'" + precision + "': expected fp32, tf32 or bf16";
        return false;
    }
    if (p != state->context.precision)
        state->context.drop_graph();
    state->graph_batch = 0;
    state->context.precision = p;
    return true;
}

void Model::initialize(uint64_t seed) {
    state->weights = initial_weights(seed);
    std::string error;
    if (!state->upload(error))
        std::fprintf(stderr, "qdsl_model: %s\n", error.c_str());
}

bool Model::loadWeights(const std::string &path, std::string &error) {
    qdsl::rt::TensorMap loaded;
    if (!read_weights(path, loaded, error))
        return false;
    state->weights = std::move(loaded);
    return state->upload(error);
}

bool Model::setWeights(qdsl::rt::TensorMap loaded, const std::string &origin,
                       std::string &error) {
    if (!check_weights(loaded, origin, error))
        return false;
    state->weights = std::move(loaded);
    return state->upload(error);
}

bool Model::saveWeights(const std::string &path, std::string &error) const {
    return write_weights(path, state->weights, error);
}

qdsl::rt::TensorMap &Model::weights() { return state->weights; }

void Model::weightsChanged() {
    std::string error;
    if (!state->upload(error))
        std::fprintf(stderr, "qdsl_model: %s\n", error.c_str());
}

void Model::weightsChanged(const std::function<bool(const std::string &)> &) { weightsChanged(); }

bool Model::canTrain() { return !kTrainResults.empty(); }
const char *Model::trainingSetup() { return kTrainingSetup; }
const std::vector<std::string> &Model::gradientNames() { return kGradientNames; }
void Model::setGradientListener(GradientListener listener) { state->listener = std::move(listener); }

bool Model::selectDevice(int local_rank, std::string &error) {
    return qdsl_cuda::select_device(local_rank, error);
}

#ifdef QDSL_WITH_NCCL
bool Model::canAverageOnDevice() { return true; }

bool Model::newDeviceGroupId(std::string &id, std::string &error) {
    ncclUniqueId unique;
    ncclResult_t status = ncclGetUniqueId(&unique);
    if (status != ncclSuccess) {
        error = std::string("ncclGetUniqueId: ") + ncclGetErrorString(status);
        return false;
    }
    id.assign(unique.internal, sizeof unique.internal);
    return true;
}

bool Model::joinDeviceGroup(int rank, int count, const std::string &id, std::string &error) {
    ncclUniqueId unique;
    if (id.size() != sizeof unique.internal) {
        error = "a device group id of " + std::to_string(id.size()) + " bytes; NCCL's has " +
                std::to_string(sizeof unique.internal);
        return false;
    }
    std::memcpy(unique.internal, id.data(), id.size());
    ncclResult_t status = ncclCommInitRank(&state->group, count, unique, rank);
    if (status != ncclSuccess) {
        state->group = nullptr;
        error = std::string("ncclCommInitRank: ") + ncclGetErrorString(status);
        return false;
    }
    return true;
}
#else
// Built without NCCL (or on the emulation): the caller averages on the host.
bool Model::canAverageOnDevice() { return false; }
bool Model::newDeviceGroupId(std::string &, std::string &error) {
    error = "this project was built without NCCL";
    return false;
}
bool Model::joinDeviceGroup(int, int, const std::string &, std::string &error) {
    error = "this project was built without NCCL";
    return false;
}
#endif
const std::vector<SearchLayer> &Model::searchLayers() { return kSearchLayers; }
uint64_t Model::trainingArenaBytes() const { return state->train.size; }

bool Model::trainStep(const float *input, const int32_t *labels, int batch, float &loss,
                      float *logits, qdsl::rt::TensorMap &gradients, std::string &error,
                      Profile *profile) {
    State &s = *state;
    if (!canTrain()) {
        error = "this project has no training step: compile the model with qdsl compile --train";
        return false;
    }
    if (!s.can_run(batch, error) || !check_labels(labels, batch, error) ||
        !s.prepare_train(batch, error))
        return false;
    DevicePass pass(s, s.train, batch, profile);
    s.context.clear_marks();
    const size_t in = kModelInfo.input_size() * batch;
    bool ok = s.context.copy_to_device(s.train_input, input, in * sizeof(float)) &&
              s.context.copy_to_device(s.train_labels, labels, batch * sizeof(int32_t)) &&
              run_train_kernels(pass) && s.context.synchronize();
    auto fetch = [&](int id, float *to, size_t count) {
        return s.context.copy_to_host(to, pass.in(id, count), count * sizeof(float));
    };
#ifdef QDSL_WITH_NCCL
    // Every gradient averaged across the job's GPUs, in one group of calls
    // queued after the backward kernels on the same stream.
    if (ok && s.group) {
        auto stream = static_cast<cudaStream_t>(s.context.native_stream());
        ncclResult_t status = ncclGroupStart();
        for (size_t g = 0; status == ncclSuccess && g < kGradientNames.size(); ++g) {
            const size_t count = s.weights.at(kGradientNames[g]).data.size();
            float *data = pass.out(kTrainResults[g + 2], count);
            status = ncclAllReduce(data, data, count, ncclFloat, ncclAvg, s.group, stream);
        }
        ncclResult_t ended = ncclGroupEnd();
        if (status == ncclSuccess)
            status = ended;
        if (status != ncclSuccess)
            ok = s.context.fail(std::string("the gradients' NCCL all-reduce failed: ") +
                                ncclGetErrorString(status));
    }
#endif
    ok = ok && fetch(kTrainResults[0], &loss, 1) &&
         fetch(kTrainResults[1], logits, kModelInfo.output_size() * batch);
    // Last gradients first, each handed to the listener as it arrives (an
    // all-reduce of the first buckets overlaps the rest of the copies; the
    // backward pass itself is over by now).
    for (size_t g = kGradientNames.size(); ok && g-- > 0;) {
        const qdsl::rt::Tensor &w = s.weights.at(kGradientNames[g]);
        qdsl::rt::Tensor &grad = gradients[kGradientNames[g]];
        grad.shape = w.shape;
        grad.data.resize(w.data.size());
        ok = fetch(kTrainResults[g + 2], grad.data.data(), grad.data.size());
        if (ok && s.listener && (ok = s.context.synchronize()))
            s.listener(static_cast<int>(g), grad.data.data());
    }
    ok = ok && s.context.synchronize();
    if (ok && profile)
        for (const DevicePass::Timing &t : pass.timings)
            profile->add(t.kernel, t.family, s.context.seconds_between(t.start, t.end));
    if (!ok)
        error = s.context.error();
    return ok;
}

bool Model::setPaths(const std::vector<int> &active, const std::vector<uint64_t> &recomputed,
                     std::string &error) {
    if (active.empty() && recomputed.empty())
        return true;
    error = kModelInfo.name + " is not a supernet: it has no paths to set";
    return false;
}

bool Model::forward(const float *input, int batch, float *output, std::string &error,
                    Profile *profile) {
    State &s = *state;
    if (!s.can_run(batch, error) || !s.prepare_batch(batch, error))
        return false;
    const size_t in = kModelInfo.input_size() * batch, out = kModelInfo.output_size() * batch;
    std::memcpy(s.pinned_input, input, in * sizeof(float));
    auto queue = [&](DevicePass &pass) {
        return s.context.copy_to_device(s.device_input, s.pinned_input, in * sizeof(float)) &&
               run_kernels(pass) &&
               s.context.copy_to_host(s.pinned_output, s.device_output, out * sizeof(float));
    };
    bool ok;
    if (!profile && s.graph_batch == batch && s.context.has_graph()) {
        ok = s.context.replay() && s.context.synchronize();
    } else {
        DevicePass pass(s, s.forward, batch, profile);
        s.context.clear_marks();
        ok = queue(pass) && s.context.synchronize();
        if (ok && profile)
            for (const DevicePass::Timing &t : pass.timings)
                profile->add(t.kernel, t.family, s.context.seconds_between(t.start, t.end));
        // The next passes at this batch replay the whole pass as one graph
        // (after this one has planned every matmul).
        if (ok && !profile && s.context.can_capture()) {
            DevicePass captured(s, s.forward, batch, nullptr);
            // End a capture that began whatever happened inside it, so that
            // the stream leaves capture mode.
            const bool began = s.context.begin_capture();
            const bool queued = began && queue(captured);
            const bool ended = began && s.context.end_capture();
            ok = queued && ended;
            s.graph_batch = ok ? batch : 0;
        }
    }
    if (!ok) {
        error = s.context.error();
        return false;
    }
    std::memcpy(output, s.pinned_output, out * sizeof(float));
    return true;
}

const float *DevicePass::in(int id, size_t elements) const { return out(id, elements); }

float *DevicePass::out(int id, size_t elements) const {
    const bool training = &arena == &state.train;
    if (id == qdsl::contract::kInputActivation)
        return training ? state.train_input : state.device_input;
    if (id == qdsl::contract::kOutputActivation && !training)
        return state.device_output;
    if (qdsl::contract::isGradientActivation(id) && training)
        return state.gradient_at.at(qdsl::contract::gradientOfActivation(id));
    // The generated tables and calls agree by construction; a mismatch is
    // a bug in qdsl, not in the model.
    if (id < 0 || static_cast<size_t>(id) >= arena.bytes.size() ||
        elements * sizeof(float) > arena.bytes[id]) {
        std::fprintf(stderr, "qdsl_model: activation %d does not fit its planned buffer\n", id);
        std::abort();
    }
    return reinterpret_cast<float *>(arena.memory + arena.offset[id]);
}

const int32_t *DevicePass::labels() const { return state.train_labels; }

const float *DevicePass::weight(const char *name) const { return state.weight_at.at(name); }
const float *DevicePass::scaled_weight(const char *weight) const {
    return state.scaled_weight_at.at(weight);
}
const float *DevicePass::scaled_bias(const char *weight) const {
    return state.scaled_bias_at.at(weight);
}
qdsl_cuda::Context &DevicePass::context() const { return state.context; }

bool DevicePass::run(const char *kernel, const char *family, const std::function<bool()> &call) {
    int start = profile ? state.context.mark() : -1;
    bool ok = call();
    if (profile)
        timings.push_back({kernel, family, start, state.context.mark()});
    if (!ok)
        state.context.prefix_error(std::string("kernel '") + kernel + "' (" + family + "): ");
    return ok;
}

}  // namespace qdsl_model
