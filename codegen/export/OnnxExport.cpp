//===- OnnxExport.cpp - a model as an ONNX file ---------------------------===//

#include "codegen/export/OnnxExport.h"

#include "codegen/export/ExportGraph.h"
#include "codegen/latency/HostMachine.h"

#include <cmath>
#include <cstring>
#include <set>

namespace qdsl::exporter {

namespace {

/// Protobuf's wire format, for writing: fields appended in order.
class Proto {
public:
  void varint(int field, int64_t value) {
    tag(field, 0);
    raw(static_cast<uint64_t>(value));
  }
  void bytes(int field, const std::string &value) {
    tag(field, 2);
    raw(value.size());
    out += value;
  }
  void message(int field, const Proto &value) { bytes(field, value.out); }
  void float32(int field, float value) {
    tag(field, 5);
    char b[4];
    std::memcpy(b, &value, 4);  // little-endian on every target qdsl runs on
    out.append(b, 4);
  }
  const std::string &str() const { return out; }

private:
  void tag(int field, int wire) { raw((static_cast<uint64_t>(field) << 3) | wire); }
  void raw(uint64_t v) {
    while (v >= 0x80) {
      out.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
  }
  std::string out;
};

// Field numbers of onnx.proto.
namespace model_proto { enum { IrVersion = 1, ProducerName = 2, ProducerVersion = 3, Graph = 7,
                               OpsetImport = 8, MetadataProps = 14 }; }
namespace graph_proto { enum { Node = 1, Name = 2, Initializer = 5, DocString = 10, Input = 11,
                               Output = 12 }; }
namespace node_proto { enum { Input = 1, Output = 2, Name = 3, OpType = 4, Attribute = 5,
                              DocString = 6 }; }
namespace attribute_proto { enum { Name = 1, F = 2, I = 3, Ints = 8, Type = 20 };
                            enum { FLOAT = 1, INT = 2, INTS = 7 }; }
namespace tensor_proto { enum { Dims = 1, DataType = 2, Name = 8, RawData = 9, ExternalData = 13,
                                DataLocation = 14 };
                         enum { FLOAT = 1, INT64 = 7 }; enum { EXTERNAL = 1 }; }
namespace entry_proto { enum { Key = 1, Value = 2 }; }

Proto entry(const std::string &key, const std::string &value) {
  Proto e;
  e.bytes(entry_proto::Key, key);
  e.bytes(entry_proto::Value, value);
  return e;
}

/// A float tensor's ValueInfoProto; a negative dimension is the batch.
Proto valueInfo(const std::string &name, const std::vector<int64_t> &dims) {
  Proto shape;
  for (int64_t d : dims) {
    Proto dim;
    if (d < 0)
      dim.bytes(2, "batch");  // dim_param
    else
      dim.varint(1, d);  // dim_value
    shape.message(1, dim);
  }
  Proto tensorType;
  tensorType.varint(1, tensor_proto::FLOAT);  // elem_type
  tensorType.message(2, shape);
  Proto type;
  type.message(1, tensorType);  // tensor_type
  Proto info;
  info.bytes(1, name);
  info.message(2, type);
  return info;
}

class OnnxBuilder : public GraphBuilder {
public:
  OnnxBuilder(const rt::TensorMap &state, mlir::func::FuncOp model)
      : state(state), model(model) {}

  std::string input(const std::vector<int64_t> &shape) override {
    std::vector<int64_t> dims = {-1};
    dims.insert(dims.end(), shape.begin(), shape.end());
    graph.message(graph_proto::Input, valueInfo("input", dims));
    return "input";
  }

  void output(const std::string &value) override {
    node("Identity", {value}, "output", {});
    auto type = llvm::cast<mlir::RankedTensorType>(model.getResultTypes()[0]);
    std::vector<int64_t> dims(type.getShape().begin(), type.getShape().end());
    dims[0] = -1;
    if (dims.size() == 4)  // returned channels-first, as the input is taken
      dims = {-1, dims[3], dims[1], dims[2]};
    graph.message(graph_proto::Output, valueInfo("output", dims));
  }

  void beginLayer(const std::string &layer) override { prefix = layer + "/"; }

