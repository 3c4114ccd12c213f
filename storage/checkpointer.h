#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

struct sqlite3;

namespace SQLite {
class Database;
}

namespace storage {

/// Copies a connection's WAL back into the database file on a thread of its own, so that the
/// connection's commits do not wait for it.
///
/// SQLite's automatic checkpoint runs inside the commit that takes the WAL past 1,000 pages:
/// the Store's writer thread copied those pages into the database file and fsynced it (a
/// thousand scattered pages, its longest wait) while every message of the next group waited.
/// Here a commit only wakes this thread, every background_frames new pages, and the thread
/// copies what is in the WAL (PASSIVE: it never blocks the writer or a reader) on its own
/// connection. SQLite starts the WAL over only when a writer finds it wholly copied, which
/// under continuous writes the thread alone rarely achieves; so once the WAL reaches
/// tail_frames the thread makes one more pass at once, and the first commit after it copies
/// the little that pass has not (the pages committed while it ran), after which the next
/// transaction starts the WAL over. The WAL thus stays near tail_frames pages plus one pass's
/// worth.
///
/// The thread runs kThreadNice steps nicer than the thread that constructed this: a pass is
/// never waited for, and it should not take a core from the writer.
///
/// Checkpoints decide nothing about durability: every commit has synced its WAL frames before
/// returning. Construct after the writer connection is open and in WAL mode; destroy before it
/// closes, with no transaction running on it.
class Checkpointer {
 public:
  /// `path`: the database `writer` has open. Frames are counted as SQLite's wal_hook gives them
  /// (pages in the WAL after a commit).
  Checkpointer(const std::string& path, SQLite::Database& writer, int background_frames = 1000,
               int tail_frames = 8000);
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  struct Counts {
    uint64_t background = 0;  // passes by the thread
    uint64_t tail = 0;        // passes inside a commit
  };
  Counts counts();

  /// How much nicer than the thread that constructs it the checkpointing thread runs.
  static constexpr int kThreadNice = 5;

 private:
  static int on_commit(void* self, sqlite3* db, const char* schema, int frames);
  void run();

  sqlite3* writer_;
  std::unique_ptr<SQLite::Database> own_;
  const int background_frames_;
  const int tail_frames_;

  std::mutex mu_;  // guards the flags and counts below
  std::condition_variable cv_;
  // Normal: the thread copies every background_frames new pages. Closing (the WAL reached
  // tail_frames): the thread makes one pass at once. Tail: the next commit copies the rest.
  enum class Phase { Normal, Closing, Tail };
  Phase phase_ = Phase::Normal;
  bool wanted_ = false;   // the thread has a pass to make
  bool running_ = false;  // a pass is under way (the thread's or a commit's)
  bool stopping_ = false;
  int last_frames_ = 0;  // the WAL's pages after the last commit
  int next_at_;          // the WAL's pages at which the next pass is due
  Counts counts_;
  std::thread thread_;  // last: started when everything above is ready
};

}  // namespace storage
