// The strict exposition-format reader (tests/testing/prom_text.h) accepts a valid text and
// names each kind of mistake it exists to catch, so that MetricsTest's "no errors" means
// something.
#include "tests/testing/prom_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "core/common/metrics.h"

namespace schedd::testing {
namespace {

using ::testing::HasSubstr;

const std::string kValid =
    "# HELP a_total Things.\n# TYPE a_total counter\na_total{x=\"1\"} 3\na_total{x=\"2\"} 0\n"
    "# HELP g A gauge.\n# TYPE g gauge\ng 1.5e3\n"
    "# HELP h_seconds Latency.\n# TYPE h_seconds histogram\n"
    "h_seconds_bucket{r=\"/a\",le=\"0.1\"} 1\nh_seconds_bucket{r=\"/a\",le=\"1\"} 2\n"
    "h_seconds_bucket{r=\"/a\",le=\"+Inf\"} 3\nh_seconds_sum{r=\"/a\"} 4.5\n"
    "h_seconds_count{r=\"/a\"} 3\n"
    "# HELP l Escapes.\n# TYPE l gauge\nl{v=\"a\\\\b\\\"c\\nd\"} 1\n";

// The first error of `text`, "" when it is valid.
std::string first_error(const std::string& text) {
  PromText p = PromText::parse(text);
  return p.ok() ? "" : p.errors().front();
}

TEST(PromTextTest, AcceptsAValidTextAndKeepsItsSamples) {
  PromText p = PromText::parse(kValid);
  ASSERT_TRUE(p.ok()) << p.error_text();
  EXPECT_EQ(p.value("a_total", {{"x", "1"}}), 3.0);
  EXPECT_EQ(p.value("g"), 1500.0);
  EXPECT_EQ(p.value("h_seconds_count", {{"r", "/a"}}), 3.0);
  EXPECT_EQ(p.find("l")[0].labels.at("v"), "a\\b\"c\nd");
  EXPECT_EQ(p.families().at("h_seconds").type, "histogram");
}

TEST(PromTextTest, NamesEachMistake) {
  EXPECT_THAT(first_error("# HELP a Things.\n# TYPE a counter\na 1\n"),
              HasSubstr("counter a does not end in _total"));
  EXPECT_THAT(first_error("# TYPE g gauge\ng 1\n"), HasSubstr("before its family's HELP"));
  EXPECT_THAT(first_error("# HELP g G.\ng 1\n"), HasSubstr("before its family's TYPE"));
  EXPECT_THAT(first_error("# HELP g G.\n# TYPE g gauge\n# HELP g G.\ng 1\n"),
              HasSubstr("second HELP for g"));
  EXPECT_THAT(first_error("# HELP g G.\n# TYPE g gauge\ng 1\n# TYPE g gauge\n"),
              HasSubstr("TYPE of g after its samples"));
  EXPECT_THAT(
      first_error("# HELP g G.\n# TYPE g gauge\ng 1\n# HELP f F.\n# TYPE f gauge\nf 1\ng 2\n"),
      HasSubstr("family g is split into two blocks"));
  EXPECT_THAT(first_error("# HELP g G.\n# TYPE g gauge\ng{a=\"1\"} 1\ng{a=\"1\"} 2\n"),
              HasSubstr("duplicate series"));
  EXPECT_THAT(first_error("# HELP 1g G.\n# TYPE 1g gauge\n"), HasSubstr("invalid metric name"));
  EXPECT_THAT(first_error("# HELP g G.\n# TYPE g gauge\ng{__a=\"1\"} 1\n"),
              HasSubstr("invalid label name"));
  EXPECT_THAT(first_error("# HELP g G.\n# TYPE g gauge\ng{a=\"x\\ty\"} 1\n"),
              HasSubstr("bad escape"));
  EXPECT_THAT(first_error("# HELP g G.\n# TYPE g gauge\ng{a=\"x} 1\n"), HasSubstr("unterminated"));
  EXPECT_THAT(first_error("# HELP g G.\n# TYPE g gauge\ng one\n"), HasSubstr("bad value"));
  EXPECT_THAT(first_error("# HELP g G.\n# TYPE g gauge\ng 1"), HasSubstr("newline"));
  EXPECT_THAT(first_error("# HELP g G.\n# TYPE g gauge\n\ng 1\n"), HasSubstr("blank line"));
  EXPECT_THAT(first_error("# HELP c_total C.\n# TYPE c_total counter\nc_total -1\n"),
              HasSubstr("negative counter"));
  EXPECT_THAT(first_error("# a remark\n"), HasSubstr("other than HELP or TYPE"));
  const std::string h = "# HELP h H.\n# TYPE h histogram\n";
  EXPECT_THAT(first_error(h + "h_bucket{le=\"1\"} 1\nh_bucket{le=\"0.5\"} 1\n"
                              "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"),
              HasSubstr("le does not increase"));
  EXPECT_THAT(
      first_error(h + "h_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"),
      HasSubstr("bucket counts decrease"));
  EXPECT_THAT(first_error(h + "h_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n"),
              HasSubstr("no le=\"+Inf\" bucket"));
  EXPECT_THAT(first_error(h + "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n"),
              HasSubstr("_count differs from the +Inf bucket"));
  EXPECT_THAT(first_error(h + "h_bucket{le=\"+Inf\"} 1\nh_count 1\n"), HasSubstr("no _sum"));
  EXPECT_THAT(first_error(h + "h_bucket 1\n"), HasSubstr("le belongs on the buckets"));
}

// core/common/metrics.h writes what the reader accepts: histograms with and without labels,
// escaped label values.
TEST(PromTextTest, TheDaemonsWritersPassTheReader) {
  std::string out;
  Histogram h({0.1, 1});
  h.observe(0.05);
  h.observe(3);
  metric_family(out, "plain_seconds", "histogram", "A histogram without labels.");
  h.write(out, "plain_seconds");
  AtomicHistogram a;
  a.observe(0.002);
  metric_family(out, "labelled_seconds", "histogram", "A histogram with labels.");
  a.write(out, "labelled_seconds", "route=\"/v1/" + label_escape("a\"b\\c\nd") + "\"");
  PromText p = PromText::parse(out);
  ASSERT_TRUE(p.ok()) << p.error_text() << out;
  EXPECT_EQ(p.value("plain_seconds_count"), 2.0);
  EXPECT_EQ(p.value("plain_seconds_bucket", {{"le", "0.1"}}), 1.0);
  EXPECT_EQ(p.value("labelled_seconds_count", {{"route", "/v1/a\"b\\c\nd"}}), 1.0);
}

}  // namespace
}  // namespace schedd::testing
