#pragma once
// Internal to storage/: the statement guard, the period binder and the column readers shared by
// the Store, the outbox, the problems and the bulletin queries. Readers throw SQLite::Exception
// for a value bangfu never writes (a malformed date, an unknown ledger or mode), naming what was
// found.
#include <SQLiteCpp/SQLiteCpp.h>

#include <optional>
#include <string>

#include "storage/date.h"
#include "storage/model.h"

namespace storage {

// Resets a reused statement when the scope ends, so it never holds a read snapshot open and is
// ready for the next bind. Every use binds all parameters, so bindings need not be cleared.
class Use {
 public:
  explicit Use(SQLite::Statement& s) : s_(s) {}
  ~Use() { s_.tryReset(); }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;

 private:
  SQLite::Statement& s_;
};

/// Binds a period and a ledger the way the statements that take them number their parameters:
/// ?1 and ?2 the first and last day (ISO, inclusive), ?3 the ledger's code or NULL for all.
inline void bind_period(SQLite::Statement& s, Date from, Date to, std::optional<Ledger> only) {
  s.bind(1, from.iso());
  s.bind(2, to.iso());
  if (only)
    s.bind(3, std::string(ledger_code(*only)));
  else
    s.bind(3);
}

/// A YYYY-MM-DD column; nullopt for NULL.
inline std::optional<Date> date_col(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  const char* text = c.getText();
  auto d = Date::parse_iso(text);
  if (!d) throw SQLite::Exception(std::string("stored date is not YYYY-MM-DD: ") + text);
  return d;
}

/// A YYYY-MM-DD column that must not be NULL.
inline Date required_date_col(const SQLite::Column& c) {
  auto d = date_col(c);
  if (!d) throw SQLite::Exception(std::string("stored date is NULL in column ") + c.getName());
  return *d;
}

inline Ledger ledger_col(const SQLite::Column& c) {
  auto l = ledger_from(c.getString());
  if (!l) throw SQLite::Exception("stored ledger is unknown: " + c.getString());
  return *l;
}

}  // namespace storage
