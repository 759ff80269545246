//===- MLIRGen.cpp - a checked .qd program to the quadra dialect ----------===//

#include "dsl/MLIRGen.h"

#include "dialect/QuadraOps.h"
#include "dialect/QuadraShapes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Format.h"

#include <cmath>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <optional>

using namespace mlir;
using llvm::SMLoc;
using llvm::StringRef;
using llvm::Twine;

namespace qdsl::dsl {

namespace {

// Limits that keep a hostile or mistaken file from exhausting the machine.
constexpr int64_t kMaxRepeat = 1000;
constexpr unsigned kMaxOps = 100000;     // ops in one model
constexpr unsigned kMaxCallDepth = 64;   // nested block instantiations
constexpr unsigned kMaxCandidates = 1024; // candidates of one choice

/// A model parameter set on the command line (-D name=value), and where
/// the parameter is declared.
struct Override {
  std::string text;  // "C=0"
  Location loc;
};

/// The value of an evaluated expression.
struct EvalValue {
  ValueType type = ValueType::Unknown;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  mlir::Value tensor;
  /// The -D override this value was computed from, if any: an error it
  /// causes is reported against the flag.
  const Override *origin = nullptr;

  static EvalValue ofInt(int64_t v) {
    EvalValue r;
    r.type = ValueType::Int;
    r.i = v;
    return r;
  }
  static EvalValue ofFloat(double v) {
    EvalValue r;
    r.type = ValueType::Float;
    r.f = v;
    return r;
  }
  static EvalValue ofBool(bool v) {
    EvalValue r;
    r.type = ValueType::Bool;
    r.b = v;
    return r;
  }
  static EvalValue ofTensor(mlir::Value v) {
    EvalValue r;
    r.type = ValueType::Tensor;
    r.tensor = v;
    return r;
  }
  double asFloat() const { return type == ValueType::Int ? double(i) : f; }
  /// The same number as a float (an int passed where a float is expected).
  EvalValue widened() const {
    EvalValue r = ofFloat(asFloat());
    r.origin = origin;
    return r;
  }
  std::string str() const {
    switch (type) {
    case ValueType::Int: return std::to_string(i);
    case ValueType::Float: {
      std::string s;
      llvm::raw_string_ostream(s) << llvm::format("%g", f);
      return s;
    }
    case ValueType::Bool: return b ? "true" : "false";
    default: return "?";
    }
  }
};

using Env = llvm::StringMap<EvalValue>;
/// Arguments fixed by a search candidate, by parameter index.
using FixedArgs = llvm::DenseMap<unsigned, EvalValue>;
const FixedArgs noFixed;

/// Naming and location context of one block instantiation.
struct Instance {
  std::string layer;  // stages.2.5
  std::string prefix; // local path inside the layer, "" at its root
  llvm::StringMap<unsigned> counters;
  /// Where the block was called from; none for a model's own expressions.
  std::optional<Location> callerLoc;
  unsigned depth = 0;
};

std::string join(StringRef a, StringRef b) {
  if (a.empty())
    return b.str();
  if (b.empty())
    return a.str();
  return (a + "." + b).str();
}

class Generator {
public:
  Generator(MLIRContext &context, const Program &program,
            const llvm::SourceMgr &sourceMgr)
      : context(context), builder(&context), program(program),
        sourceMgr(sourceMgr) {}

  OwningOpRef<ModuleOp> run(const MLIRGenOptions &options);

private:
  // Locations.
  Location fileLoc(SMLoc loc);
  Location locIn(const Instance &inst, SMLoc loc);
  Location opLoc(const Instance &inst, SMLoc loc, StringRef local);
  std::string opPath(const Instance &inst, StringRef local);

  // Models.
  LogicalResult buildModel(const ModelDecl &model, const MLIRGenOptions &options,
                           ModuleOp module);
  LogicalResult bindModelParams(const ModelDecl &model,
                                const MLIRGenOptions &options, Env &env);
  FailureOr<mlir::Value> buildChoice(const ChoiceExpr &choice,
                                     const std::string &layer, mlir::Value input,
                                     Env &env, Location layerLoc);

  // Evaluation.
  FailureOr<EvalValue> eval(const Expr &expr, Env &env, Instance &inst);
  FailureOr<EvalValue> evalArithmetic(const BinaryExpr &expr,
                                      const EvalValue &l, const EvalValue &r,
                                      Location loc);
  FailureOr<EvalValue> evalNumbers(const BinaryExpr &expr, const EvalValue &l,
                                   const EvalValue &r, Location loc);
  FailureOr<int64_t> evalInt(const Expr &expr, Env &env, Instance &inst);
  /// Calls `call`; the running activation `implicitInput` fills the first
  /// tensor parameter of a layer. `fixed` overrides arguments (search
  /// candidates). `root` marks the call that is a layer by itself.
  FailureOr<mlir::Value>
  emitCall(const CallExpr &call, Env &callerEnv, Instance &inst,
           mlir::Value implicitInput,
           const FixedArgs &fixed, bool root);
  FailureOr<mlir::Value> emitPrimitive(const Primitive &primitive,
                                       const CallExpr &call,
                                       const BoundCall &bound,
                                       std::vector<std::optional<EvalValue>> &args,
                                       Instance &inst, StringRef local, bool root);

  // Building blocks of primitives.
  mlir::Value weight(Location loc, const std::string &name,
                     ArrayRef<int64_t> shape, quadra::InitKind kind,
                     double value);
  LogicalResult countOp(Location loc);

