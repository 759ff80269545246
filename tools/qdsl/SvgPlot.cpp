//===- SvgPlot.cpp - line and scatter charts as SVG text ------------------===//

#include "SvgPlot.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>

namespace qdsl::tool {

namespace {

const char *const kColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string escape(const std::string &text) {
  std::string out;
  for (char c : text) {
    switch (c) {
    case '&': out += "&amp;"; break;
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    case '"': out += "&quot;"; break;
    default: out += c;
    }
  }
  return out;
}

/// About five round tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi) {
  double span = hi - lo;
  if (!(span > 0) || !std::isfinite(span))
    return {lo};
  double step = std::pow(10.0, std::floor(std::log10(span / 5)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (span / (step * m) <= 6) {
      step *= m;
      break;
    }
  // Counted, not accumulated: near 1e20 a step added to t is lost to
  // rounding and an accumulating loop never ends.
  std::vector<double> out;
  const double first = std::ceil(lo / step) * step;
  for (int i = 0; i <= 12; ++i) {
    double t = first + i * step;
    if (!std::isfinite(t) || t > hi + step * 1e-9 || (i > 0 && t == out.back()))
      break;
    out.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  }
  return out;
}

/// Draws `plot` into the box at (x0, y0) of `w` × `h`.
void draw(const Plot &plot, double x0, double y0, double w, double h, llvm::raw_ostream &os) {
  const double left = x0 + 56, right = x0 + w - 12, top = y0 + 28, bottom = y0 + h - 44;
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (const PlotSeries &s : plot.series)
    for (auto [x, y] : s.points) {
      xlo = std::min(xlo, x);
      xhi = std::max(xhi, x);
      ylo = std::min(ylo, y);
      yhi = std::max(yhi, y);
    }
  if (!(xlo <= xhi)) {
    xlo = 0;
    xhi = 1;
    ylo = 0;
    yhi = 1;
  }
  if (plot.yMin < plot.yMax) {
    ylo = plot.yMin;
    yhi = plot.yMax;
  } else {
    double pad = (yhi - ylo) * 0.08 + (yhi == ylo ? std::fabs(yhi) * 0.1 + 1e-9 : 0);
    ylo -= pad;
    yhi += pad;
  }
  if (xhi == xlo) {
    xlo -= 0.5;
    xhi += 0.5;
  }
  auto X = [&](double x) { return left + (x - xlo) / (xhi - xlo) * (right - left); };
  auto Y = [&](double y) { return bottom - (y - ylo) / (yhi - ylo) * (bottom - top); };
  os << llvm::formatv("<text x=\"{0}\" y=\"{1}\" font-size=\"13\" font-weight=\"bold\">{2}</text>\n",
                      left, y0 + 18, escape(plot.title));
  os << llvm::formatv("<rect x=\"{0}\" y=\"{1}\" width=\"{2}\" height=\"{3}\" fill=\"none\" "
                      "stroke=\"#444\"/>\n",
                      left, top, right - left, bottom - top);
  for (double t : ticks(xlo, xhi))
    os << llvm::formatv("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#444\"/>"
                        "<text x=\"{0}\" y=\"{3}\" font-size=\"10\" text-anchor=\"middle\">{4}</text>\n",
                        X(t), bottom, bottom + 4, bottom + 15, llvm::formatv("{0}", llvm::format("%g", t)).str());
  for (double t : ticks(ylo, yhi))
    os << llvm::formatv("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#ddd\"/>"
                        "<text x=\"{3}\" y=\"{4}\" font-size=\"10\" text-anchor=\"end\">{5}</text>\n",
                        left, Y(t), right, left - 4, Y(t) + 3, llvm::formatv("{0}", llvm::format("%g", t)).str());
  os << llvm::formatv("<text x=\"{0}\" y=\"{1}\" font-size=\"11\" text-anchor=\"middle\">{2}</text>\n",
                      (left + right) / 2, bottom + 30, escape(plot.xLabel));
  os << llvm::formatv("<text x=\"{0}\" y=\"{1}\" font-size=\"11\" text-anchor=\"middle\" "
                      "transform=\"rotate(-90 {0} {1})\">{2}</text>\n",
                      x0 + 14, (top + bottom) / 2, escape(plot.yLabel));
  double legendY = top + 12;
  for (auto [i, s] : llvm::enumerate(plot.series)) {
    const char *colour = kColours[i % std::size(kColours)];
    if (s.line) {
      os << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\""
         << (s.dashed ? " stroke-dasharray=\"6 4\"" : "") << " points=\"";
      for (auto [x, y] : s.points)
        os << llvm::formatv("{0:f1},{1:f1} ", X(x), Y(y));
      os << "\"/>\n";
    } else {
      for (auto [j, p] : llvm::enumerate(s.points)) {
        os << llvm::formatv("<circle cx=\"{0:f1}\" cy=\"{1:f1}\" r=\"4\" fill=\"{2}\"/>\n",
                            X(p.first), Y(p.second), colour);
        if (j < s.pointLabels.size())
          os << llvm::formatv("<text x=\"{0:f1}\" y=\"{1:f1}\" font-size=\"10\">{2}</text>\n",
                              X(p.first) + 6, Y(p.second) - 4, escape(s.pointLabels[j]));
      }
    }
    os << llvm::formatv("<rect x=\"{0}\" y=\"{1}\" width=\"10\" height=\"3\" fill=\"{2}\"/>"
                        "<text x=\"{3}\" y=\"{4}\" font-size=\"10\">{5}</text>\n",
                        right - 150, legendY - 4, colour, right - 136, legendY,
                        escape(s.label));
    legendY += 13;
  }
}

} // namespace

std::string renderSvg(const Plot &plot, int width, int height) {
  return renderSvgGrid({plot}, 1, width, height);
}

std::string renderSvgGrid(const std::vector<Plot> &plots, int columns, int cellWidth,
                          int cellHeight) {
  int rows = (static_cast<int>(plots.size()) + columns - 1) / std::max(columns, 1);
  int width = cellWidth * std::min<int>(columns, std::max<size_t>(plots.size(), 1));
  int height = cellHeight * std::max(rows, 1);
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
     << llvm::formatv("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
                      "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\">\n",
                      width, height)
     << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (auto [i, plot] : llvm::enumerate(plots))
    draw(plot, double(i % columns) * cellWidth, double(i / columns) * cellHeight, cellWidth,
         cellHeight, os);
  os << "</svg>\n";
  return text;
}

} // namespace qdsl::tool
