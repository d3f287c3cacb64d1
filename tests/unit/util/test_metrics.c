/* util/metrics.c: series by label values, histograms, and the text exposition's escaping. */
#include <stdio.h>
#include <string.h>

#include "test.h"
#include "util/metrics.h"

static const double buckets[] = {0.1, 1};

static struct wr_metric_family counter = {
    .name = "t_things_total", .help = "Things.", .kind = WR_METRIC_COUNTER, .labels = {"kind"}};
static struct wr_metric_family histogram = {.name = "t_seconds",
                                            .help = "Seconds.",
                                            .kind = WR_METRIC_HISTOGRAM,
                                            .labels = {"op"},
                                            .buckets = buckets,
                                            .n_buckets = 2};

static void test_label_values_are_escaped(void)
{
    struct wr_buf b;
    wr_buf_init(&b, 4096);
    ASSERT(wr_metrics_render_sample(&b, "t_x", "path", "C:\\dir \"a\"\nb", NULL, NULL, 2) >= 0);
    ASSERT_STREQ(b.data, "t_x{path=\"C:\\\\dir \\\"a\\\"\\nb\"} 2\n");
    wr_buf_reset(&b);
    ASSERT(wr_metrics_render_sample(&b, "t_y", NULL, NULL, NULL, NULL, 0.25) >= 0);
    ASSERT_STREQ(b.data, "t_y 0.25\n");
    wr_buf_free(&b);
}

static void test_series_add_up_by_labels(void)
{
    wr_metric_add(&counter, "a", NULL, 1);
    wr_metric_add(&counter, "a", NULL, 2);
    wr_metric_add(&counter, "b", NULL, 5);
    ASSERT(wr_metric_value(&counter, "a", NULL) == 3);
    ASSERT(wr_metric_value(&counter, "b", NULL) == 5);
    ASSERT(wr_metric_value(&counter, "c", NULL) == 0);
}

/* Buckets are cumulative; +Inf is the count. */
static void test_histogram_buckets(void)
{
    wr_metric_observe(&histogram, "x", NULL, 0.25);
    wr_metric_observe(&histogram, "x", NULL, 0.5);
    wr_metric_observe(&histogram, "x", NULL, 7);
    wr_metric_observe(&histogram, "y", NULL, 0.1);
    struct wr_buf b;
    wr_buf_init(&b, 4096);
    ASSERT(wr_metrics_render_family(&b, &histogram) >= 0);
    ASSERT_STREQ(b.data, "# HELP t_seconds Seconds.\n"
                         "# TYPE t_seconds histogram\n"
                         "t_seconds_bucket{op=\"x\",le=\"0.1\"} 0\n"
                         "t_seconds_bucket{op=\"x\",le=\"1\"} 2\n"
                         "t_seconds_bucket{op=\"x\",le=\"+Inf\"} 3\n"
                         "t_seconds_sum{op=\"x\"} 7.75\n"
                         "t_seconds_count{op=\"x\"} 3\n"
                         "t_seconds_bucket{op=\"y\",le=\"0.1\"} 1\n"
                         "t_seconds_bucket{op=\"y\",le=\"1\"} 1\n"
                         "t_seconds_bucket{op=\"y\",le=\"+Inf\"} 1\n"
                         "t_seconds_sum{op=\"y\"} 0.1\n"
                         "t_seconds_count{op=\"y\"} 1\n");
    wr_buf_free(&b);
}

/* Label values past the series cap are dropped, not grown without bound. */
static void test_series_are_capped(void)
{
    for (unsigned i = 0; i < WR_METRIC_MAX_SERIES + 10; i++) {
        char v[16];
        snprintf(v, sizeof(v), "v%u", i);
        wr_metric_add(&counter, v, NULL, 1);
    }
    ASSERT(counter.n_series == WR_METRIC_MAX_SERIES);
}

int main(void)
{
    RUN(test_label_values_are_escaped);
    RUN(test_series_add_up_by_labels);
    RUN(test_histogram_buckets);
    RUN(test_series_are_capped);
    return 0;
}
