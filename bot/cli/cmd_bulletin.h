#pragma once

#include <memory>
#include <vector>

#include "bot/channel.h"
#include "bot/cli/args.h"
#include "bot/config.h"
#include "bot/log.h"
#include "handlers/templates.h"
#include "storage/store.h"

namespace bot {

/// `bangfu bulletin`, `bangfu outbox list`, `bangfu outbox resend` (README "Command line").
std::vector<CommandSpec> bulletin_commands();

/// The delivery half of `bangfu serve`: the outbox worker (posting through `channel`, or through
/// the group robot webhook when it is null) and the scheduler, each on its own thread.
/// References (and `channel`) must outlive it; `templates` must hold
/// handlers::bulletin_template_names(). stop() (also run by the destructor) lets a post in
/// flight finish and joins.
class Delivery {
 public:
  Delivery(const Config& config, storage::Store& store, const handlers::Templates& templates,
           Logger& log, OutboundChannel* channel = nullptr);
  ~Delivery();
  Delivery(const Delivery&) = delete;
  Delivery& operator=(const Delivery&) = delete;
  void stop();

 private:
  struct Parts;
  std::unique_ptr<Parts> p_;
};

/// Starts delivery for `bangfu serve`, or returns nullptr (and logs why) when
/// `wecom.webhook_url` is not set. `channel`: how messages reach the groups (null: the group
/// robot webhook of callback mode). Throws ConfigError for an unusable URL.
std::unique_ptr<Delivery> start_delivery(const Config& config, storage::Store& store,
                                         const handlers::Templates& templates, Logger& log,
                                         OutboundChannel* channel = nullptr);

}  // namespace bot
