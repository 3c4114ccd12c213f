// Prints SQLite's query plan for each bulletin query on a bangfu database (see BENCHMARKS.md,
// "Bulletins at scale"): usage `bangfu_query_plans DATABASE`.
#include <exception>
#include <iostream>

#include "storage/bulletin_queries.h"
#include "storage/store.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: bangfu_query_plans DATABASE\n";
    return 2;
  }
  try {
    storage::Store store(argv[1]);
    storage::BulletinQueries queries(store);
    for (const auto& plan : queries.plans()) {
      std::cout << "-- " << plan.name << "\n" << plan.sql << "\n";
      for (const auto& step : plan.steps) std::cout << "  " << step << "\n";
      std::cout << "\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "bangfu_query_plans: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
