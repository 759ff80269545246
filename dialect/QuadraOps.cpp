//===- QuadraOps.cpp - quadra operations ----------------------------------===//

#include "dialect/QuadraOps.h"
#include "dialect/QuadraShapes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"

using namespace mlir;
using namespace qdsl::quadra;

namespace {

/// Turns a shape function's answer into what InferTypeOpInterface expects.
LogicalResult pushResult(FailureOr<RankedTensorType> type,
                         SmallVectorImpl<Type> &results) {
  if (failed(type))
    return failure();
  results.push_back(*type);
  return success();
}

Type typeOrNull(Value value) { return value ? value.getType() : Type(); }

} // namespace

// `eps 1.0e-06` rather than `eps 9.9999999999999995E-7`.
static ParseResult parseShortFloat(OpAsmParser &parser, FloatAttr &attr) {
  double value;
  if (parser.parseFloat(value))
    return failure();
  attr = parser.getBuilder().getF64FloatAttr(value);
  return success();
}

static void printShortFloat(OpAsmPrinter &p, Operation *, FloatAttr attr) {
  p << formatFloat(attr.getValueAsDouble());
}

namespace {

/// MACs of an op whose every output element costs `perElement`.
FailureOr<uint64_t> macsPerOutput(Value result, int64_t batch,
                                  uint64_t perElement) {
  FailureOr<uint64_t> elements = countElements(result.getType(), batch);
  uint64_t macs;
  if (failed(elements) || __builtin_mul_overflow(*elements, perElement, &macs))
    return failure();
  return macs;
}

/// a·b, or failure when it overflows.
FailureOr<uint64_t> multiply(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r))
    return failure();
  return r;
}

/// MACs per output element of a window over `filter`'s first two dimensions
/// and `depth` channels, taken `copies` times, plus `extra`.
FailureOr<uint64_t> windowMacs(Value filter, uint64_t depth, uint64_t copies,
                               uint64_t extra) {
  auto shape = llvm::cast<RankedTensorType>(filter.getType()).getShape();
  FailureOr<uint64_t> window = multiply(shape[0], shape[1]);
  if (succeeded(window))
    window = multiply(*window, depth);
  if (succeeded(window))
    window = multiply(*window, copies);
  if (failed(window) || *window + extra < *window)
    return failure();
  return *window + extra;
}

} // namespace

std::string qdsl::quadra::getLocationName(Location loc) {
  if (auto name = llvm::dyn_cast<NameLoc>(loc))
    return name.getName().str();
  if (auto fused = llvm::dyn_cast<FusedLoc>(loc)) {
    for (Location inner : fused.getLocations()) {
      std::string found = getLocationName(inner);
      if (!found.empty())
        return found;
    }
  }
  if (auto callSite = llvm::dyn_cast<CallSiteLoc>(loc))
    return getLocationName(callSite.getCallee());
  return "";
}

std::string qdsl::quadra::getLayerName(Location loc) {
  std::string name = getLocationName(loc);
  return name.substr(0, name.find('/'));
}

//===----------------------------------------------------------------------===//
// WeightOp
//===----------------------------------------------------------------------===//

// quadra.weight "name" trunc_normal(0.02) {attrs} : tensor<...>
ParseResult WeightOp::parse(OpAsmParser &parser, OperationState &result) {
  std::string name;
  SMLoc nameLoc = parser.getCurrentLocation();
  if (parser.parseString(&name))
    return failure();
  FailureOr<InitializerAttr> init = InitializerAttr::parseBody(parser);
  if (failed(init) || !*init)
    return failure();
  Type type;
  if (parser.parseOptionalAttrDict(result.attributes) || parser.parseColon() ||
      parser.parseType(type))
    return failure();
  if (name.empty())
    return parser.emitError(nameLoc, "a weight needs a non-empty name");
  Builder &b = parser.getBuilder();
  result.getOrAddProperties<Properties>().name = b.getStringAttr(name);
  result.getOrAddProperties<Properties>().init = *init;
  result.addTypes(type);
  return success();
}

