//===- QuadraShapes.cpp - result types of quadra layer ops ----------------===//

#include "dialect/QuadraShapes.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

namespace qdsl::quadra {

namespace {

// Bounds that keep every later size computation far from overflow.
constexpr int64_t kMaxWindow = 1 << 20; // kernel, stride or padding

bool isDynamic(int64_t d) { return ShapedType::isDynamic(d); }
bool compatible(int64_t a, int64_t b) {
  return isDynamic(a) || isDynamic(b) || a == b;
}

std::string describeDims(ArrayRef<int64_t> dims) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "[";
  llvm::interleaveComma(dims, os, [&](int64_t d) {
    if (isDynamic(d))
      os << "?";
    else
      os << d;
  });
  os << "]";
  return s;
}

/// Checks what every operand of a layer op must be and reports it as `what`
/// of `op`: a ranked float tensor, of `rank` when rank >= 0.
FailureOr<RankedTensorType> expectTensor(MaybeLoc loc, StringRef op,
                                         StringRef what, Type type,
                                         int64_t rank = -1,
                                         StringRef rankMeaning = "") {
  auto tensor = llvm::dyn_cast_or_null<RankedTensorType>(type);
  if (!tensor || !llvm::isa<FloatType>(tensor.getElementType()))
    return emitOptionalError(loc, op, ": the ", what,
                             " must be a ranked tensor of floats, got ",
                             describeType(type));
  if (rank >= 0 && tensor.getRank() != rank)
    return emitOptionalError(loc, op, ": the ", what, " must have rank ", rank,
                             rankMeaning.empty() ? "" : " ", rankMeaning,
                             ", got ", describeType(type));
  return tensor;
}

LogicalResult expectSameElementType(MaybeLoc loc, StringRef op,
                                    RankedTensorType input, StringRef what,
                                    RankedTensorType other) {
  if (input.getElementType() == other.getElementType())
    return success();
  return emitOptionalError(loc, op, ": the ", what, " has element type ",
                           other.getElementType(), " but the input has ",
                           input.getElementType());
}

/// A [size] vector operand (bias, scale, offset) of a layer with `size`
/// channels.
LogicalResult expectVector(MaybeLoc loc, StringRef op, StringRef what,
                           Type type, RankedTensorType input, int64_t size) {
  auto vec = expectTensor(loc, op, what, type, 1);
  if (failed(vec) || failed(expectSameElementType(loc, op, input, what, *vec)))
    return failure();
  if (!compatible(vec->getDimSize(0), size))
    return emitOptionalError(loc, op, ": the ", what, " has ",
                             vec->getDimSize(0), " elements but the layer has ",
                             size, " channels");
  return success();
}

LogicalResult expectWindowAttrs(MaybeLoc loc, StringRef op,
                                ArrayRef<int64_t> stride,
                                ArrayRef<int64_t> padding) {
  if (stride.size() != 2)
    return emitOptionalError(loc, op, ": stride must have 2 values [sh, sw], got ",
                             stride.size());
  if (padding.size() != 2)
    return emitOptionalError(loc, op,
                             ": padding must have 2 values [ph, pw], got ",
                             padding.size());
  for (int64_t s : stride)
    if (s < 1 || s > kMaxWindow)
      return emitOptionalError(loc, op, ": stride must be between 1 and ",
                               kMaxWindow, ", got ", s);
  for (int64_t p : padding)
    if (p < 0 || p > kMaxWindow)
      return emitOptionalError(loc, op, ": padding must be between 0 and ",
                               kMaxWindow, ", got ", p);
  return success();
}

/// Output extent of a sliding window along one spatial axis.
FailureOr<int64_t> windowOutput(MaybeLoc loc, StringRef op, StringRef axis,
                                int64_t in, int64_t kernel, int64_t stride,
                                int64_t pad) {
  if (isDynamic(in))
    return ShapedType::kDynamic;
  int64_t padded;
  if (__builtin_add_overflow(in, 2 * pad, &padded))
    return emitOptionalError(loc, op, ": the input ", axis, " is too large");
  if (padded < kernel)
    return emitOptionalError(loc, op, ": the kernel (", kernel,
                             ") is larger than the padded input ", axis, " (",
                             in, " + 2·", pad, " = ", padded, ")");
  return (padded - kernel) / stride + 1;
}

/// Shared by the depthwise convolutions: a [kh, kw, C] filter for an input
/// with C channels.
LogicalResult expectDepthwiseFilter(MaybeLoc loc, StringRef op, StringRef what,
                                    Type type, RankedTensorType input) {
  auto filter = expectTensor(loc, op, what, type, 3, "[kh, kw, C]");
  if (failed(filter) ||
      failed(expectSameElementType(loc, op, input, what, *filter)))
    return failure();
  ArrayRef<int64_t> f = filter->getShape();
  if (isDynamic(f[0]) || isDynamic(f[1]))
    return emitOptionalError(loc, op, ": the ", what,
                             " must have a static kernel size, got ",
                             describeType(type));
  if (f[0] < 1 || f[1] < 1 || f[0] > kMaxWindow || f[1] > kMaxWindow)
    return emitOptionalError(loc, op, ": the kernel size must be between 1 and ",
                             kMaxWindow, ", got ", f[0], "x", f[1]);
  if (!compatible(f[2], input.getDimSize(3)))
    return emitOptionalError(loc, op, ": the input has ", input.getDimSize(3),
                             " channels but the ", what, " ",
                             describeType(type), " is for ", f[2]);
  return success();
}

FailureOr<RankedTensorType> depthwiseResult(MaybeLoc loc, StringRef op,
                                            RankedTensorType input,
                                            ArrayRef<int64_t> kernel,
                                            ArrayRef<int64_t> stride,
                                            ArrayRef<int64_t> padding) {
  ArrayRef<int64_t> x = input.getShape();
  auto h = windowOutput(loc, op, "height", x[1], kernel[0], stride[0], padding[0]);
  if (failed(h))
    return failure();
  auto w = windowOutput(loc, op, "width", x[2], kernel[1], stride[1], padding[1]);
  if (failed(w))
    return failure();
  return RankedTensorType::get({x[0], *h, *w, x[3]}, input.getElementType());
}

LogicalResult expectTriple(MaybeLoc loc, StringRef op, Type wa, Type wb,
                           Type wc) {
  if (wa != wb || wa != wc)
    return emitOptionalError(loc, op,
                             ": the three weights must have one type, got ",
                             describeType(wa), ", ", describeType(wb), " and ",
                             describeType(wc));
  return success();
}

LogicalResult expectBiases(MaybeLoc loc, StringRef op, TypeRange biases,
                           RankedTensorType input, int64_t channels) {
  if (biases.empty())
    return success();
  if (biases.size() != 3)
    return emitOptionalError(loc, op,
                             ": expected no biases or three (for xa, xb and "
                             "xc), got ",
                             biases.size());
  static const char *names[] = {"first bias", "second bias", "third bias"};
  for (auto [i, bias] : llvm::enumerate(biases))
    if (failed(expectVector(loc, op, names[i], bias, input, channels)))
      return failure();
  return success();
}

} // namespace