  MLIRContext &context;
  OpBuilder builder;
  const Program &program;
  const llvm::SourceMgr &sourceMgr;
  llvm::StringSet<> weightNames;
  unsigned opCount = 0;
  /// The -D overrides in use; a deque, so values can point at them.
  std::deque<Override> overrides;
};

//===----------------------------------------------------------------------===//
// Locations and names
//===----------------------------------------------------------------------===//

Location Generator::fileLoc(SMLoc loc) {
  if (!loc.isValid())
    return UnknownLoc::get(&context);
  unsigned buffer = sourceMgr.FindBufferContainingLoc(loc);
  if (!buffer)
    return UnknownLoc::get(&context);
  auto [line, col] = sourceMgr.getLineAndColumn(loc, buffer);
  StringRef file = sourceMgr.getMemoryBuffer(buffer)->getBufferIdentifier();
  return FileLineColLoc::get(&context, file, line, col);
}

Location Generator::locIn(const Instance &inst, SMLoc loc) {
  Location here = fileLoc(loc);
  if (!inst.callerLoc)
    return here;
  return CallSiteLoc::get(here, *inst.callerLoc);
}

std::string Generator::opPath(const Instance &inst, StringRef local) {
  std::string inside = join(inst.prefix, local);
  return inside.empty() ? inst.layer : inst.layer + "/" + inside;
}

Location Generator::opLoc(const Instance &inst, SMLoc loc, StringRef local) {
  return NameLoc::get(StringAttr::get(&context, opPath(inst, local)),
                      locIn(inst, loc));
}

LogicalResult Generator::countOp(Location loc) {
  if (++opCount <= kMaxOps)
    return success();
  return emitError(loc) << "the model grows beyond " << kMaxOps
                        << " ops; check the repeat counts";
}

mlir::Value Generator::weight(Location loc, const std::string &name,
                              ArrayRef<int64_t> shape, quadra::InitKind kind,
                              double value) {
  auto type = RankedTensorType::get(shape, builder.getF32Type());
  auto init = quadra::InitializerAttr::get(&context, kind, value);
  return builder.create<quadra::WeightOp>(loc, type, name, init);
}

//===----------------------------------------------------------------------===//
// Expressions
//===----------------------------------------------------------------------===//

FailureOr<int64_t> Generator::evalInt(const Expr &expr, Env &env,
                                      Instance &inst) {
  FailureOr<EvalValue> value = eval(expr, env, inst);
  if (failed(value))
    return failure();
  if (value->type != ValueType::Int)
    return emitError(locIn(inst, expr.getLoc()))
           << "expected an int, got " << typeName(value->type).str();
  return value->i;
}

FailureOr<EvalValue> Generator::evalArithmetic(const BinaryExpr &expr,
                                               const EvalValue &l,
                                               const EvalValue &r,
                                               Location loc) {
  FailureOr<EvalValue> result = evalNumbers(expr, l, r, loc);
  if (succeeded(result))
    result->origin = l.origin ? l.origin : r.origin;
  return result;
}

FailureOr<EvalValue> Generator::evalNumbers(const BinaryExpr &expr, const EvalValue &l,
                                            const EvalValue &r, Location loc) {
  if (l.type == ValueType::Int && r.type == ValueType::Int) {
    int64_t result = 0;
    bool overflow = false;
    switch (expr.op) {
    case '+': overflow = __builtin_add_overflow(l.i, r.i, &result); break;
    case '-': overflow = __builtin_sub_overflow(l.i, r.i, &result); break;
    case '*': overflow = __builtin_mul_overflow(l.i, r.i, &result); break;
    case '/':
    case '%':
      if (r.i == 0)
        return emitError(loc) << "division by zero";
      if (l.i == INT64_MIN && r.i == -1)
        overflow = true;
      else
        result = expr.op == '/' ? l.i / r.i : l.i % r.i;
      break;
    default:
      return emitError(loc) << "unknown operator";
    }
    if (overflow)
      return emitError(loc) << "integer overflow in " << l.i << " " << expr.op
                            << " " << r.i;
    return EvalValue::ofInt(result);
  }
  double a = l.asFloat(), b = r.asFloat(), result = 0;
  switch (expr.op) {
  case '+': result = a + b; break;
  case '-': result = a - b; break;
  case '*': result = a * b; break;
  case '/':
    if (b == 0)
      return emitError(loc) << "division by zero";
    result = a / b;
    break;
  default:
    return emitError(loc) << "'" << expr.op << "' needs two ints";
  }
  if (!std::isfinite(result))
    return emitError(loc) << "the result is not a finite number";
  return EvalValue::ofFloat(result);
}

FailureOr<EvalValue> Generator::eval(const Expr &expr, Env &env,
                                     Instance &inst) {
  Location loc = locIn(inst, expr.getLoc());
  switch (expr.getKind()) {
  case Expr::Kind::Int:
    return EvalValue::ofInt(llvm::cast<IntExpr>(expr).value);
  case Expr::Kind::Float:
    return EvalValue::ofFloat(llvm::cast<FloatExpr>(expr).value);
  case Expr::Kind::Bool:
    return EvalValue::ofBool(llvm::cast<BoolExpr>(expr).value);
  case Expr::Kind::Name: {
    const auto &name = llvm::cast<NameExpr>(expr);
    auto it = env.find(name.name);
    if (it == env.end())
      return emitError(loc) << "unknown name '" << name.name << "'";
    return it->second;
  }
  case Expr::Kind::Unary: {
    FailureOr<EvalValue> v = eval(*llvm::cast<UnaryExpr>(expr).operand, env, inst);
    if (failed(v))
      return failure();
    EvalValue negated;
    if (v->type == ValueType::Int) {
      if (v->i == INT64_MIN)
        return emitError(loc) << "integer overflow in negation";
      negated = EvalValue::ofInt(-v->i);
    } else if (v->type == ValueType::Float) {
      negated = EvalValue::ofFloat(-v->f);
    } else {
      return emitError(loc) << "cannot negate a " << typeName(v->type).str();
    }
    negated.origin = v->origin;
    return negated;
  }
  case Expr::Kind::Binary: {
    const auto &binary = llvm::cast<BinaryExpr>(expr);
    FailureOr<EvalValue> l = eval(*binary.lhs, env, inst);
    if (failed(l))
      return failure();
    FailureOr<EvalValue> r = eval(*binary.rhs, env, inst);
    if (failed(r))
      return failure();
    if (l->type == ValueType::Tensor && r->type == ValueType::Tensor &&
        (binary.op == '+' || binary.op == '*')) {
      StringRef primitive = binary.op == '+' ? "add" : "mul";
      std::string local =
          primitive.str() + std::to_string(inst.counters[primitive]++);
      Location named = opLoc(inst, expr.getLoc(), local);
      FailureOr<RankedTensorType> type = quadra::inferElementwiseType(
          named, primitive, l->tensor.getType(), r->tensor.getType());
      if (failed(type) || failed(countOp(named)))
        return failure();
      mlir::Value result =
          binary.op == '+'
              ? builder.create<quadra::AddOp>(named, *type, l->tensor, r->tensor)
                    .getResult()
              : builder.create<quadra::MulOp>(named, *type, l->tensor, r->tensor)
                    .getResult();
      return EvalValue::ofTensor(result);
    }
    bool numbers = (l->type == ValueType::Int || l->type == ValueType::Float) &&
                   (r->type == ValueType::Int || r->type == ValueType::Float);
    if (!numbers)
      return emitError(loc) << "cannot apply '" << binary.op << "' to a "
                            << typeName(l->type).str() << " and a "
                            << typeName(r->type).str();
    return evalArithmetic(binary, *l, *r, loc);
  }
  case Expr::Kind::Member: {
    const auto &member = llvm::cast<MemberExpr>(expr);
    FailureOr<EvalValue> base = eval(*member.base, env, inst);
    if (failed(base))
      return failure();
    if (base->type != ValueType::Tensor)
      return emitError(loc) << "only tensors have properties";
    auto type = llvm::cast<RankedTensorType>(base->tensor.getType());
    Location memberLoc = locIn(inst, member.memberLoc);
    if (member.member == "channels") {
      if (type.getRank() < 1)
        return emitError(memberLoc) << "a scalar tensor has no channels";
      return EvalValue::ofInt(type.getShape().back());
    }
    if (type.getRank() != 4)
      return emitError(memberLoc)
             << "'" << member.member << "' needs an NHWC tensor, got "
             << quadra::describeType(type);
    return EvalValue::ofInt(type.getDimSize(member.member == "height" ? 1 : 2));
  }
  case Expr::Kind::Call: {
    FailureOr<mlir::Value> result =
        emitCall(llvm::cast<CallExpr>(expr), env, inst, mlir::Value(), noFixed,
                 /*root=*/false);
    if (failed(result))
      return failure();
    return EvalValue::ofTensor(*result);
  }
  case Expr::Kind::String:
  case Expr::Kind::Set:
  case Expr::Kind::Choice:
    break;
  }
  return emitError(loc) << "this expression has no value here";
}

//===----------------------------------------------------------------------===//
// Calls
//===----------------------------------------------------------------------===//

FailureOr<mlir::Value>
Generator::emitCall(const CallExpr &call, Env &callerEnv, Instance &inst,
                    mlir::Value implicitInput,
                    const FixedArgs &fixed,
                    bool root) {
  Location callLoc = locIn(inst, call.getLoc());
  std::optional<Callee> callee = resolveCallee(program, call.callee);
  BoundCall bound;
  if (!callee ||
      !bindCall(*callee, call, static_cast<bool>(implicitInput), bound, nullptr))
    return emitError(callLoc) << "cannot call '" << call.callee << "'";
  if (inst.depth >= kMaxCallDepth)
    return emitError(callLoc) << "blocks nest deeper than " << kMaxCallDepth
                              << " calls";

  std::vector<std::optional<EvalValue>> args(callee->params.size());
  for (auto [i, expr] : llvm::enumerate(bound.args)) {
    if (static_cast<int>(i) == bound.implicitParam) {
      args[i] = EvalValue::ofTensor(implicitInput);
      continue;
    }
    if (auto it = fixed.find(i); it != fixed.end()) {
      args[i] = it->second;
      continue;
    }
    if (!expr)
      continue;
    FailureOr<EvalValue> value = eval(*expr, callerEnv, inst);
    if (failed(value))
      return failure();
    // An int passed where a float is expected widens.
    if (callee->params[i].type == ValueType::Float &&
        value->type == ValueType::Int)
      value = value->widened();
    args[i] = *value;
  }

  std::string local;
  if (bound.nameArg)
    local = llvm::cast<StringExpr>(bound.nameArg)->value;
  else if (!root)
    local = call.callee + std::to_string(inst.counters[call.callee]++);

  if (callee->primitive)
    return emitPrimitive(*callee->primitive, call, bound, args, inst, local,
                         root);

  // A block: bind its parameters, defaults in order, then run its body.
  const BlockDecl &block = *callee->block;
  Instance child;
  child.layer = inst.layer;
  // A layer's own block adds no name unless it is given one.
  child.prefix = join(inst.prefix, local);
  child.callerLoc = callLoc;
  child.depth = inst.depth + 1;
  Env env;
  for (auto [i, param] : llvm::enumerate(block.params)) {
    if (args[i]) {
      env[param.name] = *args[i];
      continue;
    }
    FailureOr<EvalValue> value = eval(*param.defaultValue, env, child);
    if (failed(value))
      return failure();
    if (param.type == ValueType::Float && value->type == ValueType::Int)
      value = value->widened();
    env[param.name] = *value;
  }
  for (const Stmt &stmt : block.body) {
    FailureOr<EvalValue> value = eval(*stmt.value, env, child);
    if (failed(value))
      return failure();
    if (stmt.kind == Stmt::Kind::Let) {
      env[stmt.name] = *value;
      continue;
    }
    if (value->type != ValueType::Tensor)
      return emitError(locIn(child, stmt.loc)) << "a block returns a tensor";
    return value->tensor;
  }
  return emitError(callLoc) << "block '" << block.name << "' returns nothing";
}

namespace {
/// The arguments of one primitive call, checked for range as they are read;
/// an argument left out takes its default from the primitive's table
/// (dsl/Primitives.cpp).
class PrimitiveArgs {
public:
  PrimitiveArgs(const Primitive &primitive, const BoundCall &bound,
                std::vector<std::optional<EvalValue>> &args, Location callLoc,
                std::function<Location(SMLoc)> locOf)
      : primitive(primitive), bound(bound), args(args),
        callLoc(callLoc), locOf(std::move(locOf)) {}