void WeightOp::print(OpAsmPrinter &p) {
  p << " ";
  p.printString(getName());
  p << " ";
  getInit().printBody(p);
  p.printOptionalAttrDict((*this)->getAttrs(), {"name", "init"});
  p << " : " << getResult().getType();
}

LogicalResult WeightOp::verify() {
  if (getName().empty())
    return emitOpError("needs a non-empty name");
  RankedTensorType type = getType();
  if (!type.hasStaticShape())
    return emitOpError("weight '")
           << getName() << "' must have a static shape, got "
           << describeType(type);
  if (llvm::any_of(type.getShape(), [](int64_t d) { return d < 1; }))
    return emitOpError("weight '")
           << getName() << "' has an empty dimension: " << describeType(type);
  return success();
}

void WeightOp::getAsmResultNames(OpAsmSetValueNameFn setNameFn) {
  setNameFn(getResult(), getName());
}

//===----------------------------------------------------------------------===//
// Result types
//===----------------------------------------------------------------------===//

LogicalResult Conv2DOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  return pushResult(
      inferConv2DType(loc, adaptor.getInput().getType(),
                      adaptor.getFilter().getType(), typeOrNull(adaptor.getBias()),
                      adaptor.getStride(), adaptor.getPadding(),
                      static_cast<int64_t>(adaptor.getGroups())),
      results);
}

LogicalResult DepthwiseConv2DOp::inferReturnTypes(
    MLIRContext *, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<Type> &results) {
  return pushResult(inferDepthwiseConv2DType(
                        loc, adaptor.getInput().getType(),
                        adaptor.getFilter().getType(),
                        typeOrNull(adaptor.getBias()), adaptor.getStride(),
                        adaptor.getPadding()),
                    results);
}

LogicalResult QuadraticDepthwiseConv2DOp::inferReturnTypes(
    MLIRContext *, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<Type> &results) {
  return pushResult(inferQuadraticDepthwiseConv2DType(
                        loc, adaptor.getInput().getType(),
                        adaptor.getWa().getType(), adaptor.getWb().getType(),
                        adaptor.getWc().getType(),
                        adaptor.getBiases().getTypes(), adaptor.getStride(),
                        adaptor.getPadding()),
                    results);
}

LogicalResult LinearOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  return pushResult(inferLinearType(loc, adaptor.getInput().getType(),
                                    adaptor.getWeight().getType(),
                                    typeOrNull(adaptor.getBias())),
                    results);
}

LogicalResult QuadraticLinearOp::inferReturnTypes(
    MLIRContext *, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<Type> &results) {
  return pushResult(inferQuadraticLinearType(
                        loc, adaptor.getInput().getType(),
                        adaptor.getWa().getType(), adaptor.getWb().getType(),
                        adaptor.getWc().getType(),
                        adaptor.getBiases().getTypes()),
                    results);
}

LogicalResult LayerNormOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  return pushResult(inferLayerNormType(loc, adaptor.getInput().getType(),
                                       adaptor.getScale().getType(),
                                       adaptor.getOffset().getType(),
                                       adaptor.getEpsilon().convertToDouble()),
                    results);
}

LogicalResult LayerScaleOp::inferReturnTypes(MLIRContext *,
                                             std::optional<Location> loc,
                                             Adaptor adaptor,
                                             SmallVectorImpl<Type> &results) {
  return pushResult(inferLayerScaleType(loc, adaptor.getInput().getType(),
                                        adaptor.getScale().getType()),
                    results);
}

LogicalResult GlobalAvgPoolOp::inferReturnTypes(
    MLIRContext *, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<Type> &results) {
  return pushResult(inferGlobalAvgPoolType(loc, adaptor.getInput().getType()),
                    results);
}


//===----------------------------------------------------------------------===//
// Loss and gradient ops
//===----------------------------------------------------------------------===//

