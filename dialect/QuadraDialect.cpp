//===- QuadraDialect.cpp - the quadra dialect and its attributes ----------===//

#include "dialect/QuadraDialect.h"
#include "dialect/QuadraOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

using namespace mlir;
using namespace qdsl::quadra;

#include "dialect/QuadraDialect.cpp.inc"
#include "dialect/QuadraEnums.cpp.inc"
#include "dialect/QuadraInterfaces.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/QuadraAttributes.cpp.inc"

void QuadraDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialect/QuadraOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialect/QuadraAttributes.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// InitializerAttr
//===----------------------------------------------------------------------===//

std::string qdsl::quadra::formatFloat(double value) {
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value)
      break;
  }
  std::string s(buf);
  if (s.find('.') == std::string::npos) {
    size_t exponent = s.find('e');
    s.insert(exponent == std::string::npos ? s.size() : exponent, ".0");
  }
  return s;
}

bool InitializerAttr::kindHasValue(InitKind kind) {
  switch (kind) {
  case InitKind::Zeros:
  case InitKind::Ones:
    return false;
  case InitKind::Constant:
  case InitKind::Normal:
  case InitKind::TruncNormal:
  case InitKind::Uniform:
    return true;
  }
  return false;
}

LogicalResult
InitializerAttr::verify(llvm::function_ref<InFlightDiagnostic()> emitError,
                        InitKind kind, llvm::APFloat valueFloat) {
  double value = valueFloat.convertToDouble();
  if (!std::isfinite(value))
    return emitError() << "initialiser value must be finite";
  if ((kind == InitKind::Normal || kind == InitKind::TruncNormal) &&
      !(value > 0.0))
    return emitError() << stringifyInitKind(kind)
                       << " needs a positive standard deviation, got "
                       << formatFloat(value);
  if (kind == InitKind::Uniform && !(value > 0.0))
    return emitError() << "uniform needs a positive bound, got "
                       << formatFloat(value);
  return success();
}

void InitializerAttr::printBody(AsmPrinter &printer) const {
  printer << stringifyInitKind(getKind());
  if (kindHasValue(getKind()))
    printer << "(" << formatFloat(getValueAsDouble()) << ")";
}

FailureOr<InitializerAttr> InitializerAttr::parseBody(AsmParser &parser) {
  SMLoc loc = parser.getCurrentLocation();
  StringRef keyword;
  if (parser.parseKeyword(&keyword))
    return failure();
  std::optional<InitKind> kind = symbolizeInitKind(keyword);
  if (!kind) {
    parser.emitError(loc, "unknown initialiser '")
        << keyword
        << "'; expected zeros, ones, constant, normal, trunc_normal or uniform";
    return failure();
  }
  double value = 0.0;
  if (kindHasValue(*kind)) {
    if (parser.parseLParen() || parser.parseFloat(value) ||
        parser.parseRParen())
      return failure();
  }
  return InitializerAttr::getChecked([&] { return parser.emitError(loc); },
                                     parser.getContext(), *kind,
                                     llvm::APFloat(value));
}

Attribute InitializerAttr::parse(AsmParser &parser, Type) {
  if (parser.parseLess())
    return {};
  FailureOr<InitializerAttr> attr = parseBody(parser);
  if (failed(attr) || !*attr || parser.parseGreater())
    return {};
  return *attr;
}

void InitializerAttr::print(AsmPrinter &printer) const {
  printer << "<";
  printBody(printer);
  printer << ">";
}