  int index(StringRef name) const {
    for (auto [i, p] : llvm::enumerate(primitive.params))
      if (name == p.name)
        return static_cast<int>(i);
    llvm_unreachable("primitive parameter missing from the table");
  }
  const PrimitiveParam &param(StringRef name) const { return primitive.params[index(name)]; }
  bool given(StringRef name) const { return args[index(name)].has_value(); }
  /// Where an argument is written, or the call when it was defaulted.
  Location where(StringRef name) const {
    const Expr *e = bound.args[index(name)];
    return e ? locOf(e->getLoc()) : callLoc;
  }
  mlir::Value tensor(StringRef name) const { return args[index(name)]->tensor; }
  bool flag(StringRef name) const {
    return given(name) ? args[index(name)]->b : param(name).defaultValue.boolValue;
  }
  FailureOr<int64_t> integer(StringRef name) const {
    const PrimitiveParam &p = param(name);
    int64_t v = given(name) ? args[index(name)]->i : defaultInteger(p.defaultValue);
    if (v < p.min || v > p.max)
      return outOfRange(name) << primitive.name << ": '" << name << "' must be between "
                              << p.min << " and " << p.max << ", got " << v;
    return v;
  }
  FailureOr<double> real(StringRef name) const {
    const PrimitiveParam &p = param(name);
    double v = given(name) ? args[index(name)]->asFloat() : p.defaultValue.floatValue;
    // A weight is float32: a larger initial value or std would be infinite.
    if (!std::isfinite(v) || std::fabs(v) > kMaxFloatArgument || (p.positive && !(v > 0)))
      return outOfRange(name) << primitive.name << ": '" << name << "' must be "
                              << (p.positive ? "a positive number" : "a finite number")
                              << (std::isfinite(v) && std::fabs(v) > kMaxFloatArgument
                                      ? " of at most 1e30"
                                      : "")
                              << ", got " << v;
    return v;
  }

private:
  /// The error for argument `name`'s value: where it is written, or, when
  /// it comes from a -D override, against the flag (with a note where it
  /// is used).
  InFlightDiagnostic outOfRange(StringRef name) const {
    const Override *origin = given(name) ? args[index(name)]->origin : nullptr;
    if (!origin)
      return emitError(where(name));
    InFlightDiagnostic diag = emitError(origin->loc);
    diag << "-D " << origin->text << ": ";
    diag.attachNote(where(name)) << "the value reaches " << primitive.name << " here";
    return diag;
  }