namespace {

RankedTensorType tensorType(Type type) { return llvm::cast<RankedTensorType>(type); }

/// `shape` with its last dimension replaced.
RankedTensorType withLastDim(RankedTensorType type, int64_t last) {
  SmallVector<int64_t> shape(type.getShape());
  shape.back() = last;
  return RankedTensorType::get(shape, type.getElementType());
}

LogicalResult emitTypeError(std::optional<Location> loc, const Twine &message) {
  if (loc)
    return emitError(*loc, message);
  return failure();
}

/// A gradient op whose result is a forward operand: the forward op run on
/// that type must give back the gradient's type.
LogicalResult checkAdjoint(Operation *op, FailureOr<RankedTensorType> forward,
                           Type gradient, StringRef what) {
  if (failed(forward))
    return op->emitOpError("result type does not fit a forward ") << what;
  if (*forward != gradient)
    return op->emitOpError("the forward ")
           << what << " of this result type gives " << *forward
           << ", not the gradient's type " << gradient;
  return success();
}

} // namespace

LogicalResult SoftmaxCrossEntropyOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<Type> &results) {
  auto logits = tensorType(adaptor.getLogits().getType());
  auto labels = tensorType(adaptor.getLabels().getType());
  if (logits.getRank() != 2)
    return emitTypeError(loc, "softmax_cross_entropy expects [N, K] logits, got " +
                                  describeType(logits));
  if (labels.getDimSize(0) != logits.getDimSize(0))
    return emitTypeError(loc, "softmax_cross_entropy: labels " + describeType(labels) +
                                  " do not match the batch of logits " +
                                  describeType(logits));
  results.push_back(RankedTensorType::get({}, Float32Type::get(context)));
  return success();
}

LogicalResult SoftmaxCrossEntropyOp::verify() {
  double smoothing = getSmoothing().convertToDouble();
  if (!(smoothing >= 0.0 && smoothing < 1.0))
    return emitOpError("label smoothing must be in [0, 1), got ") << smoothing;
  return success();
}

LogicalResult SoftmaxCrossEntropyGradOp::inferReturnTypes(
    MLIRContext *, std::optional<Location>, Adaptor adaptor,
    SmallVectorImpl<Type> &results) {
  results.push_back(adaptor.getLogits().getType());
  return success();
}

LogicalResult Conv2DGradInputOp::verify() {
  return checkAdjoint(*this,
                      inferConv2DType(std::nullopt, getResult().getType(),
                                      getFilter().getType(), Type(), getStride(),
                                      getPadding(), static_cast<int64_t>(getGroups())),
                      getDy().getType(), "convolution");
}

LogicalResult Conv2DGradFilterOp::verify() {
  return checkAdjoint(*this,
                      inferConv2DType(std::nullopt, getInput().getType(),
                                      getResult().getType(), Type(), getStride(),
                                      getPadding(), static_cast<int64_t>(getGroups())),
                      getDy().getType(), "convolution");
}

LogicalResult DepthwiseConv2DGradInputOp::verify() {
  return checkAdjoint(*this,
                      inferDepthwiseConv2DType(std::nullopt, getResult().getType(),
                                               getFilter().getType(), Type(),
                                               getStride(), getPadding()),
                      getDy().getType(), "depthwise convolution");
}

LogicalResult DepthwiseConv2DGradFilterOp::verify() {
  return checkAdjoint(*this,
                      inferDepthwiseConv2DType(std::nullopt, getInput().getType(),
                                               getResult().getType(), Type(),
                                               getStride(), getPadding()),
                      getDy().getType(), "depthwise convolution");
}

LogicalResult GlobalAvgPoolGradOp::verify() {
  return checkAdjoint(*this, inferGlobalAvgPoolType(std::nullopt, getResult().getType()),
                      getDy().getType(), "average pooling");
}

LogicalResult LinearGradInputOp::inferReturnTypes(MLIRContext *,
                                                  std::optional<Location> loc,
                                                  Adaptor adaptor,
                                                  SmallVectorImpl<Type> &results) {
  auto dy = tensorType(adaptor.getDy().getType());
  auto weight = tensorType(adaptor.getWeight().getType());
  if (weight.getRank() != 2 || dy.getRank() < 1 ||
      dy.getDimSize(dy.getRank() - 1) != weight.getDimSize(1))
    return emitTypeError(loc, "linear_grad_input: gradient " + describeType(dy) +
                                  " does not fit weight " + describeType(weight));
  results.push_back(withLastDim(dy, weight.getDimSize(0)));
  return success();
}

