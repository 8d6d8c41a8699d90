/* test_metrics.c — accuracy, per-class precision/recall/F1, confusion,
 * log-loss, ROC AUC, the survey figures of merit and the reliability bins
 * against values worked out by hand. */
#include "harness.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

/* NaN compares false with everything: the ROC tie loops once spun on it
 * for ever (issue 12). A non-finite probability is an error naming the
 * sample; alarm() turns a hang into a failure. */
static void test_non_finite(void)
{
    alarm(20);
    float vals[3] = {NAN, INFINITY, -INFINITY};
    const char *names[3] = {"NaN", "+Inf", "-Inf"};
    for (int v = 0; v < 3; v++) {
        float p[8] = {0.9f, 0.1f, 0.2f, 0.8f, 0.5f, 0.5f, 0.3f, 0.7f}, y[4] = {0, 1, 0, 1};
        p[2 * 2 + 1] = vals[v]; /* sample 2, class 1 */
        ds_metrics m;
        CHECK(ds_metrics_compute(p, y, 4, 2, &m) == -1);
        CHECK(strstr(ds_last_error(), "sample 2") && strstr(ds_last_error(), "class 1") &&
              strstr(ds_last_error(), names[v]));
        CHECK(m.precision == NULL); /* nothing to free */
    }
    /* softmax of logits: finite rows sum to 1; a NaN logit names its sample (offset by `first`) */
    float z[6] = {0, 0, 1000, -1000, 3, 1}, pr[6];
    CHECK(ds_softmax_rows(z, 3, 2, 0, pr) == 0);
    CHECK_NEAR(pr[0], 0.5, 1e-7);
    CHECK(pr[2] == 1.0f && pr[3] == 0.0f);
    CHECK_NEAR(pr[4], 1 / (1 + exp(-2.0)), 1e-6);
    z[5] = NAN;
    CHECK(ds_softmax_rows(z, 3, 2, 40, pr) == -1 && strstr(ds_last_error(), "sample 42") &&
          strstr(ds_last_error(), "class 1 is NaN"));
    alarm(0);
}