  int64_t defaultInteger(const PrimitiveDefault &d) const {
    if (d.kind == PrimitiveDefault::Kind::SamePadding)
      return (args[index("k")]->i - 1) / 2;  // k is required and checked first
    return d.intValue;
  }

  const Primitive &primitive;
  const BoundCall &bound;
  std::vector<std::optional<EvalValue>> &args;
  Location callLoc;
  std::function<Location(SMLoc)> locOf;
};

/// The channel (last) dimension of a value, or a failure with a message.
FailureOr<int64_t> channelsOf(Location loc, StringRef primitive, mlir::Value x,
                              int64_t rank) {
  auto type = llvm::cast<RankedTensorType>(x.getType());
  if ((rank > 0 && type.getRank() != rank) || type.getRank() < 1)
    return emitError(loc) << primitive << ": expected "
                          << (rank == 4 ? "an NHWC tensor (rank 4)"
                                        : "a tensor with a channel axis")
                          << ", got " << quadra::describeType(type);
  int64_t c = type.getShape().back();
  if (ShapedType::isDynamic(c))
    return emitError(loc) << primitive << ": the number of channels of "
                          << quadra::describeType(type) << " must be known";
  return c;
}

/// Builds the op (and weights) of one checked primitive call: one method
/// per primitive.
class PrimitiveEmitter {
public:
  /// Creates a weight named after the layer and `suffix`, or fails (a name
  /// taken twice, too many ops).
  using WeightMaker = std::function<FailureOr<mlir::Value>(
      StringRef suffix, ArrayRef<int64_t> shape, quadra::InitKind kind, double value)>;

  PrimitiveEmitter(OpBuilder &builder, Location loc, const Primitive &primitive,
                   const PrimitiveArgs &a, WeightMaker makeWeight)
      : builder(builder), loc(loc), name(primitive.name), a(a),
        makeWeight(std::move(makeWeight)) {}

  FailureOr<mlir::Value> conv();
  FailureOr<mlir::Value> depthwise(bool quadratic);
  FailureOr<mlir::Value> linear(bool quadratic);
  FailureOr<mlir::Value> layerNorm();
  FailureOr<mlir::Value> layerScale();
  FailureOr<mlir::Value> elementwise(PrimitiveKind kind);
  FailureOr<mlir::Value> globalAvgPool();

private:
  /// One weight and an optional bias ("weight", "bias"), or the three of
  /// each of a quadratic layer ("wa", "wb", "wc", "ba", "bb", "bc").
  struct LayerWeights {
    SmallVector<mlir::Value, 3> weights, biases;
    mlir::Value bias() const { return biases.empty() ? mlir::Value() : biases[0]; }
  };
  FailureOr<LayerWeights> layerWeights(bool quadratic, ArrayRef<int64_t> shape,
                                       int64_t biasSize, double std, bool hasBias);
  RankedTensorType vectorType(int64_t size) {
    return RankedTensorType::get({size}, builder.getF32Type());
  }