  std::string transpose(const std::string &x, const std::array<int64_t, 4> &perm) override {
    return node("Transpose", {x}, "", {ints("perm", {perm.begin(), perm.end()})});
  }

  std::string convolution(const std::string &x, const Convolution &c) override {
    std::vector<std::string> inputs = {x, weight(c.weight)};
    if (c.bias)
      inputs.push_back(weight(*c.bias));
    return node("Conv", inputs, "",
                {ints("kernel_shape", {c.kernel[0], c.kernel[1]}),
                 ints("strides", {c.stride[0], c.stride[1]}),
                 ints("pads", {c.padding[0], c.padding[1], c.padding[0], c.padding[1]}),
                 ints("dilations", {1, 1}), integer("group", c.groups)});
  }

  std::string layerNorm(const std::string &x, const std::string &scale,
                        const std::string &offset, double epsilon) override {
    return node("LayerNormalization", {x, weight(scale), weight(offset)}, "",
                {integer("axis", -1), real("epsilon", static_cast<float>(epsilon))});
  }

  std::string linear(const std::string &x, const std::string &w,
                     const std::optional<std::string> &bias) override {
    // nn.Linear's [out, in] weight, transposed for MatMul once (runtimes
    // fold a transpose of a constant when they load the model).
    auto [it, added] = transposedWeights.try_emplace(w, "");
    if (added)
      it->second = node("Transpose", {weight(w)}, w + ".T", {ints("perm", {1, 0})});
    std::string y = node("MatMul", {x, it->second}, "", {});
    return bias ? node("Add", {y, weight(*bias)}, "", {}) : y;
  }

  std::string scale(const std::string &x, const std::string &s) override {
    return node("Mul", {x, weight(s)}, "", {});
  }

  std::string gelu(const std::string &x) override {
    std::string scaled = node("Div", {x, constant("qdsl.sqrt2", std::sqrt(2.0f))}, "", {});
    std::string erf = node("Erf", {scaled}, "", {});
    std::string plus = node("Add", {erf, constant("qdsl.one", 1.0f)}, "", {});
    std::string product = node("Mul", {x, plus}, "", {});
    return node("Mul", {product, constant("qdsl.half", 0.5f)}, "", {});
  }

  std::string relu(const std::string &x) override { return node("Relu", {x}, "", {}); }
  std::string add(const std::string &a, const std::string &b) override {
    return node("Add", {a, b}, "", {});
  }
  std::string multiply(const std::string &a, const std::string &b) override {
    return node("Mul", {a, b}, "", {});
  }
  std::string globalAveragePool(const std::string &x) override {
    std::string pooled = node("GlobalAveragePool", {x}, "", {});
    return node("Flatten", {pooled}, "", {integer("axis", 1)});
  }

