// runtime/shipped/Distributed: the gradient averager's bucketing, in one
// process (qdsl's own build has no MPI; test/distributed/ runs it on two).
#include "runtime/shipped/Distributed.h"

#include <gtest/gtest.h>

namespace {

using qdsl::rt::GradientAverager;
using qdsl::rt::TensorMap;

TensorMap gradientsOf(const std::vector<std::string> &names, const std::vector<size_t> &sizes,
                      float base) {
  TensorMap map;
  for (size_t g = 0; g < names.size(); ++g) {
    map[names[g]].shape = {static_cast<int64_t>(sizes[g])};
    for (size_t i = 0; i < sizes[g]; ++i)
      map[names[g]].data.push_back(base + static_cast<float>(g * 100 + i));
  }
  return map;
}

// Buckets fill from the last gradient backwards; reported values are the
// ones averaged even when the map holds others by then, unreported ones
// come from the map, and the extras come back.
TEST(GradientAveragerTest, ReportedAndUnreportedGradientsComeBack) {
  std::vector<std::string> names = {"a", "b", "c", "d"};
  std::vector<size_t> sizes = {3, 1000, 2, 600};
  // A bucket takes gradients until it holds 4 KB: d, c and b (6408 B),
  // then a with the extras.
  GradientAverager averager(names, sizes, 2, 4096);
  EXPECT_EQ(averager.statistics().buckets, 2u);
  TensorMap reported = gradientsOf(names, sizes, 1.0f);
  for (int step = 0; step < 2; ++step) {
    averager.begin();
    averager.ready(3, reported["d"].data.data());
    averager.poll();
    averager.ready(1, reported["b"].data.data());
    averager.ready(1, reported["b"].data.data());  // twice: taken once
    TensorMap returned = gradientsOf(names, sizes, 1.0f);
    returned["d"].data.assign(600, -7.0f);  // changed after it was reported
    std::vector<float> extras = {2.5f, 17.0f};
    std::string error;
    ASSERT_TRUE(averager.finish(returned, extras, error)) << error;
    EXPECT_EQ(returned["d"].data, reported["d"].data);
    EXPECT_EQ(returned["a"].data, reported["a"].data);
    EXPECT_EQ(returned["b"].data, reported["b"].data);
    EXPECT_EQ(returned["c"].data, reported["c"].data);
    EXPECT_EQ(extras, (std::vector<float>{2.5f, 17.0f}));
  }
  EXPECT_EQ(averager.statistics().steps, 2);
  EXPECT_DOUBLE_EQ(averager.statistics().bytes, (3 + 1000 + 2 + 600 + 2) * 4.0);
}

TEST(GradientAveragerTest, OneBucketWithoutGradients) {
  GradientAverager averager({}, {}, 2, 0);
  EXPECT_EQ(averager.statistics().buckets, 1u);
  averager.begin();
  TensorMap none;
  std::vector<float> extras = {1.0f, 3.0f};
  std::string error;
  ASSERT_TRUE(averager.finish(none, extras, error)) << error;
  EXPECT_EQ(extras, (std::vector<float>{1.0f, 3.0f}));
}

TEST(DistributedTest, OneProcessWithoutALauncher) {
  EXPECT_EQ(qdsl::rt::Processes::count(), 1);
  EXPECT_EQ(qdsl::rt::Processes::rank(), 0);
  EXPECT_EQ(qdsl::rt::Processes::prefix(), "");
  EXPECT_TRUE(qdsl::rt::Processes::allOk(true));
  EXPECT_FALSE(qdsl::rt::Processes::allOk(false));
  TensorMap a = gradientsOf({"x"}, {4}, 0.0f), b = a;
  EXPECT_EQ(qdsl::rt::weightChecksum(a), qdsl::rt::weightChecksum(b));
  b["x"].data[2] = 2.0000002f;
  EXPECT_NE(qdsl::rt::weightChecksum(a), qdsl::rt::weightChecksum(b));
}

} // namespace