  OpBuilder &builder;
  Location loc;
  StringRef name;
  const PrimitiveArgs &a;
  WeightMaker makeWeight;
};

FailureOr<PrimitiveEmitter::LayerWeights>
PrimitiveEmitter::layerWeights(bool quadratic, ArrayRef<int64_t> shape, int64_t biasSize,
                               double std, bool hasBias) {
  static const StringRef single[] = {"weight"}, singleBias[] = {"bias"};
  static const StringRef triple[] = {"wa", "wb", "wc"}, tripleBias[] = {"ba", "bb", "bc"};
  ArrayRef<StringRef> names = quadratic ? ArrayRef(triple) : ArrayRef(single);
  ArrayRef<StringRef> biasNames = quadratic ? ArrayRef(tripleBias) : ArrayRef(singleBias);
  LayerWeights result;
  for (StringRef suffix : names) {
    FailureOr<mlir::Value> w = makeWeight(suffix, shape, quadra::InitKind::TruncNormal, std);
    if (failed(w))
      return failure();
    result.weights.push_back(*w);
  }
  for (StringRef suffix : hasBias ? biasNames : ArrayRef<StringRef>()) {
    FailureOr<mlir::Value> b = makeWeight(suffix, {biasSize}, quadra::InitKind::Zeros, 0);
    if (failed(b))
      return failure();
    result.biases.push_back(*b);
  }
  return result;
}

FailureOr<mlir::Value> PrimitiveEmitter::conv() {
  mlir::Value x = a.tensor("x");
  FailureOr<int64_t> out = a.integer("out");
  FailureOr<int64_t> k = a.integer("k");
  if (failed(out) || failed(k))
    return failure();
  FailureOr<int64_t> stride = a.integer("stride");
  FailureOr<int64_t> padding = a.integer("padding");
  FailureOr<int64_t> groups = a.integer("groups");
  FailureOr<double> std = a.real("std");
  FailureOr<int64_t> cin = channelsOf(loc, name, x, 4);
  if (failed(stride) || failed(padding) || failed(groups) || failed(std) || failed(cin))
    return failure();
  if (*cin % *groups != 0 || *out % *groups != 0)
    return emitError(a.where("groups"))
           << "conv2d: groups = " << *groups << " must divide the " << *cin
           << " input and " << *out << " output channels";
  SmallVector<int64_t> filterShape = {*k, *k, *cin / *groups, *out};
  bool hasBias = a.flag("bias");
  FailureOr<RankedTensorType> type = quadra::inferConv2DType(
      loc, x.getType(), RankedTensorType::get(filterShape, builder.getF32Type()),
      hasBias ? Type(vectorType(*out)) : Type(), {*stride, *stride}, {*padding, *padding},
      *groups);
  if (failed(type))
    return failure();
  FailureOr<LayerWeights> w = layerWeights(false, filterShape, *out, *std, hasBias);
  if (failed(w))
    return failure();
  return builder
      .create<quadra::Conv2DOp>(loc, *type, x, w->weights[0], w->bias(),
                                builder.getDenseI64ArrayAttr({*stride, *stride}),
                                builder.getDenseI64ArrayAttr({*padding, *padding}),
                                builder.getI64IntegerAttr(*groups))
      .getResult();
}

FailureOr<mlir::Value> PrimitiveEmitter::depthwise(bool quadratic) {
  mlir::Value x = a.tensor("x");
  FailureOr<int64_t> k = a.integer("k");
  if (failed(k))
    return failure();
  FailureOr<int64_t> stride = a.integer("stride");
  FailureOr<int64_t> padding = a.integer("padding");
  FailureOr<double> std = a.real("std");
  FailureOr<int64_t> c = channelsOf(loc, name, x, 4);
  if (failed(stride) || failed(padding) || failed(std) || failed(c))
    return failure();
  auto filterType = RankedTensorType::get({*k, *k, *c}, builder.getF32Type());
  bool hasBias = a.flag("bias");
  SmallVector<Type, 3> biasTypes(hasBias ? (quadratic ? 3 : 1) : 0, vectorType(*c));
  FailureOr<RankedTensorType> type =
      quadratic ? quadra::inferQuadraticDepthwiseConv2DType(
                      loc, x.getType(), filterType, filterType, filterType, biasTypes,
                      {*stride, *stride}, {*padding, *padding})
                : quadra::inferDepthwiseConv2DType(loc, x.getType(), filterType,
                                                   hasBias ? biasTypes[0] : Type(),
                                                   {*stride, *stride}, {*padding, *padding});
  if (failed(type))
    return failure();
  FailureOr<LayerWeights> w = layerWeights(quadratic, filterType.getShape(), *c, *std, hasBias);
  if (failed(w))
    return failure();
  auto strides = builder.getDenseI64ArrayAttr({*stride, *stride});
  auto pads = builder.getDenseI64ArrayAttr({*padding, *padding});
  if (!quadratic)
    return builder
        .create<quadra::DepthwiseConv2DOp>(loc, *type, x, w->weights[0], w->bias(), strides,
                                           pads)
        .getResult();
  return builder
      .create<quadra::QuadraticDepthwiseConv2DOp>(loc, *type, x, w->weights[0], w->weights[1],
                                                  w->weights[2], w->biases, strides, pads)
      .getResult();
}

FailureOr<mlir::Value> PrimitiveEmitter::linear(bool quadratic) {
  mlir::Value x = a.tensor("x");
  FailureOr<int64_t> out = a.integer("out");
  FailureOr<double> std = a.real("std");
  FailureOr<int64_t> cin = channelsOf(loc, name, x, -1);
  if (failed(out) || failed(std) || failed(cin))
    return failure();
  auto weightType = RankedTensorType::get({*cin, *out}, builder.getF32Type());
  bool hasBias = a.flag("bias");
  SmallVector<Type, 3> biasTypes(hasBias ? (quadratic ? 3 : 1) : 0, vectorType(*out));
  FailureOr<RankedTensorType> type =
      quadratic ? quadra::inferQuadraticLinearType(loc, x.getType(), weightType, weightType,
                                                   weightType, biasTypes)
                : quadra::inferLinearType(loc, x.getType(), weightType,
                                          hasBias ? biasTypes[0] : Type());
  if (failed(type))
    return failure();
  FailureOr<LayerWeights> w =
      layerWeights(quadratic, weightType.getShape(), *out, *std, hasBias);
  if (failed(w))
    return failure();
  if (!quadratic)
    return builder.create<quadra::LinearOp>(loc, *type, x, w->weights[0], w->bias())
        .getResult();
  return builder
      .create<quadra::QuadraticLinearOp>(loc, *type, x, w->weights[0], w->weights[1],
                                         w->weights[2], w->biases)
      .getResult();
}

FailureOr<mlir::Value> PrimitiveEmitter::layerNorm() {
  mlir::Value x = a.tensor("x");
  FailureOr<double> eps = a.real("eps");
  FailureOr<int64_t> c = channelsOf(loc, name, x, -1);
  if (failed(eps) || failed(c))
    return failure();
  auto vector = vectorType(*c);
  FailureOr<RankedTensorType> type =
      quadra::inferLayerNormType(a.where("eps"), x.getType(), vector, vector, *eps);
  if (failed(type))
    return failure();
  FailureOr<mlir::Value> scale = makeWeight("weight", {*c}, quadra::InitKind::Ones, 0);
  if (failed(scale))
    return failure();
  FailureOr<mlir::Value> offset = makeWeight("bias", {*c}, quadra::InitKind::Zeros, 0);
  if (failed(offset))
    return failure();
  return builder
      .create<quadra::LayerNormOp>(loc, *type, x, *scale, *offset,
                                   builder.getF64FloatAttr(*eps))
      .getResult();
}

FailureOr<mlir::Value> PrimitiveEmitter::layerScale() {
  mlir::Value x = a.tensor("x");
  FailureOr<double> init = a.real("init");
  FailureOr<int64_t> c = channelsOf(loc, name, x, -1);
  if (failed(init) || failed(c))
    return failure();
  FailureOr<RankedTensorType> type =
      quadra::inferLayerScaleType(loc, x.getType(), vectorType(*c));
  if (failed(type))
    return failure();
  // The scale vector is the layer's only weight: it takes the layer's name.
  FailureOr<mlir::Value> scale = makeWeight("", {*c}, quadra::InitKind::Constant, *init);
  if (failed(scale))
    return failure();
  return builder.create<quadra::LayerScaleOp>(loc, *type, x, *scale).getResult();
}

FailureOr<mlir::Value> PrimitiveEmitter::elementwise(PrimitiveKind kind) {
  switch (kind) {
  case PrimitiveKind::Gelu:
    return builder.create<quadra::GeluOp>(loc, a.tensor("x")).getResult();
  case PrimitiveKind::Relu:
    return builder.create<quadra::ReluOp>(loc, a.tensor("x")).getResult();
  case PrimitiveKind::Identity:
    return builder.create<quadra::IdentityOp>(loc, a.tensor("x")).getResult();
  default:
    break;
  }
  mlir::Value lhs = a.tensor("a"), rhs = a.tensor("b");
  FailureOr<RankedTensorType> type =
      quadra::inferElementwiseType(loc, name, lhs.getType(), rhs.getType());
  if (failed(type))
    return failure();
  if (kind == PrimitiveKind::Add)
    return builder.create<quadra::AddOp>(loc, *type, lhs, rhs).getResult();
  return builder.create<quadra::MulOp>(loc, *type, lhs, rhs).getResult();
}

FailureOr<mlir::Value> PrimitiveEmitter::globalAvgPool() {
  mlir::Value x = a.tensor("x");
  FailureOr<RankedTensorType> type = quadra::inferGlobalAvgPoolType(loc, x.getType());
  if (failed(type))
    return failure();
  return builder.create<quadra::GlobalAvgPoolOp>(loc, *type, x).getResult();
}
} // namespace

FailureOr<mlir::Value>
Generator::emitPrimitive(const Primitive &primitive, const CallExpr &call,
                         const BoundCall &bound,
                         std::vector<std::optional<EvalValue>> &args,
                         Instance &inst, StringRef local, bool root) {
  Location loc = opLoc(inst, call.getLoc(), local);
  if (failed(countOp(loc)))
    return failure();
  PrimitiveArgs a(primitive, bound, args, locIn(inst, call.getLoc()),
                  [&](SMLoc l) { return locIn(inst, l); });
  auto makeWeight = [&](StringRef suffix, ArrayRef<int64_t> shape, quadra::InitKind kind,
                        double value) -> FailureOr<mlir::Value> {
    std::string name = join(join(inst.layer, join(inst.prefix, local)), suffix);
    if (!weightNames.insert(name).second)
      return emitError(loc) << "two weights are named '" << name
                            << "': give the calls different names with "
                               "name = \"...\"";
    if (failed(countOp(loc)))
      return failure();
    return weight(loc, name, shape, kind, value);
  };
  PrimitiveEmitter emit(builder, loc, primitive, a, makeWeight);
  switch (primitive.kind) {
  case PrimitiveKind::Conv:
    return emit.conv();
  case PrimitiveKind::DepthwiseConv:
    return emit.depthwise(/*quadratic=*/false);
  case PrimitiveKind::QuadraticDepthwiseConv:
    return emit.depthwise(/*quadratic=*/true);
  case PrimitiveKind::Linear:
    return emit.linear(/*quadratic=*/false);
  case PrimitiveKind::QuadraticLinear:
    return emit.linear(/*quadratic=*/true);
  case PrimitiveKind::LayerNorm:
    return emit.layerNorm();
  case PrimitiveKind::LayerScale:
    return emit.layerScale();
  case PrimitiveKind::GlobalAvgPool:
    return emit.globalAvgPool();
  case PrimitiveKind::Gelu:
  case PrimitiveKind::Relu:
  case PrimitiveKind::Identity:
  case PrimitiveKind::Add:
  case PrimitiveKind::Mul:
    return emit.elementwise(primitive.kind);
  }
  return emitError(loc) << "unknown primitive '" << primitive.name << "'";
}

//===----------------------------------------------------------------------===//
// Models
//===----------------------------------------------------------------------===//

LogicalResult Generator::bindModelParams(const ModelDecl &model,
                                         const MLIRGenOptions &options,
                                         Env &env) {
  Instance top;
  for (const Param &param : model.params) {
    auto override = llvm::find_if(options.overrides, [&](const auto &o) {
      return o.first == param.name;
    });
    if (override == options.overrides.end()) {
      FailureOr<EvalValue> value = eval(*param.defaultValue, env, top);
      if (failed(value))
        return failure();
      if (param.type == ValueType::Float && value->type == ValueType::Int)
        value = value->widened();
      env[param.name] = *value;
      continue;
    }
    StringRef text = override->second;
    Location loc = fileLoc(param.loc);
    overrides.push_back({(param.name + "=" + text).str(), loc});
    switch (param.type) {
    case ValueType::Int: {
      int64_t v;
      if (text.getAsInteger(10, v))
        return emitError(loc) << "-D " << param.name << "=" << text
                              << ": expected an int";
      env[param.name] = EvalValue::ofInt(v);
      env[param.name].origin = &overrides.back();
      break;
    }
    case ValueType::Float: {
      std::string s = text.str();
      char *end = nullptr;
      double v = std::strtod(s.c_str(), &end);
      if (s.empty() || *end != '\0' || !std::isfinite(v))
        return emitError(loc) << "-D " << param.name << "=" << text
                              << ": expected a number";
      env[param.name] = EvalValue::ofFloat(v);
      env[param.name].origin = &overrides.back();
      break;
    }
    case ValueType::Bool:
      if (text != "true" && text != "false")
        return emitError(loc) << "-D " << param.name << "=" << text
                              << ": expected true or false";
      env[param.name] = EvalValue::ofBool(text == "true");
      env[param.name].origin = &overrides.back();
      break;
    default:
      return emitError(loc) << "parameter '" << param.name
                            << "' cannot be set with -D";
    }
  }
  return success();
}

FailureOr<mlir::Value> Generator::buildChoice(const ChoiceExpr &choice,
                                              const std::string &layer,
                                              mlir::Value input, Env &env,
                                              Location layerLoc) {
  struct Candidate {
    const CallExpr *call;
    FixedArgs fixed;
    std::string name;
  };
  std::vector<Candidate> candidates;
  Instance top;
  for (const auto &call : choice.candidates) {
    std::optional<Callee> callee = resolveCallee(program, call->callee);
    BoundCall bound;
    if (!callee || !bindCall(*callee, *call, true, bound, nullptr))
      return emitError(fileLoc(call->getLoc())) << "cannot call '" << call->callee << "'";
    // Values of every argument; a set contributes one value per candidate.
    std::vector<std::pair<unsigned, std::vector<EvalValue>>> axes;
    for (auto [index, argExpr] : llvm::enumerate(bound.args)) {
      size_t i = index;
      const Expr *expr = argExpr;
      if (!expr)
        continue;
      std::vector<EvalValue> values;
      auto push = [&](const Expr &e) -> LogicalResult {
        FailureOr<EvalValue> v = eval(e, env, top);
        if (failed(v))
          return failure();
        if (callee->params[i].type == ValueType::Float && v->type == ValueType::Int)
          v = v->widened();
        values.push_back(*v);
        return success();
      };
      if (const auto *set = llvm::dyn_cast<SetExpr>(expr)) {
        for (const ExprPtr &element : set->elements)
          if (failed(push(*element)))
            return failure();
      } else if (failed(push(*expr))) {
        return failure();
      }
      axes.push_back({static_cast<unsigned>(i), std::move(values)});
    }
    // The cartesian product, first argument varying slowest.
    std::vector<size_t> pick(axes.size(), 0);
    while (true) {
      Candidate candidate{call.get(), FixedArgs(), call->callee};
      if (!axes.empty()) {
        candidate.name += "(";
        for (auto [axis, choiceIndex] : llvm::zip(axes, pick)) {
          const EvalValue &v = axis.second[choiceIndex];
          candidate.fixed[axis.first] = v;
          if (candidate.name.back() != '(')
            candidate.name += ", ";
          candidate.name += callee->params[axis.first].name + " = " + v.str();
        }
        candidate.name += ")";
      }
      candidates.push_back(std::move(candidate));
      if (candidates.size() > kMaxCandidates)
        return emitError(fileLoc(choice.getLoc()))
               << "more than " << kMaxCandidates << " candidates in one choice";
      size_t d = axes.size();
      while (d > 0 && ++pick[d - 1] == axes[d - 1].second.size())
        pick[--d] = 0;
      if (d == 0)
        break;
    }
  }

  OperationState state(layerLoc, quadra::ChoiceOp::getOperationName());
  state.addOperands(input);
  Type resultType;
  std::string firstName;
  llvm::StringSet<> names;
  // The candidates are built inside the regions; the choice itself goes where
  // the builder stood before.
  OpBuilder::InsertPoint outside = builder.saveInsertionPoint();
  for (auto [i, candidate] : llvm::enumerate(candidates)) {
    if (!names.insert(candidate.name).second)
      return emitError(fileLoc(candidate.call->getLoc()))
             << "candidate '" << candidate.name << "' appears twice";
    Region *region = state.addRegion();
    Block *body = builder.createBlock(region, {}, {input.getType()},
                                      {input.getLoc()});
    builder.setInsertionPointToStart(body);
    Instance inst;
    inst.layer = layer;
    inst.prefix = "candidates." + std::to_string(i);
    FailureOr<mlir::Value> result =
        emitCall(*candidate.call, env, inst, body->getArgument(0),
                 candidate.fixed, /*root=*/true);
    if (failed(result))
      return failure();
    if (!resultType) {
      resultType = result->getType();
      firstName = candidate.name;
    } else if (result->getType() != resultType) {
      return emitError(fileLoc(candidate.call->getLoc()))
             << "candidate '" << candidate.name << "' produces "
             << quadra::describeType(result->getType()) << " but '"
             << firstName << "' produces " << quadra::describeType(resultType)
             << ": every candidate of a layer must produce the same shape";
    }
    builder.create<quadra::YieldOp>(layerLoc, *result);
  }
  builder.restoreInsertionPoint(outside);
  auto &props = state.getOrAddProperties<quadra::ChoiceOp::Properties>();
  props.layer = builder.getStringAttr(layer);
  SmallVector<Attribute> nameAttrs;
  for (const Candidate &candidate : candidates)
    nameAttrs.push_back(builder.getStringAttr(candidate.name));
  props.candidates = builder.getArrayAttr(nameAttrs);
  state.addTypes(resultType);
  return builder.create(state)->getResult(0);
}

LogicalResult Generator::buildModel(const ModelDecl &model,
                                    const MLIRGenOptions &options,
                                    ModuleOp module) {
  weightNames.clear();
  opCount = 0;
  Env env;
  if (failed(bindModelParams(model, options, env)))
    return failure();
  Instance top;

  SmallVector<int64_t> shape = {ShapedType::kDynamic};
  for (const ExprPtr &dim : model.input->dims) {
    FailureOr<int64_t> d = evalInt(*dim, env, top);
    if (failed(d))
      return failure();
    if (*d < 1 || *d > kMaxDim)
      return emitError(fileLoc(dim->getLoc()))
             << "an input dimension must be between 1 and " << kMaxDim
             << ", got " << *d;
    shape.push_back(*d);
  }
  auto inputType = RankedTensorType::get(shape, builder.getF32Type());

  builder.setInsertionPointToEnd(module.getBody());
  Location modelLoc = NameLoc::get(builder.getStringAttr(model.name),
                                   fileLoc(model.loc));
  auto func = builder.create<func::FuncOp>(
      modelLoc, model.name, builder.getFunctionType({inputType}, {}));
  func.setPublic();
  Block *body = func.addEntryBlock();
  body->getArgument(0).setLoc(
      NameLoc::get(builder.getStringAttr("input"), fileLoc(model.input->loc)));
  builder.setInsertionPointToStart(body);

  // Layer names: stem, stages.S.J, downsample.D, head, layers.L; a role
  // used more than once gets an index.
  std::map<Role, int64_t> instances, seen;
  for (const LayerDecl &layer : model.layers) {
    int64_t n = 1;
    if (layer.repeat) {
      FailureOr<int64_t> r = evalInt(*layer.repeat, env, top);
      if (failed(r))
        return failure();
      n = *r;
    }
    instances[layer.role] += std::max<int64_t>(n, 0);
  }

  mlir::Value current = body->getArgument(0);
  int64_t stageIndex = 0;
  for (const LayerDecl &layer : model.layers) {
    Location layerLoc = fileLoc(layer.loc);
    int64_t repeat = 1;
    if (layer.repeat) {
      FailureOr<int64_t> r = evalInt(*layer.repeat, env, top);
      if (failed(r))
        return failure();
      if (*r < 0 || *r > kMaxRepeat)
        return emitError(fileLoc(layer.repeat->getLoc()))
               << "a repeat count must be between 0 and " << kMaxRepeat
               << ", got " << *r;
      repeat = *r;
    }
    if (layer.width) {
      FailureOr<int64_t> w = evalInt(*layer.width, env, top);
      if (failed(w))
        return failure();
      auto type = llvm::cast<RankedTensorType>(current.getType());
      if (type.getRank() < 1 || type.getShape().back() != *w)
        return emitError(fileLoc(layer.width->getLoc()))
               << "this " << roleKeyword(layer.role) << " is declared 'at " << *w
               << "' channels but its input is "
               << quadra::describeType(type)
               << "; add a 'down' layer before it or change the width";
    }
    for (int64_t j = 0; j < repeat; ++j) {
      std::string name;
      int64_t index = seen[layer.role]++;
      switch (layer.role) {
      case Role::Stem:
        name = instances[Role::Stem] == 1 ? "stem" : "stem." + std::to_string(index);
        break;
      case Role::Head:
        name = instances[Role::Head] == 1 ? "head" : "head." + std::to_string(index);
        break;
      case Role::Stage:
        name = "stages." + std::to_string(stageIndex) + "." + std::to_string(j);
        break;
      case Role::Down:
        name = "downsample." + std::to_string(index);
        break;
      case Role::Layer:
        name = "layers." + std::to_string(index);
        break;
      }
      FailureOr<mlir::Value> next;
      if (const auto *choice = llvm::dyn_cast<ChoiceExpr>(layer.layer.get())) {
        next = buildChoice(*choice, name, current, env,
                           NameLoc::get(builder.getStringAttr(name), layerLoc));
      } else {
        Instance inst;
        inst.layer = name;
        next = emitCall(llvm::cast<CallExpr>(*layer.layer), env, inst, current,
                        noFixed, /*root=*/true);
      }
      if (failed(next))
        return failure();
      current = *next;
    }
    if (layer.role == Role::Stage)
      ++stageIndex;
  }

  builder.create<func::ReturnOp>(fileLoc(model.endLoc), current);
  func.setFunctionType(builder.getFunctionType({inputType}, {current.getType()}));
  func->setAttr(quadra::kKindAttr,
                builder.getStringAttr(model.isSpace ? "space" : "model"));
  if (!model.constraints.empty()) {
    SmallVector<NamedAttribute> limits;
    for (const ConstraintDecl &c : model.constraints)
      limits.push_back(builder.getNamedAttr(c.device, builder.getF64FloatAttr(c.limitMs)));
    func->setAttr(quadra::kLatencyLimitsAttr, builder.getDictionaryAttr(limits));
  }
  return success();
}

OwningOpRef<ModuleOp> Generator::run(const MLIRGenOptions &options) {
  context.loadDialect<quadra::QuadraDialect, func::FuncDialect>();
  OwningOpRef<ModuleOp> module = ModuleOp::create(
      fileLoc(SMLoc::getFromPointer(
          sourceMgr.getMemoryBuffer(program.mainFile().bufferId)->getBufferStart())));

  std::vector<const ModelDecl *> selected;
  if (options.models.empty()) {
    for (const auto &model : program.mainFile().models)
      selected.push_back(model.get());
    if (selected.empty()) {
      emitError(module->getLoc())
          << "'" << program.mainFile().path
          << "' defines no model or space to compile";
      return nullptr;
    }
  } else {
    for (const std::string &name : options.models) {
      auto it = program.models.find(name);
      if (it == program.models.end()) {
        std::vector<std::string> known;
        for (const auto &entry : program.models)
          known.push_back(entry.getKey().str());
        emitError(module->getLoc()) << "no model or space named '" << name
                                    << "'" << didYouMean(name, known);
        return nullptr;
      }
      selected.push_back(it->second);
    }
  }
  for (const auto &override : options.overrides) {
    const std::string &name = override.first;
    bool used = llvm::any_of(selected, [&](const ModelDecl *m) {
      return llvm::any_of(m->params, [&](const Param &p) { return p.name == name; });
    });
    if (!used) {
      std::vector<std::string> known;
      for (const ModelDecl *m : selected)
        for (const Param &p : m->params)
          known.push_back(p.name);
      emitError(module->getLoc()) << "-D " << name
                                  << ": no model being compiled has a parameter '"
                                  << name << "'" << didYouMean(name, known);
      return nullptr;
    }
  }

  bool ok = true;
  for (const ModelDecl *model : selected)
    if (failed(buildModel(*model, options, *module)))
      ok = false;
  if (!ok)
    return nullptr;
  if (failed(verify(*module)))
    return nullptr;
  return module;
}

} // namespace

OwningOpRef<ModuleOp> generateMLIR(MLIRContext &context, const Program &program,
                                   const llvm::SourceMgr &sourceMgr,
                                   const MLIRGenOptions &options) {
  return Generator(context, program, sourceMgr).run(options);
}

} // namespace qdsl::dsl
