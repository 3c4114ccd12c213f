#include "handlers/templates.h"

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

using handlers::Templates;
using kainjow::mustache::data;
using kainjow::mustache::partial;

TEST_CASE("A template renders the same however often and from however many threads", "[handlers]") {
  const Templates t = Templates::from_strings(
      {{"checkin", "已记下：{{date}} {{#visits}}{{who}}{{^last}}、{{/last}}{{/visits}}"}});
  const auto render = [&](const std::string& date, const std::vector<std::string>& who) {
    data visits = data::type::list;
    for (std::size_t i = 0; i < who.size(); ++i) {
      data v;
      v.set("who", who[i]);
      v.set("last", i + 1 == who.size());
      visits.push_back(v);
    }
    data d;
    d.set("date", date);
    d.set("visits", visits);
    return t.render("checkin", d);
  };
  CHECK(render("12月6日", {"王*英户", "李*明户"}) == "已记下：12月6日 王*英户、李*明户");
  CHECK(render("12月5日", {}) == "已记下：12月5日 ");
  CHECK(render("12月6日", {"张*"}) == "已记下：12月6日 张*");

  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      const std::string who = "户" + std::to_string(k);
      for (int i = 0; i < 500; ++i)
        if (render(std::to_string(i), {who}) != "已记下：" + std::to_string(i) + " " + who)
          ++wrong[k];
    });
  for (auto& th : threads) th.join();
  CHECK(wrong == std::vector<int>(4, 0));
}

TEST_CASE("A render that fails does not spoil the renders after it", "[handlers]") {
  // A partial that does not parse is the one error kainjow records while rendering.
  const Templates t = Templates::from_strings({{"t", "[{{>p}}]"}});
  data broken;
  broken.set("p", partial([] { return std::string("{{#open}}"); }));
  (void)t.render("t", broken);
  data fine;
  fine.set("p", partial([] { return std::string("ok"); }));
  CHECK(t.render("t", fine) == "[ok]");
  CHECK(t.render("t", fine) == "[ok]");
}
