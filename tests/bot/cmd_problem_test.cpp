#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "storage/problems.h"
#include "storage/store.h"
#include "tests/support/temp_dir.h"

using bangfu_test::TempDir;
using nlohmann::json;
using storage::Date;

namespace {

struct Run {
  int code = -1;
  std::string out;  // stdout and stderr together
};

// Runs the real binary (main is run_cli and its exit code) with `args`, in `env` prepended.
Run bangfu(const std::string& args, const std::string& env = "") {
  const std::string cmd = env + " " BANGFU_BINARY_DIR "/bangfu " + args + " 2>&1";
  Run r;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

struct Deployment {
  TempDir dir;
  std::string config = dir.file("config.json");
  std::string db = dir.file("bangfu.db");
  Deployment() {
    std::ofstream(config) << json{{"database", db},
                                  {"timezone", "Asia/Shanghai"},
                                  {"wecom",
                                   {{"token", "t"},
                                    {"encoding_aes_key",
                                     "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"}}}}
                                 .dump();
    storage::Store store(db);
    storage::Pairing p;
    p.helper_id = "zw";
    p.helper_name = "张伟";
    p.unit = "区财政局";
    p.household_id = "GX0001";
    p.household_head = "王秀英";
    p.village = "张庄村";
    store.import_roster({p}, Date{2026, 1, 1}, "admin", 1);
    p = store.pairings_of("zw", Date{2026, 11, 1}).at(0);
    storage::InboundMessage m;
    m.msgid = "m1";
    m.userid = "zw";
    m.text = "走访 王秀英户 应享未享低保";
    m.received_at = 1000;
    store.save_inbound(m);
    storage::CheckinRecord c;
    c.msgid = "m1";
    c.pairing_id = p.id;
    c.helper_id = "zw";
    c.visit_date = Date{2026, 11, 3};
    c.problems = {"应享未享低保", "房屋漏雨"};
    c.received_at = 1000;
    store.transaction([&](storage::Store::Tx& tx) {
      const int64_t id = tx.add_checkin(c);
      storage::Problems::record(tx, id, p, "zw", c.visit_date, c.problems, {}, 1000);
    });
  }
  std::string opt() const { return "--config " + config + " "; }
};

}  // namespace

TEST_CASE("problem list gives the items as JSON", "[bot]") {
  Deployment d;
  const Run r = bangfu("problem list " + d.opt() + "--format json");
  REQUIRE(r.code == 0);
  const json items = json::parse(r.out);
  REQUIRE(items.size() == 2);
  CHECK(items[0].at("id") == 1);
  CHECK(items[0].at("household_id") == "GX0001");
  CHECK(items[0].at("ledger") == "cadre");
  CHECK(items[0].at("reported_by") == "zw");
  CHECK(items[0].at("reported_on") == "2026-11-03");
  CHECK(items[0].at("category") == "应享未享");
  CHECK(items[0].at("policy") == "低保");
  CHECK(items[0].at("status") == "open");
  CHECK(items[0].at("text") == "应享未享低保");
  CHECK(items[0].at("resolved_on").is_null());
  CHECK(items[1].at("category") == "住房安全");
}

TEST_CASE("problem set changes an item as office:<login> while a Store holds the file", "[bot]") {
  Deployment d;
  storage::Store serving(d.db);  // as `bangfu serve` would
  const Run r = bangfu("problem set " + d.opt() + "--id 1 --status resolved --note '低保已批'",
                       "SUDO_USER=lihua BANGFU_FAKE_CLOCK_FILE=");
  CHECK(r.code == 0);
  CHECK(r.out.find("problem #1 is now resolved (by office:lihua)") != std::string::npos);
  const auto item = storage::Problems::get(serving, 1);
  CHECK(item->status == storage::ProblemStatus::Resolved);
  CHECK(item->history.back().actor == "office:lihua");
  CHECK(item->history.back().note == "低保已批");
  const json items = json::parse(bangfu("problem list " + d.opt() + "--format json").out);
  CHECK(items[0].at("resolved_on").is_string());
  const Run resolved = bangfu("problem list " + d.opt() + "--status resolved");
  CHECK(resolved.code == 0);
  CHECK(resolved.out.find("1 problem\n") != std::string::npos);
  const Run show = bangfu("problem show " + d.opt() + "--id 1");
  CHECK(show.code == 0);
  CHECK(show.out.find("open -> resolved") != std::string::npos);
}

TEST_CASE("problem commands refuse bad input with exit 2 and change nothing", "[bot]") {
  Deployment d;
  for (std::string args :
       {"problem set --id 1 --status done --note x",
        "problem set --id abc --status resolved --note x",
        "problem set --id 99 --status resolved --note x", "problem set --id 1 --status resolved",
        "problem set --id 1 --status resolved --note ' '", "problem list --status closed",
        "problem list --ledger army", "problem list --format xml", "problem show --id 0",
        "problem show --id 42"}) {
    CAPTURE(args);
    const std::string cfg = "--config " + d.config + " ";
    const std::string full =
        args.substr(0, args.find(" --") + 1) + cfg + args.substr(args.find(" --") + 1);
    const Run r = bangfu(full);
    CHECK(r.code == 2);
    CHECK(r.out.find("bangfu: ") != std::string::npos);
  }
  storage::Store store(d.db);
  for (const auto& p : storage::Problems::list(store, std::nullopt, std::nullopt))
    CHECK(p.status == storage::ProblemStatus::Open);
  for (std::string cmd : {"list", "show", "set"}) {
    const Run help = bangfu("problem " + cmd + " --help");
    CHECK(help.code == 0);
    CHECK(help.out.find("usage: bangfu problem " + cmd) != std::string::npos);
  }
}