std::string describeType(Type type) {
  auto tensor = llvm::dyn_cast_or_null<RankedTensorType>(type);
  std::string s;
  llvm::raw_string_ostream os(s);
  if (!tensor) {
    if (type)
      os << type;
    else
      os << "<no value>";
    return s;
  }
  os << tensor.getElementType() << describeDims(tensor.getShape());
  return s;
}

FailureOr<RankedTensorType> inferConv2DType(MaybeLoc loc, Type inputType,
                                            Type filterType, Type biasType,
                                            ArrayRef<int64_t> stride,
                                            ArrayRef<int64_t> padding,
                                            int64_t groups) {
  StringRef op = "conv2d";
  auto input = expectTensor(loc, op, "input", inputType, 4, "(NHWC)");
  if (failed(input))
    return failure();
  auto filter = expectTensor(loc, op, "filter", filterType, 4,
                             "[kh, kw, C_in / groups, C_out]");
  if (failed(filter) ||
      failed(expectSameElementType(loc, op, *input, "filter", *filter)) ||
      failed(expectWindowAttrs(loc, op, stride, padding)))
    return failure();
  ArrayRef<int64_t> f = filter->getShape();
  if (llvm::any_of(f, isDynamic))
    return emitOptionalError(loc, op, ": the filter must have a static shape, got ",
                             describeType(filterType));
  if (f[0] < 1 || f[1] < 1 || f[0] > kMaxWindow || f[1] > kMaxWindow)
    return emitOptionalError(loc, op, ": the kernel size must be between 1 and ",
                             kMaxWindow, ", got ", f[0], "x", f[1]);
  if (f[2] < 1 || f[3] < 1)
    return emitOptionalError(loc, op, ": the filter ", describeType(filterType),
                             " has no channels");
  if (groups < 1)
    return emitOptionalError(loc, op, ": groups must be at least 1, got ",
                             groups);
  int64_t cin = input->getDimSize(3);
  int64_t cout = f[3];
  if (!isDynamic(cin) && cin % groups != 0)
    return emitOptionalError(loc, op, ": the input's ", cin,
                             " channels do not divide into ", groups, " groups");
  if (cout % groups != 0)
    return emitOptionalError(loc, op, ": the ", cout,
                             " output channels do not divide into ", groups,
                             " groups");
  if (!isDynamic(cin) && cin / groups != f[2])
    return emitOptionalError(
        loc, op, ": the input has ", cin, " channels, so with groups = ",
        groups, " the filter needs ", cin / groups,
        " input channels per group, but ", describeType(filterType), " has ",
        f[2]);
  if (biasType && failed(expectVector(loc, op, "bias", biasType, *input, cout)))
    return failure();
  ArrayRef<int64_t> x = input->getShape();
  auto h = windowOutput(loc, op, "height", x[1], f[0], stride[0], padding[0]);
  if (failed(h))
    return failure();
  auto w = windowOutput(loc, op, "width", x[2], f[1], stride[1], padding[1]);
  if (failed(w))
    return failure();
  return RankedTensorType::get({x[0], *h, *w, cout}, input->getElementType());
}