int main(void)
{
    test_non_finite();
    /* 3 classes, 5 samples: predictions 0, 1, 1, 2, 0 for labels 0, 1, 2, 2, 1 */
    float p3[5 * 3] = {0.7f, 0.2f, 0.1f, 0.1f, 0.8f, 0.1f, 0.2f, 0.5f, 0.3f,
                       0.1f, 0.2f, 0.7f, 0.6f, 0.3f, 0.1f};
    float y3[5] = {0, 1, 2, 2, 1};
    ds_metrics m;
    CHECK(ds_metrics_compute(p3, y3, 5, 3, &m) == 0);
    CHECK_NEAR(m.accuracy, 3.0 / 5, 1e-12);
    CHECK_NEAR(m.log_loss, -(log(0.7) + log(0.8) + log(0.3) + log(0.7) + log(0.3)) / 5, 1e-6);
    int conf[9] = {1, 0, 0, 1, 1, 0, 0, 1, 1}; /* rows true, columns predicted */
    for (int i = 0; i < 9; i++) CHECK(m.confusion[i] == conf[i]);
    CHECK_NEAR(m.precision[0], 0.5, 1e-12); /* predicted 0 twice, right once */
    CHECK_NEAR(m.recall[0], 1.0, 1e-12);
    CHECK_NEAR(m.f1[0], 2 * 0.5 * 1 / 1.5, 1e-12);
    CHECK_NEAR(m.precision[2], 1.0, 1e-12);
    CHECK_NEAR(m.recall[2], 0.5, 1e-12);
    CHECK(m.support[1] == 2 && m.support[2] == 2);
    CHECK(isnan(m.auc));
    /* reliability, 3 classes: top-1 probabilities 0.7 (right), 0.8 (right),
     * 0.5 (wrong), 0.7 (right), 0.6 (wrong); as floats 0.7f and 0.6f lie in
     * bin 0.6-0.7 (0.7f = 0.69999999), 0.8f in 0.8-0.9, 0.5 in 0.5-0.6:
     * bin 6 {0.7 R, 0.7 R, 0.6 W} is calibrated (2/3 against 2/3) */
    CHECK(m.calib_count[5] == 1 && m.calib_count[6] == 3 && m.calib_count[7] == 0 && m.calib_count[8] == 1);
    CHECK(m.calib_count[0] == 0 && isnan(m.calib_score[0]) && isnan(m.calib_observed[9]));
    CHECK_NEAR(m.calib_score[6], 2.0 / 3, 1e-6);
    CHECK_NEAR(m.calib_observed[6], 2.0 / 3, 1e-12);
    CHECK_NEAR(m.calib_observed[5], 0.0, 1e-12);
    CHECK_NEAR(m.ece, (0.5 + 0.2) / 5, 1e-6);
    ds_metrics_free(&m);

    /* 2 classes: class-1 scores of positives {0.9, 0.4, 0.6} and negatives
     * {0.1, 0.4, 0.8}; AUC = P(positive outscores negative), ties ½ */
    float s[6] = {0.9f, 0.4f, 0.6f, 0.1f, 0.4f, 0.8f}, y2[6] = {1, 1, 1, 0, 0, 0}, p2[12];
    for (int i = 0; i < 6; i++) p2[2 * i] = 1 - s[i], p2[2 * i + 1] = s[i];
    double wins = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 3; b < 6; b++) wins += s[a] > s[b] ? 1 : s[a] == s[b] ? 0.5 : 0;
    CHECK(ds_metrics_compute(p2, y2, 6, 2, &m) == 0);
    CHECK_NEAR(m.auc, wins / 9, 1e-12);
    CHECK_NEAR(m.auc, 6.5 / 9, 1e-12); /* 0.9 beats 3, 0.6 beats 2, 0.4 beats 1 and ties 1 */
    /* reliability, 2 classes: p(class 1) bins 0.1 {neg}, 0.4 {pos, neg}, 0.6 {pos},
     * 0.8-0.9 {0.9f = 0.89999998 pos, 0.8 neg}: observed shares 0, 0.5, 1, 0.5 */
    CHECK(m.calib_count[1] == 1 && m.calib_count[4] == 2 && m.calib_count[6] == 1 && m.calib_count[8] == 2 &&
          m.calib_count[9] == 0);
    CHECK_NEAR(m.calib_observed[4], 0.5, 1e-12);
    CHECK_NEAR(m.calib_observed[8], 0.5, 1e-12);
    CHECK_NEAR(m.calib_score[8], 0.85, 1e-6);
    CHECK_NEAR(m.ece, (0.1 + 2 * 0.1 + 0.4 + 2 * 0.35) / 6, 1e-6);
    ds_metrics_free(&m);
    /* a score of exactly 1 falls in the last bin */
    {
        float one[4] = {0, 1, 1, 0}, yl[2] = {1, 0};
        CHECK(ds_metrics_compute(one, yl, 2, 2, &m) == 0);
        CHECK(m.calib_count[9] == 1 && m.calib_count[0] == 1);
        CHECK_NEAR(m.ece, 0.0, 1e-12);
        ds_metrics_free(&m);
    }

    /* a label outside the classes is an error naming it */
    float bad[2] = {0, 5};
    CHECK(ds_metrics_compute(p2, bad, 2, 2, &m) != 0 && strstr(ds_last_error(), "label 5"));
    /* ROC points by hand: positives 0.9 0.8 0.7 0.3; negatives 0.85 0.75 0.5 and 200 below 0.2.
     * TPR reaches 1 at 0.3 with 3 of 203 negatives above it; FPR ≤ 1 % (2 negatives) holds
     * down to 0.7, where TPR = 0.75: missed-detection rate 0.25 */
    {
        enum { NN = 207 };
        static float pr[2 * NN], lab[NN];
        float pos[4] = {0.9f, 0.8f, 0.7f, 0.3f}, neg3[3] = {0.85f, 0.75f, 0.5f};
        for (int i = 0; i < NN; i++) {
            float sc = i < 4 ? pos[i] : i < 7 ? neg3[i - 4] : (float)(i - 7) / 1000;
            pr[2 * i + 1] = sc, pr[2 * i] = 1 - sc, lab[i] = i < 4;
        }
        ds_metrics r;
        CHECK(ds_metrics_compute(pr, lab, NN, 2, &r) == 0);
        CHECK_NEAR(r.fpr_at_tpr95, 3.0 / 203, 1e-12);
        CHECK_NEAR(r.fpr_at_tpr99, 3.0 / 203, 1e-12);
        CHECK_NEAR(r.mdr_at_fpr1, 0.25, 1e-12);
        ds_metrics_free(&r);
    }
    return ds_test_summary("metrics");
}
