//===- SignificanceTest.cpp - t tests and rank correlation ----------------===//
//
// tools/driver/Statistics against closed forms and published critical
// values: Student's t at 1 and 2 degrees of freedom (closed forms), the
// two-sided 5% critical values of the t tables, Welch's statistic written
// out, Kendall's τ counted by hand.
//
//===----------------------------------------------------------------------===//

#include "tools/driver/Statistics.h"

#include <cmath>

#include <gtest/gtest.h>

using namespace qdsl::driver;

namespace {

TEST(Significance, StudentTMatchesItsClosedForms) {
  // df = 1 is Cauchy: F(t) = 1/2 + atan(t)/π.
  for (double t : {-3.0, -1.0, 0.0, 0.5, 2.0})
    EXPECT_NEAR(studentTDistribution(t, 1), 0.5 + std::atan(t) / M_PI, 1e-12) << t;
  // df = 2: F(t) = 1/2 + t / (2·sqrt(2 + t²)).
  for (double t : {-4.0, -2.0, 0.3, 1.7})
    EXPECT_NEAR(studentTDistribution(t, 2), 0.5 + t / (2 * std::sqrt(2 + t * t)), 1e-12) << t;
}

TEST(Significance, StudentTMatchesTheTables) {
  // Two-sided 5% critical values.
  for (auto [df, critical] : {std::pair<double, double>{4, 2.776}, {10, 2.228}, {30, 2.042}})
    EXPECT_NEAR(2 * studentTDistribution(-critical, df), 0.05, 2e-4) << df;
  // Far out in degrees of freedom, the normal distribution.
  EXPECT_NEAR(studentTDistribution(-1.959964, 1e7), 0.025, 1e-6);
}

TEST(Significance, WelchsStatisticAndDegreesOfFreedom) {
  const std::vector<double> a = {0.90, 0.91, 0.905}, b = {0.88, 0.90, 0.885, 0.87, 0.895};
  double ma = mean(a), mb = mean(b), va = std::pow(standardDeviation(a), 2) / 3,
         vb = std::pow(standardDeviation(b), 2) / 5;
  TTest test = welchTest(a, b);
  EXPECT_STREQ(test.kind, "welch");
  EXPECT_NEAR(test.t, (ma - mb) / std::sqrt(va + vb), 1e-12);
  EXPECT_NEAR(test.df, (va + vb) * (va + vb) / (va * va / 2 + vb * vb / 4), 1e-9);
  EXPECT_NEAR(test.p, 2 * studentTDistribution(-std::fabs(test.t), test.df), 1e-15);
  EXPECT_GT(test.t, 0);
  EXPECT_LT(test.p, 0.05);
  // One searched value against several: the one-sample test.
  TTest one = welchTest({0.91}, b);
  EXPECT_STREQ(one.kind, "one-sample");
  EXPECT_NEAR(one.t, (0.91 - mb) / (standardDeviation(b) / std::sqrt(5.0)), 1e-12);
  EXPECT_EQ(one.df, 4);
  // No spread at all: no evidence either way.
  EXPECT_EQ(welchTest({0.9, 0.9}, {0.8, 0.8}).p, 1);
}

TEST(Significance, TheMedianOfAnEvenCountIsTheMeanOfTheMiddleTwo) {
  EXPECT_EQ(median({3, 1, 2}), 2);
  EXPECT_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(median({}), 0);
}

TEST(Significance, KendallsTauCountsConcordantPairs) {
  EXPECT_NEAR(kendallTau({1, 2, 3, 4}, {1, 3, 2, 4}), 4.0 / 6, 1e-12);
  EXPECT_NEAR(kendallTau({1, 2, 3}, {3, 2, 1}), -1, 1e-12);
  // τ-b with a tie in x: 5 pairs count in x, 6 in y; 4 concordant, 1
  // discordant.
  EXPECT_NEAR(kendallTau({1, 1, 2, 3}, {1, 2, 4, 3}), (4.0 - 1) / std::sqrt(5.0 * 6), 1e-12);
}

} // namespace
