//===- SvgPlot.h - line and scatter charts as SVG text ----------*- C++ -*-===//
//
// The plots `qdsl search` writes next to its report: lines over epochs
// (candidate probabilities, expected latency against a limit) and points
// with labels (accuracy against latency). Plain SVG 1.1 text, no scripts,
// readable in any browser; written by qdsl itself so a search needs no
// Python.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_TOOLS_QDSL_SVGPLOT_H
#define QDSL_TOOLS_QDSL_SVGPLOT_H

#include <string>
#include <utility>
#include <vector>

namespace qdsl::tool {

struct PlotSeries {
  std::string label;
  std::vector<std::pair<double, double>> points;
  /// Lines join the points; otherwise each is a marker with its label.
  bool line = true;
  bool dashed = false;
  std::vector<std::string> pointLabels;
};

struct Plot {
  std::string title, xLabel, yLabel;
  std::vector<PlotSeries> series;
  /// Fixed y range when min < max (probabilities: 0 to 1).
  double yMin = 0, yMax = 0;
};

/// One chart as an SVG document.
std::string renderSvg(const Plot &plot, int width = 640, int height = 400);

/// Several charts side by side in rows of `columns`, as one SVG document.
std::string renderSvgGrid(const std::vector<Plot> &plots, int columns, int cellWidth = 420,
                          int cellHeight = 300);

} // namespace qdsl::tool

#endif // QDSL_TOOLS_QDSL_SVGPLOT_H