LogicalResult LinearGradWeightOp::inferReturnTypes(MLIRContext *,
                                                   std::optional<Location> loc,
                                                   Adaptor adaptor,
                                                   SmallVectorImpl<Type> &results) {
  auto x = tensorType(adaptor.getInput().getType());
  auto dy = tensorType(adaptor.getDy().getType());
  if (x.getRank() < 1 || x.getRank() != dy.getRank() ||
      x.getShape().drop_back() != dy.getShape().drop_back())
    return emitTypeError(loc, "linear_grad_weight: input " + describeType(x) +
                                  " and gradient " + describeType(dy) +
                                  " differ in their leading axes");
  results.push_back(RankedTensorType::get(
      {x.getDimSize(x.getRank() - 1), dy.getDimSize(dy.getRank() - 1)},
      x.getElementType()));
  return success();
}

LogicalResult ChannelSumOp::inferReturnTypes(MLIRContext *,
                                             std::optional<Location> loc,
                                             Adaptor adaptor,
                                             SmallVectorImpl<Type> &results) {
  auto x = tensorType(adaptor.getInput().getType());
  if (x.getRank() < 1 || x.isDynamicDim(x.getRank() - 1))
    return emitTypeError(loc, "channel_sum needs a static last axis, got " +
                                  describeType(x));
  results.push_back(
      RankedTensorType::get({x.getDimSize(x.getRank() - 1)}, x.getElementType()));
  return success();
}

LogicalResult LayerNormGradOp::inferReturnTypes(MLIRContext *,
                                                std::optional<Location> loc,
                                                Adaptor adaptor,
                                                SmallVectorImpl<Type> &results) {
  Type input = adaptor.getInput().getType(), scale = adaptor.getScale().getType();
  FailureOr<RankedTensorType> forward = inferLayerNormType(
      loc, input, scale, scale, adaptor.getEpsilon().convertToDouble());
  if (failed(forward))
    return failure();
  if (*forward != adaptor.getDy().getType())
    return emitTypeError(loc, "layernorm_grad: gradient " +
                                  describeType(adaptor.getDy().getType()) +
                                  " is not of the input's type " + describeType(input));
  results.append({input, scale, scale});
  return success();
}

//===----------------------------------------------------------------------===//
// Costs
//===----------------------------------------------------------------------===//

FailureOr<uint64_t> Conv2DOp::getMacs(int64_t batch) {
  auto filter = llvm::cast<RankedTensorType>(getFilter().getType());
  FailureOr<uint64_t> perOutput =
      windowMacs(getFilter(), filter.getDimSize(2), 1, 0);
  if (failed(perOutput))
    return failure();
  return macsPerOutput(getResult(), batch, *perOutput);
}

FailureOr<uint64_t> DepthwiseConv2DOp::getMacs(int64_t batch) {
  FailureOr<uint64_t> perOutput = windowMacs(getFilter(), 1, 1, 0);
  if (failed(perOutput))
    return failure();
  return macsPerOutput(getResult(), batch, *perOutput);
}

// Three depthwise windows, then xa·xb + xc: one more MAC per output.
FailureOr<uint64_t> QuadraticDepthwiseConv2DOp::getMacs(int64_t batch) {
  FailureOr<uint64_t> perOutput = windowMacs(getWa(), 1, 3, 1);
  if (failed(perOutput))
    return failure();
  return macsPerOutput(getResult(), batch, *perOutput);
}

FailureOr<uint64_t> LinearOp::getMacs(int64_t batch) {
  auto weight = llvm::cast<RankedTensorType>(getWeight().getType());
  return macsPerOutput(getResult(), batch, weight.getDimSize(0));
}

FailureOr<uint64_t> QuadraticLinearOp::getMacs(int64_t batch) {
  auto weight = llvm::cast<RankedTensorType>(getWa().getType());
  FailureOr<uint64_t> perOutput = multiply(weight.getDimSize(0), 3);
  if (failed(perOutput))
    return failure();
  return macsPerOutput(getResult(), batch, *perOutput + 1);
}

//===----------------------------------------------------------------------===//
// Folders
//===----------------------------------------------------------------------===//

OpFoldResult IdentityOp::fold(FoldAdaptor) { return getInput(); }

