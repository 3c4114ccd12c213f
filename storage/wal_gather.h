#pragma once

#include <memory>
#include <string>

namespace storage {

struct WalGatherState;

/// A SQLite VFS for one connection, over the default one, that gathers the writes SQLite makes
/// to the connection's WAL file into one system call.
///
/// SQLite appends each frame in two writes (its 24-byte header, then the page), so a group
/// commit of a dozen check-ins made some 85 pwrite calls, each a pass through the file
/// system's per-page code for a page and a piece of the next (BENCHMARKS.md §9). Here writes
/// that continue one another are kept in memory and written as one when SQLite syncs the WAL,
/// publishes new frames to other connections (the barrier on the database file's shared
/// memory, after which readers may look at them), reads it, truncates it, asks its size or
/// closes it, or when 1 MiB has gathered. A write elsewhere in the file first writes what was
/// gathered. So at every sync, and before any other connection can read a frame, the file
/// holds exactly what it would hold without this. Other files (the database, temporary files)
/// go straight through.
///
/// Registered under a name of its own on construction and unregistered on destruction: open
/// one connection with name(), and destroy this only after that connection is closed.
class WalWriteGather {
 public:
  WalWriteGather();
  ~WalWriteGather();
  WalWriteGather(const WalWriteGather&) = delete;
  WalWriteGather& operator=(const WalWriteGather&) = delete;

  /// The VFS name to pass to sqlite3_open_v2 (SQLite::Database's last argument).
  const std::string& name() const;

 private:
  std::unique_ptr<WalGatherState> state_;
};

}  // namespace storage
