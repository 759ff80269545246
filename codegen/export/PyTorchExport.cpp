//===- PyTorchExport.cpp - a model as a PyTorch module --------------------===//

#include "codegen/export/PyTorchExport.h"

#include "codegen/CString.h"
#include "codegen/export/ExportGraph.h"
#include "runtime/reference/PyTorchInterop.h"
#include "runtime/reference/ReferenceExecutor.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

namespace qdsl::exporter {

namespace {

/// The module's class: the model's name, unless Python or the file's own
/// names take it (a model called `F`, `torch` or `lambda`).
std::string className(const std::string &model) {
  static const std::set<std::string> taken = {
      "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
      "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global",
      "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return",
      "try", "while", "with", "yield", "torch", "F", "ctypes", "json", "math", "struct",
      "create", "load_safetensors", "save_safetensors", "WEIGHTS", "INPUT_SHAPE", "OUTPUTS",
      "_register", "_initialise", "w", "x"};
  return taken.count(model) ? model + "_Model" : model;
}

std::string number(double v) {
  std::ostringstream s;
  s.precision(9);
  s << v;
  return s.str();
}

template <typename Range> std::string joined(const Range &values) {
  std::string out;
  for (auto v : values)
    out += (out.empty() ? "" : ", ") + std::to_string(v);
  return out;
}

/// A Python tuple of integers.
template <typename Range> std::string tuple(const Range &values) {
  return "(" + joined(values) + (values.size() == 1 ? ",)" : ")");
}

/// The statements of forward(), with what each reads, so that a value is
/// deleted after its last use (inference holds one block's tensors, not
/// the whole network's).
class PythonBuilder : public GraphBuilder {
public:
  std::string input(const std::vector<int64_t> &) override { return "x"; }
  void output(const std::string &value) override {
    statements.push_back({"return " + value, {value}, ""});
  }
  void beginLayer(const std::string &layer) override {
    statements.push_back({"# " + layer, {}, ""});
  }
  std::string transpose(const std::string &x, const std::array<int64_t, 4> &perm) override {
    return assign(x + ".permute" + tuple(perm), {x});
  }
  std::string convolution(const std::string &x, const Convolution &c) override {
    return assign("F.conv2d(" + x + ", " + param(c.weight) + ", " +
                      (c.bias ? param(*c.bias) : std::string("None")) +
                      ", stride=" + tuple(c.stride) + ", padding=" + tuple(c.padding) +
                      ", groups=" + std::to_string(c.groups) + ")",
                  {x});
  }
  std::string layerNorm(const std::string &x, const std::string &scale,
                        const std::string &offset, double epsilon) override {
    return assign("F.layer_norm(" + x + ", " + param(scale) + ".shape, " + param(scale) + ", " +
                      param(offset) + ", " + number(epsilon) + ")",
                  {x});
  }
  std::string linear(const std::string &x, const std::string &weight,
                     const std::optional<std::string> &bias) override {
    return assign("F.linear(" + x + ", " + param(weight) + ", " +
                      (bias ? param(*bias) : std::string("None")) + ")",
                  {x});
  }
  std::string scale(const std::string &x, const std::string &s) override {
    return assign(x + " * " + param(s), {x});
  }
  std::string gelu(const std::string &x) override { return assign("F.gelu(" + x + ")", {x}); }
  std::string relu(const std::string &x) override { return assign("F.relu(" + x + ")", {x}); }
  std::string add(const std::string &a, const std::string &b) override {
    return assign(a + " + " + b, {a, b});
  }
  std::string multiply(const std::string &a, const std::string &b) override {
    return assign(a + " * " + b, {a, b});
  }
  std::string globalAveragePool(const std::string &x) override {
    return assign(x + ".mean(dim=(2, 3))", {x});
  }

  /// The body of forward, indented, with `del` after last uses.
  std::string body() const {
    std::map<std::string, size_t> lastUse;
    for (size_t i = 0; i < statements.size(); ++i)
      for (const std::string &read : statements[i].reads)
        lastUse[read] = i;
    std::string out;
    for (size_t i = 0; i < statements.size(); ++i) {
      out += "        " + statements[i].text + "\n";
      std::vector<std::string> dead;
      for (const std::string &read : statements[i].reads)
        if (lastUse.at(read) == i && read != "x" &&
            statements[i].text.rfind("return ", 0) != 0 &&
            std::find(dead.begin(), dead.end(), read) == dead.end())
          dead.push_back(read);
      if (!dead.empty()) {
        out += "        del ";
        for (size_t d = 0; d < dead.size(); ++d)
          out += (d ? ", " : "") + dead[d];
        out += "\n";
      }
    }
    return out;
  }

private:
  struct Statement {
    std::string text;
    std::vector<std::string> reads;
    std::string result;
  };

  static std::string param(const std::string &name) { return "w[" + codegen::cString(name) + "]"; }

  std::string assign(const std::string &expression, std::vector<std::string> reads) {
    std::string name = "v" + std::to_string(++count);
    statements.push_back({name + " = " + expression, std::move(reads), name});
    return name;
  }

