// Checks a cost model emitted by qdsl compile --emit=cost-model (compiled
// with -include of it): the gradients against central differences, and
// the expected latency of a one-hot choice (argv[1]: a pick per layer).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

using namespace COST_MODEL_NAMESPACE;

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s PICKS\n", argv[0]);
        return 2;
    }
    std::mt19937 random(7);
    std::normal_distribution<double> normal;
    std::vector<double> alpha(kCandidates), gradient(kCandidates);
    for (double &a : alpha)
        a = normal(random);
    const double tau = 0.7, h = 1e-5;
    expected_latency_from_logits(alpha.data(), gradient.data(), tau);
    double worst = 0, largest = 0;
    for (std::size_t i = 0; i < kCandidates; ++i) {
        std::vector<double> up = alpha, down = alpha;
        up[i] += h;
        down[i] -= h;
        double fd = (expected_latency_from_logits(up.data(), nullptr, tau) -
                     expected_latency_from_logits(down.data(), nullptr, tau)) / (2 * h);
        worst = std::fmax(worst, std::fabs(fd - gradient[i]));
        largest = std::fmax(largest, std::fabs(gradient[i]));
    }
    double relative = worst / largest;
    std::printf("logit gradient vs central differences: %s (max error %.1e of the largest)\n",
                relative < 1e-6 ? "ok" : "MISMATCH", relative);

    // E is linear in p: its gradient is LAT, and a finite step shows it.
    std::vector<double> p(kCandidates), gp(kCandidates);
    for (std::size_t l = 0; l < kLayers; ++l)
        for (std::size_t c = 0; c < kCount[l]; ++c)
            p[kOffset[l] + c] = 1.0 / kCount[l];
    double e0 = expected_latency(p.data(), gp.data());
    double worstP = 0;
    for (std::size_t i = 0; i < kCandidates; ++i) {
        std::vector<double> q = p;
        q[i] += 1e-3;
        worstP = std::fmax(worstP, std::fabs((expected_latency(q.data()) - e0) / 1e-3 - gp[i]));
    }
    std::printf("probability gradient vs differences: %s\n",
                worstP < 1e-9 * (1 + e0) ? "ok" : "MISMATCH");

    std::fill(p.begin(), p.end(), 0.0);
    std::string picks = argv[1];
    std::size_t layer = 0, at = 0;
    while (layer < kLayers && at <= picks.size()) {
        std::size_t comma = picks.find(',', at);
        int pick = std::atoi(picks.substr(at, comma - at).c_str());
        p[kOffset[layer] + pick] = 1;
        ++layer;
        at = comma == std::string::npos ? picks.size() + 1 : comma + 1;
    }
    std::printf("one-hot %.3f ms over %zu layers\n", expected_latency(p.data()) * 1e3, layer);
    return relative < 1e-6 ? 0 : 1;
}