FailureOr<RankedTensorType>
inferDepthwiseConv2DType(MaybeLoc loc, Type inputType, Type filterType,
                         Type biasType, ArrayRef<int64_t> stride,
                         ArrayRef<int64_t> padding) {
  StringRef op = "dwconv";
  auto input = expectTensor(loc, op, "input", inputType, 4, "(NHWC)");
  if (failed(input) ||
      failed(expectDepthwiseFilter(loc, op, "filter", filterType, *input)) ||
      failed(expectWindowAttrs(loc, op, stride, padding)))
    return failure();
  if (biasType && failed(expectVector(loc, op, "bias", biasType, *input,
                                      input->getDimSize(3))))
    return failure();
  auto filter = llvm::cast<RankedTensorType>(filterType);
  return depthwiseResult(loc, op, *input, filter.getShape(), stride, padding);
}

FailureOr<RankedTensorType>
inferQuadraticDepthwiseConv2DType(MaybeLoc loc, Type inputType, Type wa,
                                  Type wb, Type wc, TypeRange biases,
                                  ArrayRef<int64_t> stride,
                                  ArrayRef<int64_t> padding) {
  StringRef op = "qdwconv";
  auto input = expectTensor(loc, op, "input", inputType, 4, "(NHWC)");
  if (failed(input) ||
      failed(expectDepthwiseFilter(loc, op, "first filter", wa, *input)) ||
      failed(expectTriple(loc, op, wa, wb, wc)) ||
      failed(expectWindowAttrs(loc, op, stride, padding)) ||
      failed(expectBiases(loc, op, biases, *input, input->getDimSize(3))))
    return failure();
  auto filter = llvm::cast<RankedTensorType>(wa);
  return depthwiseResult(loc, op, *input, filter.getShape(), stride, padding);
}

FailureOr<RankedTensorType> inferLinearType(MaybeLoc loc, Type inputType,
                                            Type weightType, Type biasType) {
  StringRef op = "linear";
  auto input = expectTensor(loc, op, "input", inputType);
  if (failed(input))
    return failure();
  if (input->getRank() < 1)
    return emitOptionalError(loc, op, ": the input must have a channel axis, got ",
                             describeType(inputType));
  auto weight = expectTensor(loc, op, "weight", weightType, 2, "[C_in, C_out]");
  if (failed(weight) ||
      failed(expectSameElementType(loc, op, *input, "weight", *weight)))
    return failure();
  int64_t cin = input->getShape().back();
  if (!compatible(cin, weight->getDimSize(0)))
    return emitOptionalError(loc, op, ": the input has ", cin,
                             " channels but the weight ",
                             describeType(weightType), " is for ",
                             weight->getDimSize(0));
  int64_t cout = weight->getDimSize(1);
  if (isDynamic(cout) || cout < 1)
    return emitOptionalError(loc, op,
                             ": the weight must have a static, positive number "
                             "of outputs, got ",
                             describeType(weightType));
  if (biasType && failed(expectVector(loc, op, "bias", biasType, *input, cout)))
    return failure();
  SmallVector<int64_t> shape(input->getShape());
  shape.back() = cout;
  return RankedTensorType::get(shape, input->getElementType());
}

