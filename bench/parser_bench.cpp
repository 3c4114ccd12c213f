// The parser alone over the simulated traffic mix: messages/s on one core.
#include <benchmark/benchmark.h>

#include <vector>

#include "handlers/understanding.h"
#include "simulator/simulate.h"

namespace {

// A quarter of a scale-1 district's messages with each sender's context as the dispatcher
// would build it, prepared once.
struct Mix {
  std::vector<simulator::SimMessage> messages;
  std::vector<handlers::SenderContext> senders;
};

const Mix& mix() {
  static const Mix m = [] {
    Mix out;
    const simulator::RosterIndex index(simulator::simulate_roster(simulator::RosterOptions{}));
    out.messages = simulator::simulate_traffic(index, simulator::TrafficOptions{});
    for (const auto& msg : out.messages)
      out.senders.push_back(index.sender(msg.userid, msg.time.date()));
    return out;
  }();
  return m;
}

void BM_Understand(benchmark::State& state) {
  const Mix& m = mix();
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& msg = m.messages[i];
    auto u = handlers::understand(msg.text, m.senders[i], msg.time.date(), "帮扶助手");
    benchmark::DoNotOptimize(u);
    if (++i == m.messages.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["msgs/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["mix_size"] = static_cast<double>(m.messages.size());
}
BENCHMARK(BM_Understand);

void BM_Normalize(benchmark::State& state) {
  const Mix& m = mix();
  std::size_t i = 0;
  for (auto _ : state) {
    auto s = handlers::normalize(m.messages[i].text, "帮扶助手");
    benchmark::DoNotOptimize(s);
    if (++i == m.messages.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Normalize);

}  // namespace
