//===- QuadraShapes.h - result types of quadra layer ops --------*- C++ -*-===//
//
// The shape rules of every layer op, in one place. Ops use them for result
// type inference and verification; the front end uses them to type a model
// as it builds it, so a mistake in a .qd file is reported with the same words
// as the same mistake in hand-written MLIR.
//
// Each function returns the result type, or emits an error at `loc` (when
// given) and fails. Dynamic dimensions (the batch, usually) pass every check.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_DIALECT_QUADRASHAPES_H
#define QDSL_DIALECT_QUADRASHAPES_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Location.h"
#include "mlir/IR/TypeRange.h"

#include <optional>
#include <string>

namespace qdsl::quadra {

using MaybeLoc = std::optional<mlir::Location>;

/// `f32[?, 56, 56, 64]`: a tensor type written as the .qd language writes
/// shapes, with `?` for a dynamic dimension.
std::string describeType(mlir::Type type);

mlir::FailureOr<mlir::RankedTensorType>
inferConv2DType(MaybeLoc loc, mlir::Type input, mlir::Type filter,
                mlir::Type bias, llvm::ArrayRef<int64_t> stride,
                llvm::ArrayRef<int64_t> padding, int64_t groups);

mlir::FailureOr<mlir::RankedTensorType>
inferDepthwiseConv2DType(MaybeLoc loc, mlir::Type input, mlir::Type filter,
                         mlir::Type bias, llvm::ArrayRef<int64_t> stride,
                         llvm::ArrayRef<int64_t> padding);

mlir::FailureOr<mlir::RankedTensorType> inferQuadraticDepthwiseConv2DType(
    MaybeLoc loc, mlir::Type input, mlir::Type wa, mlir::Type wb, mlir::Type wc,
    mlir::TypeRange biases, llvm::ArrayRef<int64_t> stride,
    llvm::ArrayRef<int64_t> padding);

mlir::FailureOr<mlir::RankedTensorType>
inferLinearType(MaybeLoc loc, mlir::Type input, mlir::Type weight,
                mlir::Type bias);

mlir::FailureOr<mlir::RankedTensorType>
inferQuadraticLinearType(MaybeLoc loc, mlir::Type input, mlir::Type wa,
                         mlir::Type wb, mlir::Type wc, mlir::TypeRange biases);

mlir::FailureOr<mlir::RankedTensorType>
inferLayerNormType(MaybeLoc loc, mlir::Type input, mlir::Type scale,
                   mlir::Type offset, double epsilon);

mlir::FailureOr<mlir::RankedTensorType>
inferLayerScaleType(MaybeLoc loc, mlir::Type input, mlir::Type scale);

mlir::FailureOr<mlir::RankedTensorType> inferGlobalAvgPoolType(MaybeLoc loc,
                                                               mlir::Type input);

/// Elementwise ops (`add`, `mul`): both operands of one type.
mlir::FailureOr<mlir::RankedTensorType>
inferElementwiseType(MaybeLoc loc, llvm::StringRef opName, mlir::Type lhs,
                     mlir::Type rhs);

/// Unary ops on any float tensor (`gelu`, `relu`, `identity`).
mlir::FailureOr<mlir::RankedTensorType>
inferUnaryType(MaybeLoc loc, llvm::StringRef opName, mlir::Type input);

/// Number of elements with `batch` standing for a dynamic leading dimension;
/// fails on any other dynamic dimension or on overflow.
mlir::FailureOr<uint64_t> countElements(mlir::Type type, int64_t batch);

} // namespace qdsl::quadra

#endif // QDSL_DIALECT_QUADRASHAPES_H
