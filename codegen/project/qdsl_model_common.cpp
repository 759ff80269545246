// The parts of a compiled model that are the same on every back end.
#include "qdsl_model_tables.h"

#include "runtime/shipped/ArenaPlanner.h"
#include "runtime/shipped/TensorFiles.h"

#include <algorithm>

namespace qdsl_model {

namespace {
size_t product(const std::vector<int64_t> &shape) {
    size_t n = 1;
    for (int64_t d : shape)
        n *= static_cast<size_t>(d);
    return n;
}
}  // namespace

std::vector<std::string> Model::layerScaleNames() {
    std::vector<std::string> names;
    for (const WeightSpec &spec : kWeightSpecs)
        if (spec.init == qdsl::rt::InitKind::Constant)
            names.push_back(spec.name);
    return names;
}

size_t ModelInfo::input_size() const { return product(input_shape); }
size_t ModelInfo::output_size() const { return product(output_shape); }

void Profile::add(const std::string &kernel, const std::string &family, double seconds) {
    for (Entry &e : entries)
        if (e.kernel == kernel) {
            e.seconds += seconds;
            ++e.calls;
            e.samples.push_back(seconds);
            return;
        }
    entries.push_back({kernel, family, seconds, 1, {seconds}});
}

qdsl::rt::TensorMap initial_weights(uint64_t seed) {
    qdsl::rt::TensorMap weights;
    for (const WeightSpec &spec : kWeightSpecs)
        weights[spec.name] = qdsl::rt::initializeTensor(
            spec.name, spec.shape, qdsl::rt::InitSpec{spec.init, spec.value}, seed);
    return weights;
}

bool read_weights(const std::string &path, qdsl::rt::TensorMap &weights, std::string &error) {
    qdsl::rt::Metadata metadata;
    return qdsl::rt::readSafetensors(path, weights, error, &metadata) &&
           qdsl::rt::isOfModel(metadata, kModelInfo.name, path, error) &&
           check_weights(weights, path, error);
}

bool check_weights(const qdsl::rt::TensorMap &weights, const std::string &origin,
                   std::string &error) {
    std::vector<qdsl::rt::TensorSpec> expected;
    for (const WeightSpec &spec : kWeightSpecs)
        expected.push_back({spec.name, spec.shape});
    std::vector<std::string> problems = qdsl::rt::weightProblems(expected, weights);
    if (problems.empty())
        return true;
    error = qdsl::rt::describeMisfit(origin, kModelInfo.name, qdsl::rt::listProblems(problems));
    return false;
}

bool write_weights(const std::string &path, const qdsl::rt::TensorMap &weights,
                   std::string &error) {
    qdsl::rt::Metadata metadata = {{qdsl::contract::kModelKey, kModelInfo.name}};
    return qdsl::rt::writeSafetensors(path, weights, metadata, error);
}

bool check_can_run(bool has_weights, int batch, std::string &error) {
    if (const char *feature = missing_cpu_feature()) {
        error = std::string("this model's kernels were built for the ") + kModelInfo.target +
                " target, which needs the CPU feature " + feature +
                "; this CPU lacks it: compile the model for a target it has (x86-64-avx2)";
        return false;
    }
    if (!has_weights)
        error = "no weights: call initialize() or loadWeights() first";
    else if (batch < 1)
        error = "the batch must hold at least one example";
    return has_weights && batch >= 1;
}

bool check_labels(const int32_t *labels, int batch, std::string &error) {
    const int64_t classes = kModelInfo.output_shape.empty() ? 1 : kModelInfo.output_shape.back();
    for (int i = 0; i < batch; ++i)
        if (labels[i] < 0 || labels[i] >= classes) {
            error = "label " + std::to_string(labels[i]) + " of example " + std::to_string(i) +
                    " is not a class of " + kModelInfo.name + " (0 to " +
                    std::to_string(classes - 1) + ")";
            return false;
        }
    return true;
}

uint64_t plan_arena(const std::vector<BufferSpec> &table, int batch, bool exclusive,
                    std::vector<uint64_t> &offset, std::vector<uint64_t> &bytes) {
    std::vector<qdsl::rt::ArenaBuffer> buffers;
    int most = 0;
    for (const BufferSpec &b : table) {
        qdsl::rt::ArenaBuffer buffer;
        buffer.bytes = qdsl::rt::alignToArena(b.example_bytes * static_cast<uint64_t>(batch) +
                                              b.fixed_bytes);
        buffer.first = b.first;
        buffer.last = b.last;
        if (exclusive) {
            buffer.group = b.group;
            buffer.member = b.member;
        }
        buffers.push_back(buffer);
        most = std::max(most, b.id);
    }
    uint64_t size = qdsl::rt::placeBuffers(buffers);
    offset.assign(most + 1, 0);
    bytes.assign(most + 1, 0);
    for (size_t i = 0; i < table.size(); ++i) {
        offset[table[i].id] = buffers[i].offset;
        bytes[table[i].id] = buffers[i].bytes;
    }
    return size;
}

}  // namespace qdsl_model