// relu(relu(x)) = relu(x)
OpFoldResult ReluOp::fold(FoldAdaptor) {
  if (auto inner = getInput().getDefiningOp<ReluOp>())
    return inner.getResult();
  return {};
}

//===----------------------------------------------------------------------===//
// ChoiceOp
//===----------------------------------------------------------------------===//

// quadra.choice "layer" %x {attrs} : type -> type candidate "a" {...} ...
ParseResult ChoiceOp::parse(OpAsmParser &parser, OperationState &result) {
  std::string layer;
  OpAsmParser::UnresolvedOperand input;
  Type inputType, resultType;
  if (parser.parseString(&layer) || parser.parseOperand(input) ||
      parser.parseOptionalAttrDict(result.attributes) || parser.parseColon() ||
      parser.parseType(inputType) || parser.parseArrow() ||
      parser.parseType(resultType) ||
      parser.resolveOperand(input, inputType, result.operands))
    return failure();
  SmallVector<Attribute> names;
  while (succeeded(parser.parseOptionalKeyword("candidate"))) {
    std::string name;
    if (parser.parseString(&name))
      return failure();
    names.push_back(parser.getBuilder().getStringAttr(name));
    Region *region = result.addRegion();
    if (parser.parseRegion(*region, /*arguments=*/{}, /*enableNameShadowing=*/false))
      return failure();
  }
  if (names.empty())
    return parser.emitError(parser.getCurrentLocation(),
                            "expected at least one 'candidate'");
  Builder &b = parser.getBuilder();
  auto &props = result.getOrAddProperties<Properties>();
  props.layer = b.getStringAttr(layer);
  props.candidates = b.getArrayAttr(names);
  result.addTypes(resultType);
  return success();
}

void ChoiceOp::print(OpAsmPrinter &p) {
  p << " ";
  p.printString(getLayer());
  p << " " << getInput();
  p.printOptionalAttrDict((*this)->getAttrs(), {"layer", "candidates"});
  p << " : " << getInput().getType() << " -> " << getResult().getType();
  for (auto [name, region] : llvm::zip(getCandidates(), getAlternatives())) {
    p.printNewline();
    p << "candidate ";
    p.printString(llvm::cast<StringAttr>(name).getValue());
    p << " ";
    p.printRegion(region, /*printEntryBlockArgs=*/true,
                  /*printBlockTerminators=*/true);
  }
}

LogicalResult ChoiceOp::verify() {
  if (getAlternatives().empty())
    return emitOpError("needs at least one candidate");
  if (getCandidates().size() != getAlternatives().size())
    return emitOpError("names ")
           << getCandidates().size() << " candidates but has "
           << getAlternatives().size() << " regions";
  llvm::StringSet<> seen;
  for (auto [i, nameAttr] : llvm::enumerate(getCandidates())) {
    auto name = llvm::dyn_cast<StringAttr>(nameAttr);
    if (!name || name.getValue().empty())
      return emitOpError("candidate ") << i << " needs a non-empty name";
    if (!seen.insert(name.getValue()).second)
      return emitOpError("has two candidates named '") << name.getValue() << "'";
  }
  for (auto [i, region] : llvm::enumerate(getAlternatives())) {
    Block &block = region.front();
    if (block.getNumArguments() != 1 ||
        block.getArgument(0).getType() != getInput().getType())
      return emitOpError("candidate '")
             << llvm::cast<StringAttr>(getCandidates()[i]).getValue()
             << "' must take exactly one argument of the input type "
             << getInput().getType();
    auto yield =
        block.empty() ? YieldOp() : llvm::dyn_cast<YieldOp>(block.back());
    if (!yield)
      return emitOpError("candidate '")
             << llvm::cast<StringAttr>(getCandidates()[i]).getValue()
             << "' must end with quadra.yield";
    if (yield.getValues().size() != 1)
      return yield.emitOpError("must yield exactly one value in a candidate");
    if (yield.getValues()[0].getType() != getResult().getType())
      return yield.emitOpError("yields ")
             << describeType(yield.getValues()[0].getType())
             << " but the layer's result is "
             << describeType(getResult().getType());
  }
  return success();
}

