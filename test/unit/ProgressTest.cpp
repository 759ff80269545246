//===- ProgressTest.cpp - progress bar and metrics log --------------------===//

#include "runtime/shipped/Progress.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>

using namespace qdsl::rt;

namespace {

TEST(Progress, DurationsReadAsClockTimes) {
  EXPECT_EQ(formatDuration(0), "0:00");
  EXPECT_EQ(formatDuration(75.4), "1:15");
  EXPECT_EQ(formatDuration(3725), "1:02:05");
  EXPECT_EQ(formatDuration(NAN), "?");
}

TEST(Progress, ATerminalLineIsRedrawnWithRateAndTimeLeft) {
  double now = 0;
  std::ostringstream out;
  ProgressBar bar(out, /*terminal=*/true, "epoch 1", 100, [&] { return now; });
  now = 10;
  bar.update(25, "loss 0.5");
  // 25 steps in 10 s: 2.5 it/s, 75 to go: 30 s.
  EXPECT_EQ(out.str(), "\r\033[Kepoch 1 [######..................] 25/100 2.50 it/s, 0:30 left, "
                       "0:10 elapsed  loss 0.5");
  now = 10.05;
  bar.update(26);
  EXPECT_EQ(out.str().find("26/100"), std::string::npos) << "redrawn within 0.1 s";
  now = 40;
  bar.finish("done");
  EXPECT_NE(out.str().find("[########################] 100/100"), std::string::npos);
  EXPECT_EQ(out.str().back(), '\n');
}

TEST(Progress, ALogGetsAPlainLineEveryTenth) {
  double now = 0;
  std::ostringstream out;
  ProgressBar bar(out, /*terminal=*/false, "train", 50, [&] { return now; });
  for (int i = 1; i <= 50; ++i) {
    now += 1;
    bar.update(i);
  }
  bar.finish();
  std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 10);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_NE(text.find("train 5/50 1.00 it/s, 0:45 left, 0:05 elapsed\n"), std::string::npos) << text;
  EXPECT_NE(text.find("train 50/50"), std::string::npos);
}

TEST(MetricsLog, WritesOneJsonObjectALineAndAppends) {
  std::string path = ::testing::TempDir() + "/metrics.jsonl", error;
  std::remove(path.c_str());
  for (int run = 0; run < 2; ++run) {
    MetricsLog log;
    ASSERT_TRUE(log.open(path, error)) << error;
    EXPECT_TRUE(log.write("eval", {{"epoch", run}, {"top1", 0.875}, {"loss", NAN}},
                          {{"model", "M\xff"}}));
  }
  std::ifstream in(path);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    nlohmann::json object = nlohmann::json::parse(line);
    EXPECT_EQ(object["event"], "eval");
    EXPECT_EQ(object["epoch"], lines);
    EXPECT_EQ(object["top1"], 0.875);
    EXPECT_TRUE(object["loss"].is_null()) << "a non-finite value is null, not invalid JSON";
    ++lines;
  }
  EXPECT_EQ(lines, 2);
  MetricsLog nowhere;
  EXPECT_FALSE(nowhere.open(::testing::TempDir() + "/no/such/dir/m.jsonl", error));
  EXPECT_NE(error.find("cannot open the metrics log"), std::string::npos) << error;
}

TEST(MetricsLog, AResumedLogHoldsEachStepOnce) {
  std::string path = ::testing::TempDir() + "/resumed.jsonl", error;
  {
    MetricsLog log;
    ASSERT_TRUE(log.open(path, error, /*append=*/false)) << error;
    for (double step : {50, 100, 150})
      ASSERT_TRUE(log.write("step", {{"step", step}}));
    ASSERT_TRUE(log.write("note", {}, {{"what", "no step"}}));
  }
  // The run stopped after its checkpoint at step 100: step 150 is made
  // again by the resumed run, after a marker.
  {
    MetricsLog log;
    ASSERT_TRUE(log.resume(path, 100, 2, error)) << error;
    ASSERT_TRUE(log.write("step", {{"step", 150}}));
  }
  std::ifstream in(path);
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(in, line);)
    records.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(records.size(), 5u);
  EXPECT_EQ(records[1]["step"], 100);
  EXPECT_EQ(records[2]["event"], "note");
  EXPECT_EQ(records[3]["event"], "resume");
  EXPECT_EQ(records[3]["step"], 100);
  EXPECT_EQ(records[3]["dropped_records"], 1);
  EXPECT_EQ(records[4]["step"], 150);
}

} // namespace
