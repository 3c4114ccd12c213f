#include "storage/checkpointer.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include "storage/thread_name.h"

namespace storage {

Checkpointer::Checkpointer(const std::string& path, SQLite::Database& writer, int background_frames,
                           int tail_frames)
    : writer_(writer.getHandle()),
      own_(std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE)),
      background_frames_(background_frames),
      tail_frames_(tail_frames),
      next_at_(background_frames) {
  // The database file is synced before the WAL is marked copied, as the writer's would be.
  own_->exec("PRAGMA synchronous = FULL");
  // Replaces SQLite's automatic checkpoint on the writer (both are the WAL hook).
  sqlite3_wal_hook(writer_, &Checkpointer::on_commit, this);
  thread_ = std::thread([this] { run(); });
  name_thread(thread_, "bangfu-ckpt");
}

Checkpointer::~Checkpointer() {
  sqlite3_wal_hook(writer_, nullptr, nullptr);
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Checkpointer::Counts Checkpointer::counts() {
  std::lock_guard lock(mu_);
  return counts_;
}

// On the committing thread, after each commit, with its connection's lock held.
int Checkpointer::on_commit(void* self, sqlite3* db, const char* schema, int frames) {
  auto& c = *static_cast<Checkpointer*>(self);
  std::unique_lock lock(c.mu_);
  if (frames < c.last_frames_) {  // the WAL started over
    c.next_at_ = c.background_frames_;
    c.phase_ = Phase::Normal;
  }
  c.last_frames_ = frames;
  if (c.phase_ == Phase::Tail && !c.running_) {
    // What the thread's last pass left: the pages committed while it ran. No writer can add to
    // it meanwhile (this is the writer), so the WAL is then wholly copied and the next
    // transaction starts it over. An error (a reader holding a page) leaves it for the next
    // commit to try again.
    c.running_ = true;
    lock.unlock();
    const int rc =
        sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    lock.lock();
    c.running_ = false;
    ++c.counts_.tail;
    if (rc == SQLITE_OK) {
      c.phase_ = Phase::Normal;
      c.next_at_ = frames + c.background_frames_;
    }
    lock.unlock();
    c.cv_.notify_all();
    return SQLITE_OK;
  }
  if (c.phase_ == Phase::Normal && frames >= c.tail_frames_) {
    // One more pass by the thread right away, so that the commit's own pass is short.
    c.phase_ = Phase::Closing;
    c.wanted_ = true;
  } else if (c.phase_ == Phase::Normal && frames >= c.next_at_) {
    // A pass per background_frames new pages: each copies a page once however often the WAL
    // holds it, so pages written again and again (the ends of the tables) are copied less.
    c.next_at_ = frames + c.background_frames_;
    c.wanted_ = true;
  } else {
    return SQLITE_OK;
  }
  lock.unlock();
  c.cv_.notify_one();
  return SQLITE_OK;
}

void Checkpointer::run() {
  // Below the threads that answer: no one waits for a pass, while on a busy machine every moment
  // the Store's writer waits for a core delays a whole group's answers (BENCHMARKS.md §9). At
  // +5 the thread still gets a third of the share of one at +0, several times what it needs.
  (void)renice_this_thread(kThreadNice);
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || (wanted_ && !running_); });
    if (stopping_) return;
    wanted_ = false;
    running_ = true;
    const bool closing = phase_ == Phase::Closing;
    lock.unlock();
    (void)sqlite3_wal_checkpoint_v2(own_->getHandle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                                    nullptr);
    lock.lock();
    running_ = false;
    ++counts_.background;
    // Closing asked for during this pass: its start may be long ago, so one more.
    if (phase_ == Phase::Closing) {
      if (closing)
        phase_ = Phase::Tail;
      else
        wanted_ = true;
    }
    cv_.notify_all();
  }
}

}  // namespace storage