namespace {
/// A layer with one candidate is no choice: splice the candidate in place.
struct InlineSingleCandidate : OpRewritePattern<ChoiceOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ChoiceOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getAlternatives().size() != 1)
      return failure();
    Block &body = op.getAlternatives().front().front();
    auto yield = llvm::cast<YieldOp>(body.getTerminator());
    rewriter.inlineBlockBefore(&body, op, op.getInput());
    Value result = yield.getValues()[0];
    rewriter.eraseOp(yield);
    rewriter.replaceOp(op, result);
    return success();
  }
};
} // namespace

void ChoiceOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                           MLIRContext *context) {
  results.add<InlineSingleCandidate>(context);
}

//===----------------------------------------------------------------------===//
// KernelOp
//===----------------------------------------------------------------------===//

// quadra.kernel "name" family "f" (%a, %b) {attrs} : (A, B) -> R { ... }
ParseResult KernelOp::parse(OpAsmParser &parser, OperationState &result) {
  std::string name, family;
  SmallVector<OpAsmParser::UnresolvedOperand> operands;
  FunctionType type;
  SMLoc operandsLoc;
  if (parser.parseString(&name) || parser.parseKeyword("family") ||
      parser.parseString(&family) ||
      (operandsLoc = parser.getCurrentLocation(), false) ||
      parser.parseOperandList(operands, OpAsmParser::Delimiter::Paren) ||
      parser.parseOptionalAttrDict(result.attributes) || parser.parseColon() ||
      parser.parseType(type) ||
      parser.resolveOperands(operands, type.getInputs(), operandsLoc,
                             result.operands))
    return failure();
  if (type.getNumResults() < 1)
    return parser.emitError(operandsLoc, "a kernel has at least one result");
  Region *body = result.addRegion();
  if (parser.parseRegion(*body, /*arguments=*/{}, /*enableNameShadowing=*/false))
    return failure();
  Builder &b = parser.getBuilder();
  auto &props = result.getOrAddProperties<Properties>();
  props.name = b.getStringAttr(name);
  props.family = b.getStringAttr(family);
  result.addTypes(type.getResults());
  return success();
}

void KernelOp::print(OpAsmPrinter &p) {
  p << " ";
  p.printString(getName());
  p << " family ";
  p.printString(getFamily());
  p << " (" << getInputs() << ")";
  p.printOptionalAttrDict((*this)->getAttrs(), {"name", "family"});
  p << " : ";
  p.printFunctionalType(getInputs().getTypes(), getOperation()->getResultTypes());
  p << " ";
  p.printRegion(getBody(), /*printEntryBlockArgs=*/true,
                /*printBlockTerminators=*/true);
}

LogicalResult KernelOp::verify() {
  Block &block = getBody().front();
  if (block.getArgumentTypes() != getInputs().getTypes())
    return emitOpError("region arguments must match the operands' types");
  auto yield = block.empty() ? YieldOp() : llvm::dyn_cast<YieldOp>(block.back());
  if (!yield)
    return emitOpError("must end with quadra.yield");
  if (getOutputs().empty())
    return emitOpError("must have at least one result");
  if (yield.getValues().getTypes() != getOutputs().getTypes()) {
    std::string yielded, results;
    for (Type t : yield.getValues().getTypes())
      yielded += (yielded.empty() ? "" : ", ") + describeType(t);
    for (Type t : getOutputs().getTypes())
      results += (results.empty() ? "" : ", ") + describeType(t);
    return yield.emitOpError("yields (")
           << yielded << ") but the kernel's results are (" << results << ")";
  }
  return success();
}

FailureOr<uint64_t> KernelOp::getMacs(int64_t batch) {
  uint64_t total = 0;
  for (Operation &op : getKernelOps()) {
    auto cost = llvm::dyn_cast<CostOpInterface>(op);
    if (!cost)
      continue;
    FailureOr<uint64_t> macs = cost.getMacs(batch);
    if (failed(macs) || __builtin_add_overflow(total, *macs, &total))
      return failure();
  }
  return total;
}

#define GET_OP_CLASSES
#include "dialect/QuadraOps.cpp.inc"
