"""The rational erf of the generated GELU (codegen/halide/qdsl_generator_common.h,
erf_approx): how its coefficients were fitted, and a check of the ones in use.

    fit_erf.py                  fit erf(x) = x·P(x²)/Q(x²) (degrees 5/5) on |x| ≤ 3.925
                                and print the coefficients and their errors
    fit_erf.py --check HEADER   read erf_approx's coefficients from HEADER, evaluate
                                them in float32 as the kernels do, and fail if erf
                                or GELU is off by more than the documented bounds

The fit is a weighted linear least-squares problem for P and Q (Q's constant term
fixed at 1), its weights raised where the error is largest, iterated towards the
minimax fit; x² is scaled to [0, 1] while fitting to keep it well conditioned.
Beyond 3.925 erf is 1 to float precision and the kernels clamp the input.
"""
import argparse
import math
import re
import sys

import numpy as np

CLAMP = 3.925
DEGREE = 5
# What the check holds the float32 evaluation to (the exact-arithmetic fit
# reaches 1.6e-8; float32 rounding in Horner's rule brings it to ~4e-7).
# GELU's error is taken relative to max(1, |x|): near x = 6 an erf error of
# 2e-7 is 1.2e-6 of GELU, 2.5 float32 ulps of a value near 6.
ERF_BOUND = 5e-7
GELU_BOUND = 3e-7


def fit(degree=DEGREE, clamp=CLAMP, iterations=200):
    erf = np.vectorize(math.erf)
    x = np.linspace(1e-4, clamp, 30000)
    scale = clamp * clamp
    u = x * x / scale
    f = erf(x) / x
    weights = x.copy()
    best = None
    for _ in range(iterations):
        a = np.hstack([np.vander(u, degree + 1, increasing=True),
                       -f[:, None] * np.vander(u, degree + 1, increasing=True)[:, 1:]])
        coef = np.linalg.lstsq(a * weights[:, None], f * weights, rcond=None)[0]
        p, q = coef[:degree + 1], np.concatenate([[1.0], coef[degree + 1:]])
        error = np.abs(x * (np.polyval(p[::-1], u) / np.polyval(q[::-1], u) - f))
        if best is None or error.max() < best[0]:
            best = (error.max(), p, q)
        weights = weights * (error / error.max() + 0.05)
    worst, p, q = best
    powers = scale ** np.arange(degree + 1)
    return worst, p / powers, q / powers


def erf32(x, p, q, clamp=CLAMP):
    """erf_approx as the kernels evaluate it, in float32."""
    c = np.clip(x.astype(np.float32), -clamp, clamp).astype(np.float32)
    t = (c * c).astype(np.float32)
    def horner(coefficients):
        value = np.float32(coefficients[-1])
        for k in coefficients[-2::-1]:
            value = (value * t + np.float32(k)).astype(np.float32)
        return value
    return (c * horner(p) / horner(q)).astype(np.float32)


def errors(p, q, clamp=CLAMP):
    x = np.linspace(-6, 6, 600001).astype(np.float32)
    reference = np.vectorize(math.erf)(x.astype(np.float64))
    e = erf32(x, p, q, clamp)
    gelu = (np.float32(0.5) * x * (np.float32(1) + erf32(x * np.float32(0.70710678118654752),
                                                          p, q, clamp))).astype(np.float32)
    gelu_reference = 0.5 * x.astype(np.float64) * (
        1 + np.vectorize(math.erf)(x.astype(np.float64) / math.sqrt(2)))
    gelu_error = np.abs(gelu - gelu_reference) / np.maximum(1.0, np.abs(x.astype(np.float64)))
    return float(np.abs(e - reference).max()), float(gelu_error.max())


def read_header(path):
    """erf_approx's clamp and the coefficients of P and Q, lowest power first."""
    text = open(path).read()
    body = text[text.index("inline Expr erf_approx"):]
    body = body[:body.index("\n}\n")]
    number = r"[-+]?\d+\.\d+(?:e[-+]?\d+)?"
    clamp = float(re.search(r"clamp\(x, -(" + number + r")f", body).group(1))
    def coefficients(name):
        statement = re.search(r"Expr " + name + r" = (.*?);", body, re.S).group(1)
        return [float(v) for v in re.findall(number + r"(?=f)", statement)]
    return clamp, coefficients("p"), coefficients("q")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", metavar="HEADER")
    args = parser.parse_args()
    if args.check:
        clamp, p, q = read_header(args.check)
        if len(p) != DEGREE + 1 or len(q) != DEGREE + 1:
            print("erf_approx: expected %d coefficients each for P and Q, read %d and %d"
                  % (DEGREE + 1, len(p), len(q)))
            return 1
        erf_error, gelu_error = errors(p, q, clamp)
        ok = erf_error <= ERF_BOUND and gelu_error <= GELU_BOUND
        print("erf_approx in float32 over [-6, 6]: max |erf error| %.2e (bound %.0e), "
              "max |GELU error|/max(1, |x|) %.2e (bound %.0e): %s"
              % (erf_error, ERF_BOUND, gelu_error, GELU_BOUND, "ok" if ok else "FAILED"))
        return 0 if ok else 1
    worst, p, q = fit()
    erf_error, gelu_error = errors(p, q)
    print("exact-arithmetic max |erf error| %.2e; float32: erf %.2e, GELU (/max(1,|x|)) %.2e"
          % (worst, erf_error, gelu_error))
    print("P: " + ", ".join("%.9ef" % v for v in p))
    print("Q: " + ", ".join("%.9ef" % v for v in q))
    return 0


if __name__ == "__main__":
    sys.exit(main())