  /// The initializers, embedded or external, then the graph into `files`.
  void finish(const std::string &dataFileName, uint64_t externalAbove, OnnxFiles &files) {
    uint64_t total = 0;
    for (const std::string &name : used)
      total += state.at(name).data.size() * sizeof(float);
    bool external = total > externalAbove;
    for (const std::string &name : used) {
      const rt::Tensor &t = state.at(name);
      Proto tensor;
      for (int64_t d : t.shape)
        tensor.varint(tensor_proto::Dims, d);
      tensor.varint(tensor_proto::DataType, tensor_proto::FLOAT);
      tensor.bytes(tensor_proto::Name, name);
      std::string bytes(reinterpret_cast<const char *>(t.data.data()),
                        t.data.size() * sizeof(float));
      if (external) {
        // 64-byte aligned, so that a runtime may map the file.
        files.data.resize((files.data.size() + 63) / 64 * 64, '\0');
        tensor.message(tensor_proto::ExternalData, entry("location", dataFileName));
        tensor.message(tensor_proto::ExternalData,
                       entry("offset", std::to_string(files.data.size())));
        tensor.message(tensor_proto::ExternalData, entry("length", std::to_string(bytes.size())));
        tensor.varint(tensor_proto::DataLocation, tensor_proto::EXTERNAL);
        files.data += bytes;
      } else {
        tensor.bytes(tensor_proto::RawData, bytes);
      }
      graph.message(graph_proto::Initializer, tensor);
    }
    for (const auto &[name, value] : constants) {
      Proto tensor;  // a scalar: no dims
      tensor.varint(tensor_proto::DataType, tensor_proto::FLOAT);
      tensor.bytes(tensor_proto::Name, name);
      tensor.bytes(tensor_proto::RawData,
                   std::string(reinterpret_cast<const char *>(&value), sizeof(float)));
      graph.message(graph_proto::Initializer, tensor);
    }
    if (external)
      files.dataFileName = dataFileName;
    graph.bytes(graph_proto::Name, model.getSymName().str());
    graph.bytes(graph_proto::DocString,
                "Exported by qdsl from model " + model.getSymName().str() +
                    ". Input: images channels-first (batch, C, H, W) or features (batch, F); "
                    "output: (batch, classes). Initializers hold the weights under the names "
                    "and layouts of `qdsl weights export`.");
    Proto opset;
    opset.bytes(1, "");  // the default domain, ai.onnx
    opset.varint(2, kOnnxOpset);
    Proto m;
    m.varint(model_proto::IrVersion, kOnnxIrVersion);
    m.bytes(model_proto::ProducerName, "qdsl");
    m.bytes(model_proto::ProducerVersion, cost::qdslVersion());
    m.message(model_proto::Graph, graph);
    m.message(model_proto::OpsetImport, opset);
    m.message(model_proto::MetadataProps, entry("qdsl.model", model.getSymName().str()));
    files.model = m.str();
  }

private:
  /// An AttributeProto: `name`, its type, and the value `fill` adds.
  template <typename Fill> static Proto attribute(const std::string &name, int type, Fill fill) {
    Proto a;
    a.bytes(attribute_proto::Name, name);
    fill(a);
    a.varint(attribute_proto::Type, type);
    return a;
  }
  static Proto ints(const std::string &name, const std::vector<int64_t> &values) {
    return attribute(name, attribute_proto::INTS, [&](Proto &a) {
      for (int64_t v : values)
        a.varint(attribute_proto::Ints, v);
    });
  }
  static Proto integer(const std::string &name, int64_t value) {
    return attribute(name, attribute_proto::INT,
                     [&](Proto &a) { a.varint(attribute_proto::I, value); });
  }
  static Proto real(const std::string &name, float value) {
    return attribute(name, attribute_proto::FLOAT,
                     [&](Proto &a) { a.float32(attribute_proto::F, value); });
  }

  std::string weight(const std::string &name) {
    if (!seen.count(name)) {
      seen.insert(name);
      used.push_back(name);
    }
    return name;
  }
  std::string constant(const std::string &name, float value) {
    constants.emplace(name, value);
    return name;
  }

  /// Adds a node; its output is `result`, or a fresh name in the layer.
  std::string node(const std::string &type, const std::vector<std::string> &inputs,
                   std::string result, const std::vector<Proto> &attributes) {
    if (result.empty())
      result = prefix + type + "_" + std::to_string(++count);
    Proto n;
    for (const std::string &in : inputs)
      n.bytes(node_proto::Input, in);
    n.bytes(node_proto::Output, result);
    n.bytes(node_proto::Name, result);
    n.bytes(node_proto::OpType, type);
    for (const Proto &a : attributes)
      n.message(node_proto::Attribute, a);
    graph.message(graph_proto::Node, n);
    return result;
  }

  const rt::TensorMap &state;
  mlir::func::FuncOp model;
  Proto graph;
  std::string prefix;
  int64_t count = 0;
  std::vector<std::string> used;
  std::set<std::string> seen;
  std::map<std::string, float> constants;
  std::map<std::string, std::string> transposedWeights;
};

} // namespace

bool exportOnnx(mlir::func::FuncOp model, const rt::TensorMap &state,
                const std::string &dataFileName, uint64_t externalAbove, OnnxFiles &files,
                std::string &error) {
  OnnxBuilder builder(state, model);
  if (!lowerModel(model, builder, error))
    return false;
  builder.finish(dataFileName, externalAbove, files);
  return true;
}

} // namespace qdsl::exporter