  std::vector<Statement> statements;
  int64_t count = 0;
};

std::string initText(const rt::InitSpec &init) {
  switch (init.kind) {
  case rt::InitKind::Zeros: return "\"zeros\", 0.0";
  case rt::InitKind::Ones: return "\"ones\", 0.0";
  case rt::InitKind::Constant: return "\"constant\", " + number(init.value);
  case rt::InitKind::Normal: return "\"normal\", " + number(init.value);
  case rt::InitKind::TruncNormal: return "\"trunc_normal\", " + number(init.value);
  case rt::InitKind::Uniform: return "\"uniform\", " + number(init.value);
  }
  return "\"zeros\", 0.0";
}

// What every exported module shares: building the parameters by name,
// their initialisers, and safetensors files without the safetensors package.
constexpr const char *kSupport = R"PY(

def _register(root, name, shape):
    """Registers parameter `name` (dotted) of `shape`, creating the modules
    on its path, so that state_dict() names it as qdsl does."""
    *path, leaf = name.split(".")
    module = root
    for part in path:
        child = module._modules.get(part)
        if child is None:
            child = torch.nn.Module()
            module.add_module(part, child)
        module = child
    module.register_parameter(leaf, torch.nn.Parameter(torch.empty(shape)))


def _initialise(tensor, kind, value):
    with torch.no_grad():
        if kind == "zeros":
            tensor.zero_()
        elif kind == "ones":
            tensor.fill_(1.0)
        elif kind == "constant":
            tensor.fill_(value)
        elif kind == "normal":
            tensor.normal_(0.0, value)
        elif kind == "trunc_normal":
            torch.nn.init.trunc_normal_(tensor, std=value, a=-2 * value, b=2 * value)
        elif kind == "uniform":
            tensor.uniform_(-value, value)
        else:
            raise ValueError("unknown initialiser " + kind)


def load_safetensors(path):
    """The float32 tensors of a safetensors file (qdsl weights export's)."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if len(data) < 8:
        raise ValueError("%s: not a safetensors file (%d bytes)" % (path, len(data)))
    size = struct.unpack("<Q", data[:8])[0]
    if size > len(data) - 8:
        raise ValueError("%s: header of %d bytes in a file of %d" % (path, size, len(data)))
    header = json.loads(data[8:8 + size].decode("utf-8"))
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry.get("dtype") != "F32":
            raise ValueError("%s: tensor '%s' is %s, expected F32" % (path, name, entry.get("dtype")))
        begin, end = entry["data_offsets"]
        shape = entry["shape"]
        count = math.prod(shape)
        if end - begin != 4 * count or end > len(data) - 8 - size or begin < 0:
            raise ValueError("%s: tensor '%s' has offsets %s for shape %s" % (path, name, (begin, end), shape))
        flat = torch.frombuffer(data, dtype=torch.float32, count=count, offset=8 + size + begin)
        tensors[name] = flat.reshape(shape).clone()
    return tensors


def save_safetensors(tensors, path):
    """Writes float32 `tensors` (a state_dict) as safetensors for qdsl
    weights import."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu", torch.float32).contiguous()
        blob = ctypes.string_at(t.data_ptr(), t.numel() * 4) if t.numel() else b""
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for blob in blobs:
            f.write(blob)
)PY";

} // namespace

bool exportPyTorchModule(mlir::func::FuncOp model, const std::string &source,
                         std::string &python, std::string &error) {
  PythonBuilder builder;
  if (!lowerModel(model, builder, error))
    return false;
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const rt::TensorSpec &spec : rt::pytorchWeightShapes(model))
    shapes[spec.name] = spec.shape;
  const std::string name = model.getSymName().str(), cls = className(name);
  std::vector<int64_t> input = exportedInputShape(model);
  auto output = llvm::cast<mlir::RankedTensorType>(model.getResultTypes()[0]).getShape();

  // The file's name goes into a comment: no line break may end it early.
  std::string shownSource = source;
  for (char &c : shownSource)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      c = '?';
  std::string out;
  out += "# " + name + ", exported by qdsl from " + shownSource +
         " (qdsl export --format pytorch).\n";
  out += "#\n# Input: " +
         std::string(input.size() == 3 ? "images, channels first" : "features") + ", (batch, " +
         joined(input) + ") float32; output: (batch, " +
         std::to_string(output.back()) + ").\n";
  out += "# state_dict() has the names and layouts of `qdsl weights export`:\n"
         "#   qdsl weights export MODEL.qd w.safetensors -o pt.safetensors\n"
         "#   model.load_state_dict(load_safetensors(\"pt.safetensors\"))\n"
         "#   save_safetensors(model.state_dict(), \"trained.safetensors\")\n"
         "#   qdsl weights import MODEL.qd trained.safetensors -o w.safetensors\n"
         "# Needs only PyTorch (and Python's standard library).\n\n"
         "import ctypes\nimport json\nimport math\nimport struct\n\n"
         "import torch\nimport torch.nn.functional as F\n\n"
         "INPUT_SHAPE = " + tuple(input) + "\n" +
         "OUTPUTS = " + std::to_string(output.back()) + "\n\n"
         "# (name, PyTorch shape, initialiser, its value) of every weight.\n"
         "WEIGHTS = [\n";
  for (const rt::WeightInfo &w : rt::listWeights(model)) {
    std::string torchName = rt::toPyTorchName(w.name);
    out += "    (" + codegen::cString(torchName) + ", " + tuple(shapes.at(torchName)) + ", " +
           initText(w.init) + "),\n";
  }
  out += "]\n";
  out += kSupport;
  out += "\n\nclass " + cls + "(torch.nn.Module):\n";
  out += "    def __init__(self):\n"
         "        super().__init__()\n"
         "        for name, shape, _, _ in WEIGHTS:\n"
         "            _register(self, name, shape)\n"
         "        self.reset_parameters()\n\n"
         "    def reset_parameters(self):\n"
         "        \"\"\"Initialises every weight as the model file says.\"\"\"\n"
         "        parameters = dict(self.named_parameters())\n"
         "        for name, _, kind, value in WEIGHTS:\n"
         "            _initialise(parameters[name], kind, value)\n\n"
         "    def forward(self, x):\n"
         "        w = dict(self.named_parameters())\n";
  out += builder.body();
  out += "\n\ndef create():\n    return " + cls + "()\n";
  python = std::move(out);
  return true;
}

} // namespace qdsl::exporter