FailureOr<RankedTensorType> inferQuadraticLinearType(MaybeLoc loc,
                                                     Type inputType, Type wa,
                                                     Type wb, Type wc,
                                                     TypeRange biases) {
  StringRef op = "qlinear";
  if (failed(expectTriple(loc, op, wa, wb, wc)))
    return failure();
  // The shape rule is that of one linear layer; report it under this op's name.
  auto input = expectTensor(loc, op, "input", inputType);
  auto weight = expectTensor(loc, op, "weight", wa, 2, "[C_in, C_out]");
  if (failed(input) || failed(weight))
    return failure();
  auto result = inferLinearType(std::nullopt, inputType, wa, Type());
  if (failed(result)) {
    if (input->getRank() >= 1 &&
        !compatible(input->getShape().back(), weight->getDimSize(0)))
      return emitOptionalError(loc, op, ": the input has ",
                               input->getShape().back(),
                               " channels but the weights ", describeType(wa),
                               " are for ", weight->getDimSize(0));
    return emitOptionalError(loc, op, ": the input ", describeType(inputType),
                             " and the weights ", describeType(wa),
                             " do not fit together");
  }
  if (failed(expectBiases(loc, op, biases, *input, result->getShape().back())))
    return failure();
  return result;
}

FailureOr<RankedTensorType> inferLayerNormType(MaybeLoc loc, Type inputType,
                                               Type scale, Type offset,
                                               double epsilon) {
  StringRef op = "layernorm";
  auto input = expectTensor(loc, op, "input", inputType);
  if (failed(input))
    return failure();
  if (input->getRank() < 1)
    return emitOptionalError(loc, op, ": the input must have a channel axis");
  int64_t c = input->getShape().back();
  if (failed(expectVector(loc, op, "scale", scale, *input, c)) ||
      failed(expectVector(loc, op, "offset", offset, *input, c)))
    return failure();
  if (!(epsilon > 0.0) || epsilon > 1.0)
    return emitOptionalError(loc, op, ": epsilon must be in (0, 1], got ",
                             epsilon);
  return *input;
}

FailureOr<RankedTensorType> inferLayerScaleType(MaybeLoc loc, Type inputType,
                                                Type scale) {
  StringRef op = "layerscale";
  auto input = expectTensor(loc, op, "input", inputType);
  if (failed(input))
    return failure();
  if (input->getRank() < 1)
    return emitOptionalError(loc, op, ": the input must have a channel axis");
  if (failed(expectVector(loc, op, "scale", scale, *input,
                          input->getShape().back())))
    return failure();
  return *input;
}

FailureOr<RankedTensorType> inferGlobalAvgPoolType(MaybeLoc loc,
                                                   Type inputType) {
  auto input = expectTensor(loc, "avgpool", "input", inputType, 4, "(NHWC)");
  if (failed(input))
    return failure();
  return RankedTensorType::get({input->getDimSize(0), input->getDimSize(3)},
                               input->getElementType());
}

FailureOr<RankedTensorType> inferElementwiseType(MaybeLoc loc, StringRef op,
                                                 Type lhsType, Type rhsType) {
  auto lhs = expectTensor(loc, op, "left operand", lhsType);
  auto rhs = expectTensor(loc, op, "right operand", rhsType);
  if (failed(lhs) || failed(rhs))
    return failure();
  if (*lhs != *rhs)
    return emitOptionalError(loc, op, ": the operands must have one type, got ",
                             describeType(lhsType), " and ",
                             describeType(rhsType));
  return *lhs;
}

FailureOr<RankedTensorType> inferUnaryType(MaybeLoc loc, StringRef op,
                                           Type input) {
  return expectTensor(loc, op, "input", input);
}

FailureOr<uint64_t> countElements(Type type, int64_t batch) {
  auto tensor = llvm::dyn_cast<RankedTensorType>(type);
  if (!tensor)
    return failure();
  uint64_t n = 1;
  for (auto [i, d] : llvm::enumerate(tensor.getShape())) {
    int64_t dim = d;
    if (isDynamic(d)) {
      if (i != 0 || batch < 0)
        return failure();
      dim = batch;
    }
    if (dim < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(dim), &n))
      return failure();
  }
  return n;
}

} // namespace qdsl::quadra
