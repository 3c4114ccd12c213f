#include "storage/store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <future>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <unordered_map>

#include "storage/checkpointer.h"
#include "storage/columns.h"
#include "storage/problem_category.h"
#include "storage/thread_name.h"
#include "storage/wal_gather.h"

namespace storage {
namespace {

using nlohmann::json;

// Applied in order at open, each in the same transaction as its PRAGMA user_version bump.
// Never edit a step that has shipped: add a new one.
struct Migration {
  int version;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE pairings (
  id              INTEGER PRIMARY KEY,
  helper_id       TEXT NOT NULL,
  helper_name     TEXT NOT NULL,
  phone           TEXT NOT NULL DEFAULT '',
  ledger          TEXT NOT NULL CHECK (ledger IN ('cadre', 'health', 'education')),
  unit            TEXT NOT NULL,
  household_id    TEXT NOT NULL,
  household_head  TEXT NOT NULL,
  person          TEXT NOT NULL DEFAULT '',
  person_category TEXT NOT NULL DEFAULT '',
  village         TEXT NOT NULL,
  street          TEXT NOT NULL DEFAULT '',
  start_date      TEXT CHECK (start_date IS NULL OR start_date GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
  end_date        TEXT CHECK (end_date IS NULL OR end_date GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  UNIQUE (helper_id, household_id, person)
);

CREATE TABLE inbound (
  msgid       TEXT PRIMARY KEY,
  platform    TEXT NOT NULL,
  userid      TEXT NOT NULL,
  chatid      TEXT NOT NULL DEFAULT '',
  chattype    TEXT NOT NULL DEFAULT '',
  text        TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  status      TEXT NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'handled', 'failed')),
  reply       TEXT,
  error       TEXT,
  handled_at  INTEGER
);

CREATE TABLE checkins (
  id          INTEGER PRIMARY KEY,
  msgid       TEXT NOT NULL UNIQUE REFERENCES inbound (msgid),
  pairing_id  INTEGER NOT NULL REFERENCES pairings (id),
  helper_id   TEXT NOT NULL,
  visit_date  TEXT NOT NULL CHECK (visit_date GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
  mode        TEXT NOT NULL CHECK (mode IN ('visit', 'home_visit', 'school_visit', 'service', 'phone')),
  occasions   TEXT NOT NULL DEFAULT '[]',
  policies    TEXT NOT NULL DEFAULT '[]',
  problems    TEXT NOT NULL DEFAULT '[]',
  note        TEXT NOT NULL DEFAULT '',
  received_at INTEGER NOT NULL,
  undone_at   INTEGER,
  undone_by   TEXT
);
CREATE INDEX checkins_helper_received ON checkins (helper_id, received_at);
CREATE INDEX checkins_pairing_visit ON checkins (pairing_id, visit_date);
CREATE INDEX checkins_visit_date ON checkins (visit_date);

CREATE TABLE audit (
  id      INTEGER PRIMARY KEY,
  at      INTEGER NOT NULL,
  actor   TEXT NOT NULL,
  action  TEXT NOT NULL,
  subject TEXT NOT NULL,
  detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_subject ON audit (subject, id);
)sql"},
    // The durable outbox and the scheduler's state (storage/outbox.h, README "Delivery").
    {2, R"sql(
CREATE TABLE outbox (
  id              INTEGER PRIMARY KEY,
  kind            TEXT NOT NULL CHECK (kind IN ('monthly', 'quarterly', 'reminder')),
  period          TEXT NOT NULL,
  ledger          TEXT NOT NULL CHECK (ledger IN ('cadre', 'health', 'education', 'all')),
  generation      INTEGER NOT NULL CHECK (generation >= 1),
  part            INTEGER NOT NULL,
  parts           INTEGER NOT NULL,
  msgtype         TEXT NOT NULL CHECK (msgtype IN ('markdown', 'text')),
  body            TEXT NOT NULL,
  status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                    ('pending', 'sending', 'sent', 'failed', 'unknown', 'cancelled')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  claim_id        INTEGER,
  claimed_at      INTEGER,
  last_error      TEXT NOT NULL DEFAULT '',
  created_at      INTEGER NOT NULL,
  sent_at         INTEGER,
  CHECK (part BETWEEN 1 AND parts),
  UNIQUE (kind, period, ledger, part, generation)
);
CREATE INDEX outbox_open ON outbox (id) WHERE status IN ('pending', 'sending');

CREATE TABLE outbox_attempts (
  id          INTEGER PRIMARY KEY,
  outbox_id   INTEGER NOT NULL REFERENCES outbox (id),
  started_at  INTEGER NOT NULL,
  finished_at INTEGER,
  outcome     TEXT
);
CREATE INDEX outbox_attempts_started ON outbox_attempts (started_at);

CREATE TABLE scheduler_state (
  key        TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
)sql"},
    // Bulletins count every problem still open since the start; without this partial index
    // that is a full scan of all check-ins (about 1 s at 6 million rows).
    {3, R"sql(
CREATE INDEX checkins_open_problems ON checkins (visit_date)
  WHERE problems <> '[]' AND undone_at IS NULL;
)sql"},
    // Bulletins at province scale (530,000 check-ins a quarter): looking rows up in the table
    // was most of their time, so the indexes they read carry the columns they need.
    // - checkins_visit_cover: the pass over the month or quarter reads (visit_date, pairing_id,
    //   mode, undone_at) from the index alone; replaces the plain visit_date index.
    // - checkins_pairing_cover: "first counted visit on or after the occasion" per occasion, and
    //   counted_visits for every check-in reply; replaces (pairing_id, visit_date).
    // - checkins_reports: occasions and policies, on a minority of check-ins (partial).
    // - checkins_problems_cover: the open problems of all history; replaces the partial index
    //   of version 3 with one that also carries the problems.
    {4, R"sql(
CREATE INDEX checkins_visit_cover ON checkins (visit_date, pairing_id, mode, undone_at);
DROP INDEX checkins_visit_date;
CREATE INDEX checkins_pairing_cover ON checkins (pairing_id, visit_date, mode, undone_at);
DROP INDEX checkins_pairing_visit;
CREATE INDEX checkins_reports ON checkins (visit_date, pairing_id, occasions, policies, undone_at)
  WHERE undone_at IS NULL AND (occasions <> '[]' OR policies <> '[]');
CREATE INDEX checkins_problems_cover ON checkins (visit_date, pairing_id, problems, undone_at)
  WHERE problems <> '[]' AND undone_at IS NULL;
DROP INDEX checkins_open_problems;
)sql"},
    // Check-ins get a status and may be more than one per message:
    // - one message may name several beneficiaries: unique per (msgid, pairing) instead of msgid;
    // - office entries (paper records, `bangfu checkin add`) have no message: msgid NULL,
    //   entered_by 'office:<login>';
    // - status: active, or why it stopped counting (undone by the helper, corrected by a later
    //   check-in, voided by the office). undone_at/undone_by say when and by whom it stopped
    //   counting, whatever the reason, so every index and query that reads "undone_at IS NULL"
    //   as "counts" stays right; the CHECK keeps the two in step.
    // - corrected_by: the check-in that replaced a corrected one.
    {5, R"sql(
CREATE TABLE checkins_v5 (
  id           INTEGER PRIMARY KEY,
  msgid        TEXT REFERENCES inbound (msgid),
  pairing_id   INTEGER NOT NULL REFERENCES pairings (id),
  helper_id    TEXT NOT NULL,
  visit_date   TEXT NOT NULL CHECK (visit_date GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
  mode         TEXT NOT NULL CHECK (mode IN ('visit', 'home_visit', 'school_visit', 'service', 'phone')),
  occasions    TEXT NOT NULL DEFAULT '[]',
  policies     TEXT NOT NULL DEFAULT '[]',
  problems     TEXT NOT NULL DEFAULT '[]',
  note         TEXT NOT NULL DEFAULT '',
  received_at  INTEGER NOT NULL,
  undone_at    INTEGER,
  undone_by    TEXT,
  status       TEXT NOT NULL DEFAULT 'active'
                 CHECK (status IN ('active', 'undone', 'corrected', 'void')),
  corrected_by INTEGER REFERENCES checkins_v5 (id),
  entered_by   TEXT,
  CHECK ((status = 'active') = (undone_at IS NULL)),
  CHECK (msgid IS NOT NULL OR entered_by IS NOT NULL),
  UNIQUE (msgid, pairing_id)
);
INSERT INTO checkins_v5 (id, msgid, pairing_id, helper_id, visit_date, mode, occasions, policies,
                         problems, note, received_at, undone_at, undone_by, status)
  SELECT id, msgid, pairing_id, helper_id, visit_date, mode, occasions, policies, problems, note,
         received_at, undone_at, undone_by,
         CASE WHEN undone_at IS NULL THEN 'active' ELSE 'undone' END
  FROM checkins;
DROP TABLE checkins;
ALTER TABLE checkins_v5 RENAME TO checkins;
CREATE INDEX checkins_helper_received ON checkins (helper_id, received_at);
CREATE INDEX checkins_visit_cover ON checkins (visit_date, pairing_id, mode, undone_at);
CREATE INDEX checkins_pairing_cover ON checkins (pairing_id, visit_date, mode, undone_at);
CREATE INDEX checkins_reports ON checkins (visit_date, pairing_id, occasions, policies, undone_at)
  WHERE undone_at IS NULL AND (occasions <> '[]' OR policies <> '[]');
CREATE INDEX checkins_problems_cover ON checkins (visit_date, pairing_id, problems, undone_at)
  WHERE problems <> '[]' AND undone_at IS NULL;
)sql"},
    // Problems followed to closure, and bulletins as published records (README "Problems",
    // "A bulletin is a published record"):
    // - problems: one item per problem a check-in reported; the number is AUTOINCREMENT, so it is
    //   never reused. `changes` counts status changes after the report. The problems stored
    //   today in checkins.problems (of check-ins that count) become open items, classified by
    //   the SQL function bangfu_problem_category (storage/problem_category.h), dated by the
    //   check-in's visit date.
    // - the trigger: a check-in that stops counting (undone, corrected, void) closes its items
    //   still open and never changed as not_a_problem, with history and audit rows, dated in
    //   China time (UTC+8: the zone every deployment serves, see storage/date.h).
    // - bulletin_records: the figures of each posted bulletin.
    // - checkins_changes / checkins_corrected_by: what changed in a posted period since it was
    //   posted, read from the index alone.
    {6, R"sql(
CREATE TABLE problems (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  checkin_id  INTEGER REFERENCES checkins (id),
  pairing_id  INTEGER NOT NULL REFERENCES pairings (id),
  household_id TEXT NOT NULL,
  person      TEXT NOT NULL DEFAULT '',
  ledger      TEXT NOT NULL CHECK (ledger IN ('cadre', 'health', 'education')),
  unit        TEXT NOT NULL,
  reported_by TEXT NOT NULL,
  reported_on TEXT NOT NULL CHECK (reported_on GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
  category    TEXT NOT NULL CHECK (category IN ('应享未享', '住房安全', '医疗', '就学', '收入就业', '其他')),
  policy      TEXT NOT NULL DEFAULT '',
  text        TEXT NOT NULL,
  status      TEXT NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'in_progress', 'resolved', 'not_a_problem')),
  status_on   TEXT NOT NULL,
  closed_on   TEXT,
  changes     INTEGER NOT NULL DEFAULT 0,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  CHECK ((status IN ('resolved', 'not_a_problem')) = (closed_on IS NOT NULL))
);
CREATE INDEX problems_checkin ON problems (checkin_id);
CREATE INDEX problems_household ON problems (household_id, status);
CREATE INDEX problems_reporter ON problems (reported_by, status);
CREATE INDEX problems_bulletin ON problems (reported_on, closed_on, status, ledger, unit, category,
                                           policy, pairing_id, person);

CREATE TABLE problem_history (
  id          INTEGER PRIMARY KEY,
  problem_id  INTEGER NOT NULL REFERENCES problems (id),
  on_date     TEXT NOT NULL,
  at          INTEGER NOT NULL,
  actor       TEXT NOT NULL,
  from_status TEXT NOT NULL DEFAULT '',
  to_status   TEXT NOT NULL,
  note        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX problem_history_problem ON problem_history (problem_id, id);

INSERT INTO problems (checkin_id, pairing_id, household_id, person, ledger, unit, reported_by,
                      reported_on, category, policy, text, status_on, created_at, updated_at)
  SELECT c.id, c.pairing_id, p.household_id, p.person, p.ledger, p.unit, c.helper_id,
         c.visit_date, bangfu_problem_category(j.value, c.policies),
         bangfu_problem_policy(j.value, c.policies), j.value, c.visit_date, c.received_at,
         c.received_at
  FROM checkins c JOIN pairings p ON p.id = c.pairing_id, json_each(c.problems) j
  WHERE c.problems <> '[]' AND c.undone_at IS NULL
  ORDER BY c.received_at, c.id, j.key;
INSERT INTO problem_history (problem_id, on_date, at, actor, to_status, note)
  SELECT id, reported_on, created_at, 'migration', 'open', '由升级前的打卡记录转为问题'
  FROM problems ORDER BY id;

CREATE TRIGGER checkin_stops_closes_problems AFTER UPDATE OF status ON checkins
WHEN OLD.status = 'active' AND NEW.status <> 'active'
BEGIN
  INSERT INTO audit (at, actor, action, subject, detail)
    SELECT NEW.undone_at, coalesce(NEW.undone_by, ''), 'problem_status', 'problem:' || id,
           json_object('status', json_array('open', 'not_a_problem'), 'checkin_id', NEW.id,
                       'note', CASE NEW.status WHEN 'corrected' THEN '打卡已更正'
                                 WHEN 'void' THEN '打卡已作废' ELSE '打卡已撤销' END)
    FROM problems WHERE checkin_id = NEW.id AND status = 'open' AND changes = 0;
  INSERT INTO problem_history (problem_id, on_date, at, actor, from_status, to_status, note)
    SELECT id, date(NEW.undone_at, 'unixepoch', '+8 hours'), NEW.undone_at,
           coalesce(NEW.undone_by, ''), 'open', 'not_a_problem',
           CASE NEW.status WHEN 'corrected' THEN '打卡已更正'
             WHEN 'void' THEN '打卡已作废' ELSE '打卡已撤销' END
    FROM problems WHERE checkin_id = NEW.id AND status = 'open' AND changes = 0;
  UPDATE problems SET status = 'not_a_problem',
                      status_on = date(NEW.undone_at, 'unixepoch', '+8 hours'),
                      closed_on = date(NEW.undone_at, 'unixepoch', '+8 hours'),
                      changes = changes + 1, updated_at = NEW.undone_at
    WHERE checkin_id = NEW.id AND status = 'open' AND changes = 0;
END;

CREATE TABLE bulletin_records (
  id        INTEGER PRIMARY KEY,
  kind      TEXT NOT NULL CHECK (kind IN ('monthly', 'quarterly')),
  period    TEXT NOT NULL,
  ledger    TEXT NOT NULL CHECK (ledger IN ('cadre', 'health', 'education', 'all')),
  figures   TEXT NOT NULL CHECK (json_valid(figures)),
  posted_at INTEGER NOT NULL
);
CREATE INDEX bulletin_records_period ON bulletin_records (kind, ledger, period, posted_at);

CREATE INDEX checkins_changes ON checkins (visit_date, received_at, undone_at, status, pairing_id);
CREATE INDEX checkins_corrected_by ON checkins (corrected_by) WHERE corrected_by IS NOT NULL;
)sql"},
    // The outbox also carries images (the coverage charts after a bulletin's text, README
    // "Charts"). SQLite cannot change a CHECK in place: the table is rebuilt with the same
    // columns, ids, statuses and index. outbox_attempts, which references it, is rebuilt with
    // it (children first), so no foreign key ever points at a dropped table.
    {7, R"sql(
CREATE TABLE outbox_v7 (
  id              INTEGER PRIMARY KEY,
  kind            TEXT NOT NULL CHECK (kind IN ('monthly', 'quarterly', 'reminder')),
  period          TEXT NOT NULL,
  ledger          TEXT NOT NULL CHECK (ledger IN ('cadre', 'health', 'education', 'all')),
  generation      INTEGER NOT NULL CHECK (generation >= 1),
  part            INTEGER NOT NULL,
  parts           INTEGER NOT NULL,
  msgtype         TEXT NOT NULL CHECK (msgtype IN ('markdown', 'text', 'image')),
  body            TEXT NOT NULL,
  status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                    ('pending', 'sending', 'sent', 'failed', 'unknown', 'cancelled')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  claim_id        INTEGER,
  claimed_at      INTEGER,
  last_error      TEXT NOT NULL DEFAULT '',
  created_at      INTEGER NOT NULL,
  sent_at         INTEGER,
  CHECK (part BETWEEN 1 AND parts),
  UNIQUE (kind, period, ledger, part, generation)
);
INSERT INTO outbox_v7 SELECT id, kind, period, ledger, generation, part, parts, msgtype, body,
  status, attempts, next_attempt_at, claim_id, claimed_at, last_error, created_at, sent_at
  FROM outbox;
CREATE TABLE outbox_attempts_v7 (
  id          INTEGER PRIMARY KEY,
  outbox_id   INTEGER NOT NULL REFERENCES outbox_v7 (id),
  started_at  INTEGER NOT NULL,
  finished_at INTEGER,
  outcome     TEXT
);
INSERT INTO outbox_attempts_v7 SELECT id, outbox_id, started_at, finished_at, outcome
  FROM outbox_attempts;
DROP TABLE outbox_attempts;
DROP TABLE outbox;
ALTER TABLE outbox_v7 RENAME TO outbox;
ALTER TABLE outbox_attempts_v7 RENAME TO outbox_attempts;
CREATE INDEX outbox_open ON outbox (id) WHERE status IN ('pending', 'sending');
CREATE INDEX outbox_attempts_started ON outbox_attempts (started_at);
)sql"},
    // What the bot made of each handled message, so the office can list the ones it did not
    // record (bangfu inbox list). Messages handled before this step: recorded when a check-in
    // came from them, rate_limited by the answer the server gave; the rest stay NULL (unknown).
    {8, R"sql(
ALTER TABLE inbound ADD COLUMN outcome TEXT CHECK (outcome IS NULL OR outcome IN
  ('recorded', 'corrected', 'undone', 'answered', 'not_understood', 'rate_limited'));
UPDATE inbound SET outcome = 'recorded'
  WHERE status = 'handled' AND EXISTS (SELECT 1 FROM checkins c WHERE c.msgid = inbound.msgid);
UPDATE inbound SET outcome = 'rate_limited'
  WHERE status = 'handled' AND outcome IS NULL AND reply LIKE '发得太快了%';
CREATE INDEX inbound_not_recorded ON inbound (received_at)
  WHERE status = 'failed' OR outcome IN ('not_understood', 'rate_limited');
)sql"},
    // Several groups (README "Several groups (多个群)"): each outbox row names the group it goes
    // to, and a bulletin is posted once per group, so the group joins the exactly-once key. Only
    // the name is stored: the chat_id and webhook URL are looked up in the config when the row is
    // sent (a webhook key is a credential that stays out of the database and its backups; a key
    // rotated in the config applies to what is still queued; a group removed from the config
    // fails its rows with a reason instead of posting somewhere stale). Rows queued before this
    // step belong to the one implicit group of wecom.webhook_url (''). The table is rebuilt as
    // in step 7, since SQLite cannot change a UNIQUE constraint in place.
    {9, R"sql(
CREATE TABLE outbox_v9 (
  id              INTEGER PRIMARY KEY,
  kind            TEXT NOT NULL CHECK (kind IN ('monthly', 'quarterly', 'reminder')),
  period          TEXT NOT NULL,
  ledger          TEXT NOT NULL CHECK (ledger IN ('cadre', 'health', 'education', 'all')),
  generation      INTEGER NOT NULL CHECK (generation >= 1),
  part            INTEGER NOT NULL,
  parts           INTEGER NOT NULL,
  msgtype         TEXT NOT NULL CHECK (msgtype IN ('markdown', 'text', 'image')),
  body            TEXT NOT NULL,
  status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                    ('pending', 'sending', 'sent', 'failed', 'unknown', 'cancelled')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  claim_id        INTEGER,
  claimed_at      INTEGER,
  last_error      TEXT NOT NULL DEFAULT '',
  created_at      INTEGER NOT NULL,
  sent_at         INTEGER,
  target_group    TEXT NOT NULL DEFAULT '',
  CHECK (part BETWEEN 1 AND parts),
  UNIQUE (kind, period, ledger, target_group, part, generation)
);
INSERT INTO outbox_v9 SELECT id, kind, period, ledger, generation, part, parts, msgtype, body,
  status, attempts, next_attempt_at, claim_id, claimed_at, last_error, created_at, sent_at, ''
  FROM outbox;
CREATE TABLE outbox_attempts_v9 (
  id          INTEGER PRIMARY KEY,
  outbox_id   INTEGER NOT NULL REFERENCES outbox_v9 (id),
  started_at  INTEGER NOT NULL,
  finished_at INTEGER,
  outcome     TEXT
);
INSERT INTO outbox_attempts_v9 SELECT id, outbox_id, started_at, finished_at, outcome
  FROM outbox_attempts;
DROP TABLE outbox_attempts;
DROP TABLE outbox;
ALTER TABLE outbox_v9 RENAME TO outbox;
ALTER TABLE outbox_attempts_v9 RENAME TO outbox_attempts;
CREATE INDEX outbox_open ON outbox (id) WHERE status IN ('pending', 'sending');
CREATE INDEX outbox_attempts_started ON outbox_attempts (started_at);
)sql"},
    // A check-in costs a page written to the WAL (and later copied back by a checkpoint) for
    // every index it lands in at its own place; under load four of them took 3.8 of the 5.3
    // pages written per message (BENCHMARKS.md §9). checkins_changes began with visit_date like
    // checkins_visit_cover: that index now also carries received_at and status, so what changed
    // in a posted period is read from it alone, and one index fewer is written per check-in.
    {10, R"sql(
DROP INDEX IF EXISTS checkins_changes;
DROP INDEX checkins_visit_cover;
CREATE INDEX checkins_visit_cover
  ON checkins (visit_date, pairing_id, mode, undone_at, received_at, status);
)sql"},
    // Counted the same way: checkins_helper_received (helper_id first) put each check-in at its
    // helper's place, 0.93 pages per message. Its two readers look back over a bounded window
    // (撤销: the last 24 hours; 更正: the last 7 days), so an index led by received_at serves
    // them: a new check-in goes at its end, with the others of its group.
    {11, R"sql(
DROP INDEX IF EXISTS checkins_helper_received;
CREATE INDEX IF NOT EXISTS checkins_received ON checkins (received_at, helper_id);
)sql"},
    // Version 11 undone: led by received_at, finding a helper's latest check-in (撤销, 更正)
    // read every check-in anyone sent since that one. Under load thousands arrive in a second,
    // and each 撤销 took 0.2-0.6 ms of the writer's time, more than the page a message saved
    // (bench/ab.sh, BENCHMARKS.md §9). Helper first, it is one seek whatever the traffic.
    {12, R"sql(
DROP INDEX IF EXISTS checkins_received;
CREATE INDEX IF NOT EXISTS checkins_helper_received ON checkins (helper_id, received_at);
)sql"},
    // The same CHECKs, written so that SQLite need not build a table to test them. A CHECK of
    // `x IN (three or more constants)` makes each INSERT or UPDATE that tests it build a
    // temporary B-tree of the list first: five of them per message (inbound's status and
    // outcome, twice, and a check-in's mode and status) cost the writer thread about 3 µs
    // each (BENCHMARKS.md §9). `x = 'a' OR x = 'b' …` accepts exactly the same values and
    // builds nothing. SQLite cannot change a CHECK in place: inbound and checkins are rebuilt
    // with the same columns, rows, rowids, indexes and trigger, with foreign keys off for the
    // step (see migrate) and checked before it commits.
    {13, R"sql(
CREATE TABLE inbound_v13 (
  msgid       TEXT PRIMARY KEY,
  platform    TEXT NOT NULL,
  userid      TEXT NOT NULL,
  chatid      TEXT NOT NULL DEFAULT '',
  chattype    TEXT NOT NULL DEFAULT '',
  text        TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  status      TEXT NOT NULL DEFAULT 'received'
                CHECK (status = 'received' OR status = 'handled' OR status = 'failed'),
  reply       TEXT,
  error       TEXT,
  handled_at  INTEGER,
  outcome     TEXT CHECK (outcome IS NULL OR outcome = 'recorded' OR outcome = 'corrected'
                          OR outcome = 'undone' OR outcome = 'answered'
                          OR outcome = 'not_understood' OR outcome = 'rate_limited')
);
INSERT INTO inbound_v13 (rowid, msgid, platform, userid, chatid, chattype, text, received_at,
                         status, reply, error, handled_at, outcome)
  SELECT rowid, msgid, platform, userid, chatid, chattype, text, received_at, status, reply,
         error, handled_at, outcome
  FROM inbound;
DROP TABLE inbound;
ALTER TABLE inbound_v13 RENAME TO inbound;
CREATE INDEX inbound_not_recorded ON inbound (received_at)
  WHERE status = 'failed' OR outcome IN ('not_understood', 'rate_limited');

CREATE TABLE checkins_v13 (
  id           INTEGER PRIMARY KEY,
  msgid        TEXT REFERENCES inbound (msgid),
  pairing_id   INTEGER NOT NULL REFERENCES pairings (id),
  helper_id    TEXT NOT NULL,
  visit_date   TEXT NOT NULL CHECK (visit_date GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
  mode         TEXT NOT NULL CHECK (mode = 'visit' OR mode = 'home_visit' OR mode = 'school_visit'
                                    OR mode = 'service' OR mode = 'phone'),
  occasions    TEXT NOT NULL DEFAULT '[]',
  policies     TEXT NOT NULL DEFAULT '[]',
  problems     TEXT NOT NULL DEFAULT '[]',
  note         TEXT NOT NULL DEFAULT '',
  received_at  INTEGER NOT NULL,
  undone_at    INTEGER,
  undone_by    TEXT,
  status       TEXT NOT NULL DEFAULT 'active'
                 CHECK (status = 'active' OR status = 'undone' OR status = 'corrected'
                        OR status = 'void'),
  corrected_by INTEGER REFERENCES checkins_v13 (id),
  entered_by   TEXT,
  CHECK ((status = 'active') = (undone_at IS NULL)),
  CHECK (msgid IS NOT NULL OR entered_by IS NOT NULL),
  UNIQUE (msgid, pairing_id)
);
INSERT INTO checkins_v13 (id, msgid, pairing_id, helper_id, visit_date, mode, occasions,
                          policies, problems, note, received_at, undone_at, undone_by, status,
                          corrected_by, entered_by)
  SELECT id, msgid, pairing_id, helper_id, visit_date, mode, occasions, policies, problems, note,
         received_at, undone_at, undone_by, status, corrected_by, entered_by
  FROM checkins;
DROP TABLE checkins;
ALTER TABLE checkins_v13 RENAME TO checkins;
CREATE INDEX checkins_pairing_cover ON checkins (pairing_id, visit_date, mode, undone_at);
CREATE INDEX checkins_reports ON checkins (visit_date, pairing_id, occasions, policies, undone_at)
  WHERE undone_at IS NULL AND (occasions <> '[]' OR policies <> '[]');
CREATE INDEX checkins_problems_cover ON checkins (visit_date, pairing_id, problems, undone_at)
  WHERE problems <> '[]' AND undone_at IS NULL;
CREATE INDEX checkins_corrected_by ON checkins (corrected_by) WHERE corrected_by IS NOT NULL;
CREATE INDEX checkins_visit_cover
  ON checkins (visit_date, pairing_id, mode, undone_at, received_at, status);
CREATE INDEX checkins_helper_received ON checkins (helper_id, received_at);
CREATE TRIGGER checkin_stops_closes_problems AFTER UPDATE OF status ON checkins
WHEN OLD.status = 'active' AND NEW.status <> 'active'
BEGIN
  INSERT INTO audit (at, actor, action, subject, detail)
    SELECT NEW.undone_at, coalesce(NEW.undone_by, ''), 'problem_status', 'problem:' || id,
           json_object('status', json_array('open', 'not_a_problem'), 'checkin_id', NEW.id,
                       'note', CASE NEW.status WHEN 'corrected' THEN '打卡已更正'
                                 WHEN 'void' THEN '打卡已作废' ELSE '打卡已撤销' END)
    FROM problems WHERE checkin_id = NEW.id AND status = 'open' AND changes = 0;
  INSERT INTO problem_history (problem_id, on_date, at, actor, from_status, to_status, note)
    SELECT id, date(NEW.undone_at, 'unixepoch', '+8 hours'), NEW.undone_at,
           coalesce(NEW.undone_by, ''), 'open', 'not_a_problem',
           CASE NEW.status WHEN 'corrected' THEN '打卡已更正'
             WHEN 'void' THEN '打卡已作废' ELSE '打卡已撤销' END
    FROM problems WHERE checkin_id = NEW.id AND status = 'open' AND changes = 0;
  UPDATE problems SET status = 'not_a_problem',
                      status_on = date(NEW.undone_at, 'unixepoch', '+8 hours'),
                      closed_on = date(NEW.undone_at, 'unixepoch', '+8 hours'),
                      changes = changes + 1, updated_at = NEW.undone_at
    WHERE checkin_id = NEW.id AND status = 'open' AND changes = 0;
END;
)sql"},
    // checkins_visit_cover and checkins_reports had pairing_id second: within a day each new
    // check-in went to its pairing's place among that day's rows, a page written per message
    // once a day has many. None of their readers wants that order (they read a range of dates;
    // the late-changes query tests received_at), so received_at comes second: a day's new
    // check-ins go at the end of that day, with the rest of their group. Same columns, so every
    // plan that read them alone still does. checkins_problems_cover has had no reader since
    // version 6 moved problems to their own table; it was still written for every check-in
    // that reports one.
    {14, R"sql(
DROP INDEX checkins_visit_cover;
CREATE INDEX checkins_visit_cover
  ON checkins (visit_date, received_at, pairing_id, mode, undone_at, status);
DROP INDEX checkins_reports;
CREATE INDEX checkins_reports
  ON checkins (visit_date, received_at, pairing_id, occasions, policies, undone_at)
  WHERE undone_at IS NULL AND (occasions <> '[]' OR policies <> '[]');
DROP INDEX checkins_problems_cover;
)sql"},
};

constexpr const char* kPairingColumns =
    "id, helper_id, helper_name, phone, ledger, unit, household_id, household_head, person, "
    "person_category, village, street, start_date, end_date";

constexpr const char* kCheckinColumns =
    "id, msgid, pairing_id, helper_id, visit_date, mode, occasions, policies, problems, note, "
    "received_at, undone_at, undone_by, status, corrected_by, entered_by";

constexpr const char* kDefaultImportActor = "roster-import";

std::string sql(std::initializer_list<std::string_view> parts) {
  std::string s;
  for (auto p : parts) s += p;
  return s;
}

int64_t now_unix() {
  return static_cast<int64_t>(std::time(nullptr));
}

void bind_date(SQLite::Statement& s, int i, const std::optional<Date>& d) {
  if (d)
    s.bind(i, d->iso());
  else
    s.bind(i);
}

CheckinStatus status_col(const SQLite::Column& c) {
  auto st = checkin_status_from(c.getString());
  if (!st) throw SQLite::Exception("stored check-in status is unknown: " + c.getString());
  return *st;
}

Mode mode_col(const SQLite::Column& c) {
  auto m = mode_from(c.getString());
  if (!m) throw SQLite::Exception("stored mode is unknown: " + c.getString());
  return *m;
}

std::string json_array(const std::vector<std::string>& v) {
  return json(v).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::vector<std::string> json_array_col(const SQLite::Column& c) {
  return json::parse(c.getString()).get<std::vector<std::string>>();
}

std::string json_text(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Reads kPairingColumns starting at column 0.
Pairing read_pairing(SQLite::Statement& s) {
  Pairing p;
  p.id = s.getColumn(0).getInt64();
  p.helper_id = s.getColumn(1).getString();
  p.helper_name = s.getColumn(2).getString();
  p.phone = s.getColumn(3).getString();
  p.ledger = ledger_col(s.getColumn(4));
  p.unit = s.getColumn(5).getString();
  p.household_id = s.getColumn(6).getString();
  p.household_head = s.getColumn(7).getString();
  p.person = s.getColumn(8).getString();
  p.person_category = s.getColumn(9).getString();
  p.village = s.getColumn(10).getString();
  p.street = s.getColumn(11).getString();
  p.start_date = date_col(s.getColumn(12));
  p.end_date = date_col(s.getColumn(13));
  return p;
}

std::vector<Pairing> read_pairings(SQLite::Statement& s) {
  std::vector<Pairing> out;
  while (s.executeStep()) out.push_back(read_pairing(s));
  return out;
}

// Reads kCheckinColumns starting at column 0.
CheckinRecord read_checkin(SQLite::Statement& s) {
  CheckinRecord c;
  c.id = s.getColumn(0).getInt64();
  c.msgid = s.getColumn(1).getString();
  c.pairing_id = s.getColumn(2).getInt64();
  c.helper_id = s.getColumn(3).getString();
  c.visit_date = required_date_col(s.getColumn(4));
  c.mode = mode_col(s.getColumn(5));
  c.occasions = json_array_col(s.getColumn(6));
  c.policies = json_array_col(s.getColumn(7));
  c.problems = json_array_col(s.getColumn(8));
  c.note = s.getColumn(9).getString();
  c.received_at = s.getColumn(10).getInt64();
  if (!s.getColumn(11).isNull()) c.undone_at = s.getColumn(11).getInt64();
  c.undone_by = s.getColumn(12).getString();
  c.status = status_col(s.getColumn(13));
  if (!s.getColumn(14).isNull()) c.corrected_by = s.getColumn(14).getInt64();
  c.entered_by = s.getColumn(15).getString();
  return c;
}

// The audit's picture of a check-in: what it says and whether it counts.
json checkin_json(const CheckinRecord& c) {
  return json{{"msgid", c.msgid.empty() ? json(nullptr) : json(c.msgid)},
              {"pairing_id", c.pairing_id},
              {"helper_id", c.helper_id},
              {"visit_date", c.visit_date.iso()},
              {"mode", mode_code(c.mode)},
              {"occasions", c.occasions},
              {"policies", c.policies},
              {"problems", c.problems},
              {"note", c.note},
              {"status", checkin_status_code(c.status)}};
}

json date_json(const std::optional<Date>& d) {
  return d ? json(d->iso()) : json(nullptr);
}

// The fields an import may change, as {"field": [old, new]}; empty when nothing changed.
json pairing_changes(const Pairing& old_p, const Pairing& new_p) {
  json changes = json::object();
  auto text = [&](const char* name, const std::string& a, const std::string& b) {
    if (a != b) changes[name] = json::array({a, b});
  };
  text("helper_name", old_p.helper_name, new_p.helper_name);
  text("phone", old_p.phone, new_p.phone);
  if (old_p.ledger != new_p.ledger)
    changes["ledger"] = json::array({ledger_code(old_p.ledger), ledger_code(new_p.ledger)});
  text("unit", old_p.unit, new_p.unit);
  text("household_head", old_p.household_head, new_p.household_head);
  text("person_category", old_p.person_category, new_p.person_category);
  text("village", old_p.village, new_p.village);
  text("street", old_p.street, new_p.street);
  if (old_p.start_date != new_p.start_date)
    changes["start_date"] = json::array({date_json(old_p.start_date), date_json(new_p.start_date)});
  if (old_p.end_date != new_p.end_date)
    changes["end_date"] = json::array({date_json(old_p.end_date), date_json(new_p.end_date)});
  return changes;
}

json pairing_identity(const Pairing& p) {
  return json{{"helper_id", p.helper_id}, {"household_id", p.household_id}, {"person", p.person}};
}

// bangfu_problem_category(phrase, policies_json) and bangfu_problem_policy(…): the classifier of
// storage/problem_category.h as SQL functions, for migration 6 (which must keep working on any
// old database, so they are registered on every writer connection).
void problem_sql_function(sqlite3_context* ctx, int argc, sqlite3_value** argv, bool policy) {
  if (argc != 2 || sqlite3_value_type(argv[0]) != SQLITE_TEXT) {
    sqlite3_result_null(ctx);
    return;
  }
  const std::string phrase(reinterpret_cast<const char*>(sqlite3_value_text(argv[0])));
  std::vector<std::string> policies;
  if (sqlite3_value_type(argv[1]) == SQLITE_TEXT) {
    json j =
        json::parse(reinterpret_cast<const char*>(sqlite3_value_text(argv[1])), nullptr, false);
    if (j.is_array())
      for (const auto& v : j)
        if (v.is_string()) policies.push_back(v.get<std::string>());
  }
  const ProblemCategory c = classify_problem(phrase, policies);
  const std::string& out = policy ? c.policy : c.category;
  sqlite3_result_text(ctx, out.c_str(), static_cast<int>(out.size()), SQLITE_TRANSIENT);
}
void problem_category_sql(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  problem_sql_function(ctx, argc, argv, false);
}
void problem_policy_sql(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  problem_sql_function(ctx, argc, argv, true);
}

void register_functions(SQLite::Database& db) {
  const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC;
  if (sqlite3_create_function_v2(db.getHandle(), "bangfu_problem_category", 2, flags, nullptr,
                                 problem_category_sql, nullptr, nullptr, nullptr) != SQLITE_OK ||
      sqlite3_create_function_v2(db.getHandle(), "bangfu_problem_policy", 2, flags, nullptr,
                                 problem_policy_sql, nullptr, nullptr, nullptr) != SQLITE_OK)
    throw SQLite::Exception("cannot register the problem classifier: " +
                            std::string(sqlite3_errmsg(db.getHandle())));
}

// Foreign keys are off while the steps run (SQLite's procedure for rebuilding a table that
// others refer to: dropping it must not touch their rows) and checked whole before the commit;
// the connection's setting is restored either way.
void migrate(SQLite::Database& db) {
  constexpr int latest = std::end(kMigrations)[-1].version;
  auto version = [&] { return db.execAndGet("PRAGMA user_version").getInt(); };
  if (version() == latest) return;
  const bool foreign_keys = db.execAndGet("PRAGMA foreign_keys").getInt() != 0;
  db.exec("PRAGMA foreign_keys = OFF");  // only outside a transaction
  try {
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
    const int current = version();  // re-read under the write lock: another process may have won
    if (current > latest)
      throw SQLite::Exception("database schema version " + std::to_string(current) +
                              " is newer than this program knows (" + std::to_string(latest) + ")");
    for (const Migration& m : kMigrations) {
      if (m.version <= current) continue;
      db.exec(m.sql);
      db.exec("PRAGMA user_version = " + std::to_string(m.version));
    }
    SQLite::Statement broken(db, "PRAGMA foreign_key_check");
    if (broken.executeStep())
      throw SQLite::Exception("migrating to schema version " + std::to_string(latest) +
                              " left a row of " + broken.getColumn(0).getString() +
                              " pointing at a missing row of " + broken.getColumn(2).getString());
    broken.reset();
    tx.commit();
  } catch (...) {
    if (foreign_keys) db.tryExec("PRAGMA foreign_keys = ON");
    throw;
  }
  if (foreign_keys) db.exec("PRAGMA foreign_keys = ON");
}

// The two reads every message makes before its write unit (who is writing), shared by the
// writer connection's statements and the reader connection's.
std::string pairings_of_sql() {
  return sql({"SELECT ", kPairingColumns,
              " FROM pairings WHERE helper_id = ?1 "
              "AND (start_date IS NULL OR start_date <= ?2) "
              "AND (end_date IS NULL OR end_date >= ?2) "
              "ORDER BY household_head, person, id"});
}
constexpr const char* kHelperNameSql =
    "SELECT helper_name FROM pairings WHERE helper_id = ?1 "
    "ORDER BY end_date IS NULL DESC, end_date DESC, updated_at DESC, id DESC LIMIT 1";
// The roster cache's reads: every pairing of a helper, and the newest roster change (the
// audit_subject index answers it without a scan).
std::string pairings_all_sql() {
  return sql({"SELECT ", kPairingColumns,
              " FROM pairings WHERE helper_id = ?1 ORDER BY household_head, person, id"});
}
constexpr const char* kRosterMarkSql =
    "SELECT coalesce(max(id), 0) FROM audit WHERE subject = 'roster'";
// Beyond this many helpers the cache starts again (a district has a few thousand).
constexpr size_t kMaxCachedHelpers = 50000;

}  // namespace

// Read-only connections for the per-message reads. In WAL mode they read the last committed
// state without waiting for the writer: a message is understood while the previous group's
// fsync runs, instead of queueing behind it (and the writer no longer queues behind a convoy of
// readers for the connection lock). A few of them, so the HTTP workers rarely wait for each
// other. Not used for ":memory:" (a second connection would open a different, empty database).
struct Store::Reader {
  explicit Reader(const std::string& path)
      // NOMUTEX: `mu` below already serialises every use; SQLite's own per-call mutex would
      // only add a lock to each step and column read.
      : db(path, SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX, 5000),
        pairings_of(db, pairings_of_sql()),
        helper_name(db, kHelperNameSql),
        pairings_all(db, pairings_all_sql()),
        roster_mark(db, kRosterMarkSql) {}
  std::mutex mu;  // guards the statements
  SQLite::Database db;
  SQLite::Statement pairings_of, helper_name, pairings_all, roster_mark;
};

struct Store::RosterCache {
  std::mutex mu;            // guards the members below
  uint64_t generation = 0;  // bumped when this process commits a roster change
  int64_t mark = -1;        // the newest roster audit id the entries were read after
  std::chrono::steady_clock::time_point checked{};  // when `mark` was last read from the file
  std::unordered_map<std::string, std::shared_ptr<const HelperRoster>> by_helper;
};

namespace {
constexpr size_t kReaders = 4;
}  // namespace

// Locks a free reader if there is one, else waits for the one this thread hashes to.
std::unique_lock<std::mutex> Store::lock_reader(Reader*& out) {
  for (auto& r : readers_) {
    std::unique_lock lock(r->mu, std::try_to_lock);
    if (lock.owns_lock()) {
      out = r.get();
      return lock;
    }
  }
  out = readers_[std::hash<std::thread::id>{}(std::this_thread::get_id()) % readers_.size()].get();
  return std::unique_lock(out->mu);
}

struct Store::Statements {
  explicit Statements(SQLite::Database& db)
      : health(db, "SELECT count(*) FROM sqlite_master"),
        user_version(db, "PRAGMA user_version"),
        begin(db, "BEGIN IMMEDIATE"),
        commit(db, "COMMIT"),
        savepoint_unit(db, "SAVEPOINT unit"),
        release_unit(db, "RELEASE unit"),
        rollback_unit(db, "ROLLBACK TO unit"),
        savepoint_inner(db, "SAVEPOINT inner"),
        release_inner(db, "RELEASE inner"),
        rollback_inner(db, "ROLLBACK TO inner"),
        pairing_by_key(db, sql({"SELECT ", kPairingColumns,
                                " FROM pairings WHERE helper_id = ?1 AND household_id = ?2 "
                                "AND person = ?3"})),
        pairing_insert(db,
                       "INSERT INTO pairings (helper_id, helper_name, phone, ledger, unit, "
                       "household_id, household_head, person, person_category, village, street, "
                       "start_date, end_date, created_at, updated_at) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)"),
        pairing_update(db,
                       "UPDATE pairings SET helper_name = ?2, phone = ?3, ledger = ?4, unit = ?5, "
                       "household_head = ?6, person_category = ?7, village = ?8, street = ?9, "
                       "start_date = ?10, end_date = ?11, updated_at = ?12 WHERE id = ?1"),
        pairings_open_after(db, sql({"SELECT ", kPairingColumns,
                                     " FROM pairings WHERE end_date IS NULL OR end_date > ?1 "
                                     "ORDER BY id"})),
        pairing_end(db, "UPDATE pairings SET end_date = ?2, updated_at = ?3 WHERE id = ?1"),
        pairings_of(db, pairings_of_sql()),
        // An interval with end < start (a future pairing ended before it began) is in force
        // on no day.
        pairings_between(db, sql({"SELECT ", kPairingColumns,
                                  " FROM pairings WHERE (start_date IS NULL OR start_date <= ?2) "
                                  "AND (end_date IS NULL OR end_date >= ?1) "
                                  "AND (start_date IS NULL OR end_date IS NULL "
                                  "OR start_date <= end_date) ORDER BY id"})),
        pairing_by_id(db, sql({"SELECT ", kPairingColumns, " FROM pairings WHERE id = ?1"})),
        helper_name(db, kHelperNameSql),
        pairings_all(db, pairings_all_sql()),
        roster_mark(db, kRosterMarkSql),
        inbound_insert(db,
                       "INSERT OR IGNORE INTO inbound (msgid, platform, userid, chatid, chattype, "
                       "text, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        reply_for(db, "SELECT reply FROM inbound WHERE msgid = ?1 AND status = 'handled'"),
        set_reply(db,
                  "UPDATE inbound SET status = 'handled', reply = ?2, error = NULL, "
                  "handled_at = ?3, outcome = ?4 WHERE msgid = ?1"),
        set_failed(db,
                   "UPDATE inbound SET status = 'failed', error = ?2, handled_at = ?3 "
                   "WHERE msgid = ?1"),
        checkin_insert(
            db,
            "INSERT INTO checkins (msgid, pairing_id, helper_id, visit_date, mode, "
            "occasions, policies, problems, note, received_at, undone_at, undone_by, status, "
            "entered_by) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
            "CASE WHEN ?11 IS NULL THEN 'active' ELSE 'undone' END, ?13)"),
        checkin_by_id(db, sql({"SELECT ", kCheckinColumns, " FROM checkins WHERE id = ?1"})),
        last_active_checkin(db, sql({"SELECT ", kCheckinColumns,
                                     " FROM checkins WHERE helper_id = ?1 AND received_at >= ?2 "
                                     "AND undone_at IS NULL AND msgid IS NOT NULL "
                                     "ORDER BY received_at DESC, id DESC LIMIT 1"})),
        mark_undone(db,
                    "UPDATE checkins SET undone_at = ?2, undone_by = ?3, status = 'undone' "
                    "WHERE id = ?1 AND undone_at IS NULL"),
        mark_stopped(db,
                     "UPDATE checkins SET undone_at = ?2, undone_by = ?3, status = ?4, "
                     "corrected_by = ?5 WHERE id = ?1 AND status = 'active'"),
        active_since(db, sql({"SELECT ", kCheckinColumns,
                              " FROM checkins WHERE helper_id = ?1 AND received_at >= ?2 "
                              "AND status = 'active' AND msgid IS NOT NULL "
                              "ORDER BY received_at DESC, id DESC"})),
        counted_visits(db,
                       "SELECT count(DISTINCT visit_date) FROM checkins WHERE pairing_id = ?1 "
                       "AND visit_date BETWEEN ?2 AND ?3 AND undone_at IS NULL "
                       "AND mode <> 'phone'"),
        checkins_between(db, sql({"SELECT ", kCheckinColumns,
                                  " FROM checkins WHERE visit_date BETWEEN ?1 AND ?2 "
                                  "ORDER BY visit_date, id"})),
        ledger(db,
               "SELECT c.msgid, p.helper_id, p.helper_name, p.ledger, p.unit, p.household_id, "
               "p.household_head, p.person, p.village, c.visit_date, c.mode, c.occasions, "
               "c.policies, c.problems, c.note, c.received_at, c.status "
               "FROM checkins c JOIN pairings p ON p.id = c.pairing_id "
               "WHERE c.visit_date BETWEEN ?1 AND ?2 AND (?3 IS NULL OR p.ledger = ?3) "
               "ORDER BY c.visit_date, c.id"),
        audit_insert(db,
                     "INSERT INTO audit (at, actor, action, subject, detail) "
                     "VALUES (?1, ?2, ?3, ?4, ?5)"),
        audit_after(db,
                    "SELECT id, at, actor, action, subject, detail FROM audit WHERE id > ?1 "
                    "ORDER BY id"),
        // Check-ins that count, dated in [?1, ?2] and received at or after ?3 (unix seconds).
        late_reports(db,
                     "SELECT p.ledger, count(*) FROM checkins c "
                     "JOIN pairings p ON p.id = c.pairing_id "
                     "WHERE c.visit_date BETWEEN ?1 AND ?2 AND c.undone_at IS NULL "
                     "AND c.received_at >= ?3 GROUP BY p.ledger") {}

  SQLite::Statement health, user_version, begin, commit;
  SQLite::Statement savepoint_unit, release_unit, rollback_unit, savepoint_inner, release_inner,
      rollback_inner;
  SQLite::Statement pairing_by_key, pairing_insert, pairing_update, pairings_open_after,
      pairing_end, pairings_of, pairings_between, pairing_by_id, helper_name, pairings_all,
      roster_mark;
  SQLite::Statement inbound_insert, reply_for, set_reply, set_failed;
  SQLite::Statement checkin_insert, checkin_by_id, last_active_checkin, mark_undone, mark_stopped,
      active_since, counted_visits, checkins_between, ledger;
  SQLite::Statement audit_insert, audit_after;
  SQLite::Statement late_reports;
  // Store::prepared's statements, by SQL text.
  std::map<std::string, std::unique_ptr<SQLite::Statement>, std::less<>> by_text;

  void audit(int64_t at, const std::string& actor, std::string_view action,
             const std::string& subject, const json& detail) {
    Use use(audit_insert);
    audit_insert.bind(1, at);
    audit_insert.bind(2, actor);
    audit_insert.bind(3, std::string(action));
    audit_insert.bind(4, subject);
    audit_insert.bind(5, json_text(detail));
    audit_insert.exec();
  }
};

Store::Store(const std::string& path) : roster_(std::make_unique<RosterCache>()) {
  // Debian's SQLite keeps memory statistics, which puts every allocation of every connection
  // behind one process-wide mutex (~7% of the writer thread's time under load). bangfu never
  // reads them. Only possible before the library initialises, i.e. before the first connection
  // opens; later calls are refused (SQLITE_MISUSE) and change nothing.
  static const int memstatus_off = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)memstatus_off;
  // Each unit's SAVEPOINT journal stays in memory, however long: by default past 64 KiB it
  // went to a temporary file, 3.7 pwrite calls per message under load (BENCHMARKS.md §9). A
  // group, and so the journal, is bounded by the connections waiting.
  static const int stmtjrnl_in_memory = sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, -1);
  (void)stmtjrnl_in_memory;
  const bool file = path != ":memory:" && !path.empty();
  // Its WAL writes gathered into one call per commit: see storage/wal_gather.h. Correct with
  // any synchronous setting; FULL below.
  if (file) wal_gather_ = std::make_unique<WalWriteGather>();
  try {
    db_ = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE,
                                             5000, file ? wal_gather_->name() : std::string());
    if (file) {
      const std::string mode = db_->execAndGet("PRAGMA journal_mode = WAL").getString();
      if (mode != "wal")
        throw SQLite::Exception("cannot switch to WAL journal mode (got " + mode + ")");
    }
  } catch (const SQLite::Exception& e) {
    // SQLite's words name neither the file nor the usual cause: both said here.
    auto failed = [&](const std::string& why) {
      return SQLite::Exception("cannot open the database " + path + ": " + why, e.getErrorCode());
    };
    std::error_code ec;
    const auto folder = std::filesystem::absolute(path, ec).parent_path();
    if (!ec && !std::filesystem::is_directory(folder, ec))
      throw failed("its folder " + folder.string() + " does not exist");
    if (std::filesystem::is_directory(path, ec)) throw failed("it is a folder, not a file");
    if (e.getErrorCode() == SQLITE_NOTADB)
      throw failed("the file is not an SQLite database (is the path right?)");
    throw failed(e.what());
  }
  // FULL: a check-in is on disk before the reply that confirms it leaves.
  db_->exec("PRAGMA synchronous = FULL");
  db_->exec("PRAGMA foreign_keys = ON");
  register_functions(*db_);
  migrate(*db_);
  st_ = std::make_unique<Statements>(*db_);
  if (file) {
    checkpointer_ = std::make_unique<Checkpointer>(path, *db_);
    for (size_t i = 0; i < kReaders; ++i) readers_.push_back(std::make_unique<Reader>(path));
  }
  std::promise<int> niced;
  std::future<int> nice = niced.get_future();
  writer_ = std::thread([this, niced = std::move(niced)]() mutable {
    niced.set_value(renice_this_thread(kWriterNiceSteps));
    writer_loop();
  });
  name_thread(writer_, "bangfu-writer");
  writer_nice_ = nice.get();
}

Store::~Store() {
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  writer_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  checkpointer_.reset();  // unhooks db_ and stops its thread while db_ is open
}

bool Store::healthy() {
  std::lock_guard lock(mu_);
  Use use(st_->health);
  return st_->health.tryExecuteStep() == SQLITE_ROW;
}

int Store::schema_version() {
  std::lock_guard lock(mu_);
  Use use(st_->user_version);
  st_->user_version.executeStep();
  return st_->user_version.getColumn(0).getInt();
}

// --- roster ----------------------------------------------------------------------------------

ImportSummary Store::import_roster(const std::vector<Pairing>& rows, Date import_date) {
  return import_roster(rows, import_date, kDefaultImportActor, now_unix());
}

ImportSummary Store::import_roster(const std::vector<Pairing>& rows, Date import_date,
                                   const std::string& actor, int64_t at) {
  ImportOptions whole;
  whole.ledgers = std::vector<Ledger>{Ledger::Cadre, Ledger::Health, Ledger::Education};
  whole.force = true;
  return import_roster(rows, import_date, actor, at, whole);
}

ImportSummary Store::import_roster(const std::vector<Pairing>& rows, Date import_date,
                                   const std::string& actor, int64_t at,
                                   const ImportOptions& options) {
  std::lock_guard lock(mu_);
  Statements& st = *st_;
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  ImportSummary sum;
  std::set<std::tuple<std::string, std::string, std::string>> in_file;
  std::set<Ledger> scope;
  if (options.ledgers)
    scope.insert(options.ledgers->begin(), options.ledgers->end());
  else
    for (const Pairing& row : rows) scope.insert(row.ledger);
  for (Ledger l : scope) sum.by_ledger[l];
  // Open after the import date, before this import: no end date, or a later one. One that
  // already ends on the import date needs no change and is not counted again on a second import
  // the same day. Pairings absent from the file are the same before and after its rows.
  std::vector<Pairing> open;
  {
    Use use(st.pairings_open_after);
    st.pairings_open_after.bind(1, import_date.iso());
    open = read_pairings(st.pairings_open_after);
  }

  for (const Pairing& row : rows) {
    in_file.emplace(row.helper_id, row.household_id, row.person);
    LedgerImport& per = sum.by_ledger[row.ledger];
    std::optional<Pairing> old;
    {
      Use use(st.pairing_by_key);
      st.pairing_by_key.bind(1, row.helper_id);
      st.pairing_by_key.bind(2, row.household_id);
      st.pairing_by_key.bind(3, row.person);
      if (st.pairing_by_key.executeStep()) old = read_pairing(st.pairing_by_key);
    }
    if (!old) {
      Use use(st.pairing_insert);
      auto& s = st.pairing_insert;
      s.bind(1, row.helper_id);
      s.bind(2, row.helper_name);
      s.bind(3, row.phone);
      s.bind(4, std::string(ledger_code(row.ledger)));
      s.bind(5, row.unit);
      s.bind(6, row.household_id);
      s.bind(7, row.household_head);
      s.bind(8, row.person);
      s.bind(9, row.person_category);
      s.bind(10, row.village);
      s.bind(11, row.street);
      bind_date(s, 12, row.start_date);
      bind_date(s, 13, row.end_date);
      s.bind(14, at);
      s.exec();
      ++sum.inserted;
      ++per.inserted;
      continue;
    }
    json changes = pairing_changes(*old, row);
    if (changes.empty()) {
      ++sum.unchanged;
      ++per.unchanged;
      continue;
    }
    {
      Use use(st.pairing_update);
      auto& s = st.pairing_update;
      s.bind(1, old->id);
      s.bind(2, row.helper_name);
      s.bind(3, row.phone);
      s.bind(4, std::string(ledger_code(row.ledger)));
      s.bind(5, row.unit);
      s.bind(6, row.household_head);
      s.bind(7, row.person_category);
      s.bind(8, row.village);
      s.bind(9, row.street);
      bind_date(s, 10, row.start_date);
      bind_date(s, 11, row.end_date);
      s.bind(12, at);
      s.exec();
    }
    ++sum.updated;
    ++per.updated;
    const bool was_ended = old->end_date && *old->end_date < import_date;
    const bool now_open = !row.end_date || *row.end_date >= import_date;
    json detail = pairing_identity(*old);
    detail["import_date"] = import_date.iso();
    detail["changes"] = std::move(changes);
    st.audit(at, actor, was_ended && now_open ? "pairing_reopen" : "pairing_update",
             "pairing:" + std::to_string(old->id), detail);
  }

  // A pairing the file moves to another ledger counts as open in the one it had.
  std::map<Ledger, int> open_before;
  for (const Pairing& p : open) {
    ++open_before[p.ledger];
    if (!scope.count(p.ledger) || in_file.count({p.helper_id, p.household_id, p.person})) continue;
    sum.ended_pairings.push_back(p);
    ++sum.by_ledger[p.ledger].ended;
  }
  for (auto& [l, per] : sum.by_ledger) per.open_before = open_before[l];
  for (const auto& [l, per] : sum.by_ledger)
    if (per.ended > 0 && per.ended > options.max_end_share * per.open_before && !options.force)
      sum.refused.push_back(l);
  if (!sum.refused.empty()) {
    sum.ended = static_cast<int>(sum.ended_pairings.size());
    return sum;  // the transaction rolls back: nothing changed
  }
  for (const Pairing& p : sum.ended_pairings) {
    {
      Use use(st.pairing_end);
      st.pairing_end.bind(1, p.id);
      st.pairing_end.bind(2, import_date.iso());
      st.pairing_end.bind(3, at);
      st.pairing_end.exec();
    }
    ++sum.ended;
    json detail = pairing_identity(p);
    detail["import_date"] = import_date.iso();
    detail["changes"] = {{"end_date", json::array({date_json(p.end_date), import_date.iso()})}};
    st.audit(at, actor, "pairing_end", "pairing:" + std::to_string(p.id), detail);
  }

  json ledgers = json::array();
  for (Ledger l : scope) ledgers.push_back(ledger_code(l));
  st.audit(at, actor, "roster_import", "roster",
           json{{"import_date", import_date.iso()},
                {"rows", rows.size()},
                {"inserted", sum.inserted},
                {"updated", sum.updated},
                {"unchanged", sum.unchanged},
                {"ended", sum.ended},
                {"ending_ledgers", ledgers},
                {"forced", options.force}});
  if (options.dry_run) return sum;  // rolls back
  tx.commit();
  roster_changed();
  sum.applied = true;
  return sum;
}

std::vector<Pairing> Store::pairings_of(const std::string& helper_id, Date on) {
  const auto roster = roster_of(helper_id);
  std::vector<Pairing> out;
  for (const Pairing& p : roster->pairings)
    if (p.active_on(on)) out.push_back(p);
  return out;
}

void Store::roster_changed() {
  std::lock_guard lock(roster_->mu);
  ++roster_->generation;
  roster_->by_helper.clear();
  roster_->checked = {};  // the next lookup reads the mark
}

std::shared_ptr<const HelperRoster> Store::roster_of(const std::string& helper_id) {
  // Reading the mark is most of a cached lookup's cost (a read transaction on a WAL reader), and
  // under load several messages a millisecond come in: they share one reading.
  constexpr auto kMarkFresh = std::chrono::milliseconds(1);
  RosterCache& cache = *roster_;
  const auto now = std::chrono::steady_clock::now();
  // Which roster the database holds now; read first, so that entries read below are never
  // older than the mark they are filed under.
  int64_t mark = 0;
  bool read_now = true;
  {
    std::lock_guard lock(cache.mu);
    if (cache.mark >= 0 && now - cache.checked < kMarkFresh) {
      mark = cache.mark;
      read_now = false;
    }
  }
  if (read_now) {
    Reader* r = nullptr;
    auto lock = readers_.empty() ? std::unique_lock(mu_) : lock_reader(r);
    auto& s = r ? r->roster_mark : st_->roster_mark;
    Use use(s);
    s.executeStep();
    mark = s.getColumn(0).getInt64();
  }
  uint64_t generation = 0;
  {
    std::lock_guard lock(cache.mu);
    if (mark > cache.mark) {  // another process changed the roster
      cache.by_helper.clear();
      cache.mark = mark;
    }
    if (read_now && mark == cache.mark) cache.checked = now;
    if (mark == cache.mark)
      if (auto it = cache.by_helper.find(helper_id); it != cache.by_helper.end()) return it->second;
    generation = cache.generation;
  }
  auto roster = std::make_shared<HelperRoster>();
  {
    Reader* r = nullptr;
    auto lock = readers_.empty() ? std::unique_lock(mu_) : lock_reader(r);
    auto& all = r ? r->pairings_all : st_->pairings_all;
    {
      Use use(all);
      all.bind(1, helper_id);
      roster->pairings = read_pairings(all);
    }
    auto& name = r ? r->helper_name : st_->helper_name;
    Use use(name);
    name.bind(1, helper_id);
    if (name.executeStep()) roster->name = name.getColumn(0).getString();
  }
  std::lock_guard lock(cache.mu);
  // Filed only if no roster change came in between (else the next lookup reads again).
  if (generation == cache.generation && mark == cache.mark) {
    if (cache.by_helper.size() >= kMaxCachedHelpers) cache.by_helper.clear();
    cache.by_helper.emplace(helper_id, roster);
  }
  return roster;
}

std::vector<Pairing> Store::pairings_between(Date from, Date to) {
  std::lock_guard lock(mu_);
  auto& s = st_->pairings_between;
  Use use(s);
  s.bind(1, from.iso());
  s.bind(2, to.iso());
  return read_pairings(s);
}

std::optional<Pairing> Store::pairing(int64_t id) {
  std::lock_guard lock(mu_);
  auto& s = st_->pairing_by_id;
  Use use(s);
  s.bind(1, id);
  if (!s.executeStep()) return std::nullopt;
  return read_pairing(s);
}

std::optional<std::string> Store::helper_name(const std::string& helper_id) {
  return roster_of(helper_id)->name;
}

// --- inbound messages ------------------------------------------------------------------------

// The same statements as inside a write unit, run under the lock outside any transaction: a
// single statement outside BEGIN is its own transaction, durable when it returns.
SaveInbound Store::save_inbound(const InboundMessage& m) {
  std::lock_guard lock(mu_);
  Tx tx(*this);
  return tx.save_inbound(m);
}

std::optional<std::string> Store::reply_for(const std::string& msgid) {
  std::lock_guard lock(mu_);
  Tx tx(*this);
  return tx.reply_for(msgid);
}

// --- transactions and check-ins --------------------------------------------------------------

// --- group commit ----------------------------------------------------------------------------

namespace {
// Runs a prepared statement that returns no rows.
void run(SQLite::Statement& s) {
  Use use(s);
  s.exec();
}
// A failure every unit of a group shares (BEGIN or COMMIT failed), as an exception object of
// each caller's own: each is then freed on its caller's thread (see Store::submit).
std::exception_ptr own_copy(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const SQLite::Exception& x) {
    return std::make_exception_ptr(SQLite::Exception(x.what(), x.getErrorCode()));
  } catch (const std::exception& x) {
    return std::make_exception_ptr(std::runtime_error(x.what()));
  } catch (...) {
    return std::make_exception_ptr(std::runtime_error("unknown failure"));
  }
}
}  // namespace

void Store::submit(const std::function<void(Tx&)>& fn) {
  // The unit's exception, if any, is moved to this thread: the writer keeps no reference to it.
  // An exception object is freed by whichever thread drops the last reference, and libstdc++'s
  // reference count is invisible to TSan, so it must end on the thread that reads it.
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::exception_ptr error;
  };
  auto wait = std::make_shared<Wait>();
  submit_async([&fn](Tx& tx) { fn(tx); },
               [wait](std::exception_ptr error) {
                 std::lock_guard lock(wait->mu);
                 wait->error = std::move(error);
                 wait->done = true;
                 wait->cv.notify_one();
               });
  std::exception_ptr error;
  {
    std::unique_lock lock(wait->mu);
    wait->cv.wait(lock, [&] { return wait->done; });
    error = std::move(wait->error);
  }
  if (error) std::rethrow_exception(error);
}

void Store::submit_async(std::function<void(Tx&)> fn,
                         std::function<void(std::exception_ptr)> done) {
  std::lock_guard lock(queue_mu_);
  if (stopping_) throw SQLite::Exception("store is closing");
  queue_.push_back(Job{std::move(fn), std::move(done), nullptr});
  // A writer busy with a group finds this unit when it looks again; only an idle one is woken.
  if (queue_.size() == 1) writer_cv_.notify_one();
}

void Store::writer_loop() {
  std::vector<Job> group;
  for (;;) {
    {
      std::unique_lock lock(queue_mu_);
      writer_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to write
      // The whole queue is the next group: everything that came in while the last one was
      // being committed shares one transaction and one fsync.
      group.swap(queue_);
    }
    run_group(group);
    {
      std::lock_guard lock(queue_mu_);
      ++stats_.groups;
      stats_.units += group.size();
    }
    // After the commit (or its failure), outside the lock: a callback may queue the next unit.
    for (Job& j : group) {
      try {
        j.done(std::move(j.error));
      } catch (...) {
        // A callback must not throw; the writer carries on for the other units regardless.
      }
    }
    group.clear();
  }
}

void Store::run_group(std::vector<Job>& jobs) {
  std::lock_guard lock(mu_);
  try {
    run(st_->begin);
  } catch (...) {
    const auto e = std::current_exception();
    for (Job& j : jobs) j.error = own_copy(e);
    return;
  }
  Tx tx(*this);
  for (Job& j : jobs) {
    try {
      run(st_->savepoint_unit);
      j.fn(tx);
      run(st_->release_unit);
    } catch (...) {
      j.error = std::current_exception();
      // Undo only this unit. If even that fails the transaction is unusable: fail the group.
      try {
        run(st_->rollback_unit);
        run(st_->release_unit);
      } catch (...) {
        rollback_locked();
        const auto e = std::current_exception();
        for (Job& k : jobs)
          if (!k.error) k.error = own_copy(e);
        return;
      }
    }
  }
  try {
    run(st_->commit);
  } catch (...) {
    rollback_locked();
    const auto e = std::current_exception();
    for (Job& j : jobs)
      if (!j.error) j.error = own_copy(e);
  }
}

Store::CommitStats Store::commit_stats() {
  CommitStats out;
  {
    std::lock_guard lock(queue_mu_);
    out = stats_;
  }
  if (checkpointer_) {
    const auto c = checkpointer_->counts();
    out.checkpoints_background = c.background;
    out.checkpoints_tail = c.tail;
  }
  return out;
}

void Store::Tx::savepoint() {
  run(s_.st_->savepoint_inner);
}
void Store::Tx::release() {
  run(s_.st_->release_inner);
}
void Store::Tx::rollback_to() {
  run(s_.st_->rollback_inner);
  run(s_.st_->release_inner);
}

SaveInbound Store::Tx::save_inbound(const InboundMessage& m) {
  auto& s = s_.st_->inbound_insert;
  Use use(s);
  s.bind(1, m.msgid);
  s.bind(2, m.platform);
  s.bind(3, m.userid);
  s.bind(4, m.chatid);
  s.bind(5, m.chattype);
  s.bind(6, m.text);
  s.bind(7, m.received_at);
  return s.exec() == 1 ? SaveInbound::New : SaveInbound::Duplicate;
}

std::optional<std::string> Store::Tx::reply_for(const std::string& msgid) {
  auto& s = s_.st_->reply_for;
  Use use(s);
  s.bind(1, msgid);
  if (!s.executeStep() || s.getColumn(0).isNull()) return std::nullopt;
  return s.getColumn(0).getString();
}

SQLite::Statement& Store::prepared(std::string_view sql) {
  auto it = st_->by_text.find(sql);
  if (it == st_->by_text.end())
    it = st_->by_text
             .emplace(std::string(sql), std::make_unique<SQLite::Statement>(*db_, std::string(sql)))
             .first;
  return *it->second;
}

void Store::rollback_locked() {
  // Called while an exception is in flight: must not throw. SQLite may have rolled back already
  // (e.g. after SQLITE_FULL), in which case there is nothing to do.
  if (sqlite3_get_autocommit(db_->getHandle()) == 0) db_->tryExec("ROLLBACK");
}

int64_t Store::Tx::add_checkin(const CheckinRecord& c) {
  auto& s = s_.st_->checkin_insert;
  Use use(s);
  if (c.msgid.empty())
    s.bind(1);
  else
    s.bind(1, c.msgid);
  s.bind(2, c.pairing_id);
  s.bind(3, c.helper_id);
  s.bind(4, c.visit_date.iso());
  s.bind(5, std::string(mode_code(c.mode)));
  s.bind(6, json_array(c.occasions));
  s.bind(7, json_array(c.policies));
  s.bind(8, json_array(c.problems));
  s.bind(9, c.note);
  s.bind(10, c.received_at);
  if (c.undone_at) {
    s.bind(11, *c.undone_at);
    s.bind(12, c.undone_by);
  } else {
    s.bind(11);
    s.bind(12);
  }
  if (c.entered_by.empty())
    s.bind(13);
  else
    s.bind(13, c.entered_by);
  s.exec();
  return s_.db_->getLastInsertRowid();
}

std::vector<CheckinRecord> Store::Tx::active_checkins_since(const std::string& helper_id,
                                                            int64_t since) {
  auto& s = s_.st_->active_since;
  Use use(s);
  s.bind(1, helper_id);
  s.bind(2, since);
  std::vector<CheckinRecord> out;
  while (s.executeStep()) out.push_back(read_checkin(s));
  return out;
}

std::optional<CheckinRecord> Store::Tx::checkin(int64_t id) {
  auto& s = s_.st_->checkin_by_id;
  Use use(s);
  s.bind(1, id);
  if (!s.executeStep()) return std::nullopt;
  return read_checkin(s);
}

namespace {
// Marks an active check-in as no longer counting, for `status`'s reason. False if it was not
// active.
bool stop_counting(SQLite::Statement& s, int64_t id, const std::string& by, int64_t at,
                   CheckinStatus status, std::optional<int64_t> corrected_by) {
  Use use(s);
  s.bind(1, id);
  s.bind(2, at);
  s.bind(3, by);
  s.bind(4, std::string(checkin_status_code(status)));
  if (corrected_by)
    s.bind(5, *corrected_by);
  else
    s.bind(5);
  return s.exec() == 1;
}
}  // namespace

std::optional<int64_t> Store::Tx::correct_checkin(int64_t old_id, const CheckinRecord& replacement,
                                                  const std::string& by, int64_t at) {
  const auto old = checkin(old_id);
  if (!old || old->status != CheckinStatus::Active) return std::nullopt;
  CheckinRecord fresh = replacement;
  fresh.undone_at.reset();
  fresh.undone_by.clear();
  fresh.status = CheckinStatus::Active;
  const int64_t new_id = add_checkin(fresh);
  if (!stop_counting(s_.st_->mark_stopped, old_id, by, at, CheckinStatus::Corrected, new_id))
    throw SQLite::Exception("correct_checkin: check-in " + std::to_string(old_id) + " changed");
  fresh.id = new_id;
  s_.st_->audit(at, by, "checkin_correct", "checkin:" + std::to_string(old_id),
                json{{"changes",
                      {{"status", json::array({"active", "corrected"})},
                       {"corrected_by", json::array({nullptr, new_id})}}},
                     {"before", checkin_json(*old)},
                     {"after", json{{"id", new_id}, {"checkin", checkin_json(fresh)}}}});
  return new_id;
}

bool Store::Tx::void_checkin(int64_t checkin_id, const std::string& by, int64_t at,
                             const std::string& reason) {
  const auto old = checkin(checkin_id);
  if (!old || old->status != CheckinStatus::Active) return false;
  if (!stop_counting(s_.st_->mark_stopped, checkin_id, by, at, CheckinStatus::Void, std::nullopt))
    return false;
  s_.st_->audit(at, by, "checkin_void", "checkin:" + std::to_string(checkin_id),
                json{{"changes", {{"status", json::array({"active", "void"})}}},
                     {"before", checkin_json(*old)},
                     {"reason", reason}});
  return true;
}

int64_t Store::Tx::add_office_checkin(CheckinRecord c, const std::string& by, int64_t at,
                                      const std::string& reason) {
  c.msgid.clear();
  c.entered_by = by;
  c.undone_at.reset();
  c.undone_by.clear();
  c.status = CheckinStatus::Active;
  c.received_at = at;
  const int64_t id = add_checkin(c);
  s_.st_->audit(at, by, "checkin_add", "checkin:" + std::to_string(id),
                json{{"after", checkin_json(c)}, {"reason", reason}});
  return id;
}

std::optional<CheckinRecord> Store::Tx::last_active_checkin(const std::string& helper_id,
                                                            int64_t since) {
  auto& s = s_.st_->last_active_checkin;
  Use use(s);
  s.bind(1, helper_id);
  s.bind(2, since);
  if (!s.executeStep()) return std::nullopt;
  return read_checkin(s);
}

bool Store::Tx::mark_undone(int64_t checkin_id, const std::string& by, int64_t at) {
  Statements& st = *s_.st_;
  {
    Use use(st.mark_undone);
    st.mark_undone.bind(1, checkin_id);
    st.mark_undone.bind(2, at);
    st.mark_undone.bind(3, by);
    if (st.mark_undone.exec() == 0) return false;
  }
  CheckinRecord c;
  {
    Use use(st.checkin_by_id);
    st.checkin_by_id.bind(1, checkin_id);
    st.checkin_by_id.executeStep();
    c = read_checkin(st.checkin_by_id);
  }
  st.audit(at, by, "checkin_undo", "checkin:" + std::to_string(checkin_id),
           json{{"changes", {{"status", json::array({"active", "undone"})}}},
                {"msgid", c.msgid},
                {"pairing_id", c.pairing_id},
                {"helper_id", c.helper_id},
                {"visit_date", c.visit_date.iso()},
                {"mode", mode_code(c.mode)}});
  return true;
}

int Store::Tx::counted_visits(int64_t pairing_id, Month m) {
  auto& s = s_.st_->counted_visits;
  Use use(s);
  s.bind(1, pairing_id);
  s.bind(2, m.first().iso());
  s.bind(3, m.last().iso());
  s.executeStep();
  return s.getColumn(0).getInt();
}

std::string_view inbound_outcome_code(InboundOutcome o) {
  switch (o) {
    case InboundOutcome::Recorded:
      return "recorded";
    case InboundOutcome::Corrected:
      return "corrected";
    case InboundOutcome::Undone:
      return "undone";
    case InboundOutcome::Answered:
      return "answered";
    case InboundOutcome::NotUnderstood:
      return "not_understood";
    case InboundOutcome::RateLimited:
      return "rate_limited";
  }
  return "answered";
}

void Store::Tx::set_reply(const std::string& msgid, const std::string& reply,
                          InboundOutcome outcome) {
  auto& s = s_.st_->set_reply;
  Use use(s);
  s.bind(1, msgid);
  s.bind(2, reply);
  s.bind(3, now_unix());
  s.bind(4, std::string(inbound_outcome_code(outcome)));
  if (s.exec() == 0) throw SQLite::Exception("set_reply: no inbound message " + msgid);
}

void Store::Tx::set_failed(const std::string& msgid, const std::string& reason) {
  auto& s = s_.st_->set_failed;
  Use use(s);
  s.bind(1, msgid);
  s.bind(2, reason);
  s.bind(3, now_unix());
  if (s.exec() == 0) throw SQLite::Exception("set_failed: no inbound message " + msgid);
}

// --- reads for bulletins and exports ---------------------------------------------------------

std::vector<CheckinRecord> Store::checkins_between(Date from, Date to) {
  std::lock_guard lock(mu_);
  auto& s = st_->checkins_between;
  Use use(s);
  s.bind(1, from.iso());
  s.bind(2, to.iso());
  std::vector<CheckinRecord> out;
  while (s.executeStep()) out.push_back(read_checkin(s));
  return out;
}

std::vector<LedgerRow> Store::ledger(Month m, std::optional<Ledger> only) {
  std::lock_guard lock(mu_);
  auto& s = st_->ledger;
  Use use(s);
  bind_period(s, m.first(), m.last(), only);
  std::vector<LedgerRow> out;
  while (s.executeStep()) {
    LedgerRow r;
    r.msgid = s.getColumn(0).getString();
    r.helper_id = s.getColumn(1).getString();
    r.helper_name = s.getColumn(2).getString();
    r.ledger = ledger_col(s.getColumn(3));
    r.unit = s.getColumn(4).getString();
    r.household_id = s.getColumn(5).getString();
    r.household_head = s.getColumn(6).getString();
    r.person = s.getColumn(7).getString();
    r.village = s.getColumn(8).getString();
    r.visit_date = required_date_col(s.getColumn(9));
    r.mode = mode_col(s.getColumn(10));
    r.occasions = json_array_col(s.getColumn(11));
    r.policies = json_array_col(s.getColumn(12));
    r.problems = json_array_col(s.getColumn(13));
    r.note = s.getColumn(14).getString();
    r.received_at = s.getColumn(15).getInt64();
    r.status = status_col(s.getColumn(16));
    out.push_back(std::move(r));
  }
  return out;
}

std::map<Ledger, int> Store::late_reports(Month m, int64_t received_from) {
  std::lock_guard lock(mu_);
  auto& s = st_->late_reports;
  Use use(s);
  s.bind(1, m.first().iso());
  s.bind(2, m.last().iso());
  s.bind(3, received_from);
  std::map<Ledger, int> out;
  while (s.executeStep()) out[ledger_col(s.getColumn(0))] = s.getColumn(1).getInt();
  return out;
}

std::vector<AuditEntry> Store::audit_entries(int64_t after_id) {
  std::lock_guard lock(mu_);
  auto& s = st_->audit_after;
  Use use(s);
  s.bind(1, after_id);
  std::vector<AuditEntry> out;
  while (s.executeStep()) {
    out.push_back({s.getColumn(0).getInt64(), s.getColumn(1).getInt64(), s.getColumn(2).getString(),
                   s.getColumn(3).getString(), s.getColumn(4).getString(),
                   s.getColumn(5).getString()});
  }
  return out;
}

// --- the office's reads (bangfu checkin/audit/inbox list) ------------------------------------
// Prepared per call: these run once per command, not per message.

std::vector<Pairing> Store::pairings_with(const std::string& helper_id,
                                          const std::string& household_id) {
  std::lock_guard lock(mu_);
  SQLite::Statement s(*db_, sql({"SELECT ", kPairingColumns,
                                 " FROM pairings WHERE helper_id = ?1 AND household_id = ?2 "
                                 "ORDER BY person, id"}));
  s.bind(1, helper_id);
  s.bind(2, household_id);
  return read_pairings(s);
}

std::vector<AuditEntry> Store::audit_since(int64_t since) {
  std::lock_guard lock(mu_);
  SQLite::Statement s(*db_,
                      "SELECT id, at, actor, action, subject, detail FROM audit WHERE at >= ?1 "
                      "ORDER BY id");
  s.bind(1, since);
  std::vector<AuditEntry> out;
  while (s.executeStep()) {
    out.push_back({s.getColumn(0).getInt64(), s.getColumn(1).getInt64(), s.getColumn(2).getString(),
                   s.getColumn(3).getString(), s.getColumn(4).getString(),
                   s.getColumn(5).getString()});
  }
  return out;
}

std::vector<CheckinListRow> Store::checkins(const CheckinFilter& f) {
  std::lock_guard lock(mu_);
  std::string cols;
  for (std::string_view c : {"id", "msgid", "pairing_id", "helper_id", "visit_date", "mode",
                             "occasions", "policies", "problems", "note", "received_at",
                             "undone_at", "undone_by", "status", "corrected_by", "entered_by"})
    cols += std::string(cols.empty() ? "" : ", ") + "c." + std::string(c);
  std::string pcols;
  for (std::string_view c : {"id", "helper_id", "helper_name", "phone", "ledger", "unit",
                             "household_id", "household_head", "person", "person_category",
                             "village", "street", "start_date", "end_date"})
    pcols += ", p." + std::string(c);
  SQLite::Statement s(*db_, sql({"SELECT ", cols, pcols,
                                 " FROM checkins c JOIN pairings p ON p.id = c.pairing_id "
                                 "WHERE (?1 IS NULL OR c.helper_id = ?1) "
                                 "AND (?2 IS NULL OR p.household_id = ?2) "
                                 "AND (?3 IS NULL OR c.visit_date BETWEEN ?3 AND ?4) "
                                 "ORDER BY c.visit_date, c.id"}));
  if (f.helper_id) s.bind(1, *f.helper_id);
  if (f.household_id) s.bind(2, *f.household_id);
  if (f.month) {
    s.bind(3, f.month->first().iso());
    s.bind(4, f.month->last().iso());
  }
  std::vector<CheckinListRow> out;
  while (s.executeStep()) {
    CheckinListRow r;
    r.checkin = read_checkin(s);
    Pairing& p = r.pairing;
    const int o = 16;  // the pairing's columns follow the check-in's
    p.id = s.getColumn(o).getInt64();
    p.helper_id = s.getColumn(o + 1).getString();
    p.helper_name = s.getColumn(o + 2).getString();
    p.phone = s.getColumn(o + 3).getString();
    p.ledger = ledger_col(s.getColumn(o + 4));
    p.unit = s.getColumn(o + 5).getString();
    p.household_id = s.getColumn(o + 6).getString();
    p.household_head = s.getColumn(o + 7).getString();
    p.person = s.getColumn(o + 8).getString();
    p.person_category = s.getColumn(o + 9).getString();
    p.village = s.getColumn(o + 10).getString();
    p.street = s.getColumn(o + 11).getString();
    p.start_date = date_col(s.getColumn(o + 12));
    p.end_date = date_col(s.getColumn(o + 13));
    out.push_back(std::move(r));
  }
  return out;
}

std::optional<CheckinRecord> Store::checkin(int64_t id) {
  std::lock_guard lock(mu_);
  auto& s = st_->checkin_by_id;
  Use use(s);
  s.bind(1, id);
  if (!s.executeStep()) return std::nullopt;
  return read_checkin(s);
}

std::vector<InboxEntry> Store::inbox(std::optional<std::string> status, int64_t since) {
  std::lock_guard lock(mu_);
  // The WHERE repeats the partial index's condition so the planner can use it.
  SQLite::Statement s(*db_,
                      "SELECT msgid, platform, userid, chatid, chattype, text, received_at, "
                      "CASE WHEN status = 'failed' THEN 'failed' ELSE outcome END, reply, error, "
                      "handled_at FROM inbound "
                      "WHERE (status = 'failed' OR outcome IN ('not_understood', 'rate_limited')) "
                      "AND received_at >= ?1 "
                      "AND (?2 IS NULL OR ?2 = CASE WHEN status = 'failed' THEN 'failed' "
                      "ELSE outcome END) ORDER BY received_at, msgid");
  s.bind(1, since);
  if (status) s.bind(2, *status);
  std::vector<InboxEntry> out;
  while (s.executeStep()) {
    InboxEntry e;
    e.message.msgid = s.getColumn(0).getString();
    e.message.platform = s.getColumn(1).getString();
    e.message.userid = s.getColumn(2).getString();
    e.message.chatid = s.getColumn(3).getString();
    e.message.chattype = s.getColumn(4).getString();
    e.message.text = s.getColumn(5).getString();
    e.message.received_at = s.getColumn(6).getInt64();
    e.status = s.getColumn(7).getString();
    e.reply = s.getColumn(8).getString();
    e.error = s.getColumn(9).getString();
    if (!s.getColumn(10).isNull()) e.handled_at = s.getColumn(10).getInt64();
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace storage
