//===- QuadraDialect.h - the quadra dialect ---------------------*- C++ -*-===//

#ifndef QDSL_DIALECT_QUADRADIALECT_H
#define QDSL_DIALECT_QUADRADIALECT_H

#include "mlir/IR/Dialect.h"

#include "dialect/QuadraDialect.h.inc"

#endif // QDSL_DIALECT_QUADRADIALECT_H
