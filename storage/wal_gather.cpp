#include "storage/wal_gather.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <new>
#include <stdexcept>

namespace storage {

namespace {
// Gathered bytes are written once they pass this, so a long transaction holds little memory.
constexpr size_t kWriteAt = 1 << 20;
struct File;
}  // namespace

struct WalGatherState {
  std::string name;
  sqlite3_vfs* inner = nullptr;  // the default VFS, which does the work
  sqlite3_vfs vfs{};             // the inner one with xOpen and szOsFile of ours
  sqlite3_io_methods methods{};  // of every file opened through vfs
  File* wal = nullptr;           // the connection's WAL file while it is open
};

namespace {

// What SQLite allocates szOsFile bytes for: this, then the inner VFS's own file object.
struct File {
  sqlite3_file base;  // first: SQLite sees a File as its sqlite3_file
  sqlite3_file* real = nullptr;
  WalGatherState* state = nullptr;
  bool wal = false;
  std::string gathered;  // bytes not yet written, for offsets [at, at + size)
  sqlite3_int64 gathered_at = 0;
};

constexpr size_t kFileSize = (sizeof(File) + 7) / 8 * 8;

File* as_file(sqlite3_file* f) {
  return reinterpret_cast<File*>(f);
}
sqlite3_file* real(sqlite3_file* f) {
  return as_file(f)->real;
}
const sqlite3_io_methods& io(sqlite3_file* f) {
  return *real(f)->pMethods;
}
sqlite3_vfs* inner(sqlite3_vfs* vfs) {
  return static_cast<WalGatherState*>(vfs->pAppData)->inner;
}

// Writes what was gathered, in pieces the inner VFS takes: the unix VFS writes at most 128 KiB
// in one call (it masks the length to 17 bits; SQLite itself never writes more than a 64 KiB
// page at once). On failure the rest stays gathered: the next flush tries again, and the
// caller reports the error to SQLite as its own.
int flush(File* f) {
  constexpr size_t kPiece = 64 * 1024;
  std::string& g = f->gathered;
  size_t done = 0;
  int rc = SQLITE_OK;
  while (done < g.size() && rc == SQLITE_OK) {
    const size_t n = std::min(kPiece, g.size() - done);
    rc = f->real->pMethods->xWrite(f->real, g.data() + done, static_cast<int>(n),
                                   f->gathered_at + static_cast<sqlite3_int64>(done));
    if (rc == SQLITE_OK) done += n;
  }
  g.erase(0, done);  // keeps its capacity for the next group
  f->gathered_at += static_cast<sqlite3_int64>(done);
  return rc;
}

int flushed(sqlite3_file* f) {
  return as_file(f)->wal ? flush(as_file(f)) : SQLITE_OK;
}

int x_close(sqlite3_file* f) {
  File* file = as_file(f);
  const int rc = flushed(f);
  const int closed = io(f).xClose(file->real);
  if (file->state->wal == file) file->state->wal = nullptr;
  file->~File();
  return rc != SQLITE_OK ? rc : closed;
}

int x_read(sqlite3_file* f, void* out, int n, sqlite3_int64 at) {
  if (const int rc = flushed(f); rc != SQLITE_OK) return rc;
  return io(f).xRead(real(f), out, n, at);
}

int x_write(sqlite3_file* f, const void* data, int n, sqlite3_int64 at) {
  File* file = as_file(f);
  if (!file->wal) return io(f).xWrite(file->real, data, n, at);
  std::string& g = file->gathered;
  if (!g.empty() && at != file->gathered_at + static_cast<sqlite3_int64>(g.size()))
    if (const int rc = flush(file); rc != SQLITE_OK) return rc;
  if (g.empty()) file->gathered_at = at;
  try {
    g.append(static_cast<const char*>(data), static_cast<size_t>(n));
  } catch (const std::bad_alloc&) {
    return SQLITE_NOMEM;
  }
  return g.size() >= kWriteAt ? flush(file) : SQLITE_OK;
}

int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (const int rc = flushed(f); rc != SQLITE_OK) return rc;
  return io(f).xTruncate(real(f), size);
}

int x_sync(sqlite3_file* f, int flags) {
  if (const int rc = flushed(f); rc != SQLITE_OK) return rc;
  return io(f).xSync(real(f), flags);
}

int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
  if (const int rc = flushed(f); rc != SQLITE_OK) return rc;
  return io(f).xFileSize(real(f), size);
}

int x_lock(sqlite3_file* f, int level) {
  return io(f).xLock(real(f), level);
}
int x_unlock(sqlite3_file* f, int level) {
  return io(f).xUnlock(real(f), level);
}
int x_check_reserved(sqlite3_file* f, int* out) {
  return io(f).xCheckReservedLock(real(f), out);
}

int x_file_control(sqlite3_file* f, int op, void* arg) {
  if (const int rc = flushed(f); rc != SQLITE_OK) return rc;
  return io(f).xFileControl(real(f), op, arg);
}

int x_sector_size(sqlite3_file* f) {
  return io(f).xSectorSize(real(f));
}
int x_device(sqlite3_file* f) {
  return io(f).xDeviceCharacteristics(real(f));
}

int x_shm_map(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
  return io(f).xShmMap(real(f), page, size, extend, out);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return io(f).xShmLock(real(f), offset, n, flags);
}
// SQLite calls this on the database file between the two copies of the WAL index header it
// writes to publish new frames: those frames must be in the file before the second copy.
// With synchronous=FULL the sync before it has already written them. The barrier cannot fail:
// if writing fails here the bytes stay gathered and the next sync or read reports the error.
void x_shm_barrier(sqlite3_file* f) {
  if (File* wal = as_file(f)->state->wal) (void)flush(wal);
  io(f).xShmBarrier(real(f));
}
int x_shm_unmap(sqlite3_file* f, int del) {
  return io(f).xShmUnmap(real(f), del);
}
int x_fetch(sqlite3_file* f, sqlite3_int64 at, int n, void** out) {
  if (const int rc = flushed(f); rc != SQLITE_OK) return rc;
  return io(f).xFetch(real(f), at, n, out);
}
int x_unfetch(sqlite3_file* f, sqlite3_int64 at, void* p) {
  return io(f).xUnfetch(real(f), at, p);
}

int x_open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* state = static_cast<WalGatherState*>(vfs->pAppData);
  File* file = new (f) File{};
  file->base.pMethods = nullptr;
  file->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + kFileSize);
  file->state = state;
  file->wal = (flags & SQLITE_OPEN_WAL) != 0;
  const int rc = state->inner->xOpen(state->inner, name, file->real, flags, out_flags);
  if (rc != SQLITE_OK || file->real->pMethods == nullptr ||
      file->real->pMethods->iVersion < state->methods.iVersion) {
    if (rc == SQLITE_OK && file->real->pMethods) file->real->pMethods->xClose(file->real);
    file->~File();
    f->pMethods = nullptr;
    return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
  }
  if (file->wal) state->wal = file;
  f->pMethods = &state->methods;
  return SQLITE_OK;
}

}  // namespace

WalWriteGather::WalWriteGather() : state_(std::make_unique<WalGatherState>()) {
  WalGatherState& s = *state_;
  s.inner = sqlite3_vfs_find(nullptr);
  if (s.inner == nullptr) throw std::runtime_error("SQLite has no default VFS");
  char name[48];
  std::snprintf(name, sizeof name, "bangfu-wal-gather-%p", static_cast<void*>(&s));
  s.name = name;

  s.methods.iVersion = 3;
  s.methods.xClose = x_close;
  s.methods.xRead = x_read;
  s.methods.xWrite = x_write;
  s.methods.xTruncate = x_truncate;
  s.methods.xSync = x_sync;
  s.methods.xFileSize = x_file_size;
  s.methods.xLock = x_lock;
  s.methods.xUnlock = x_unlock;
  s.methods.xCheckReservedLock = x_check_reserved;
  s.methods.xFileControl = x_file_control;
  s.methods.xSectorSize = x_sector_size;
  s.methods.xDeviceCharacteristics = x_device;
  s.methods.xShmMap = x_shm_map;
  s.methods.xShmLock = x_shm_lock;
  s.methods.xShmBarrier = x_shm_barrier;
  s.methods.xShmUnmap = x_shm_unmap;
  s.methods.xFetch = x_fetch;
  s.methods.xUnfetch = x_unfetch;

  // Everything but opening files is the inner VFS's, called with the inner VFS.
  sqlite3_vfs& v = s.vfs;
  v.iVersion = 3;
  v.szOsFile = static_cast<int>(kFileSize) + s.inner->szOsFile;
  v.mxPathname = s.inner->mxPathname;
  v.zName = s.name.c_str();
  v.pAppData = &s;
  v.xOpen = x_open;
  v.xDelete = [](sqlite3_vfs* vfs, const char* path, int sync) {
    return inner(vfs)->xDelete(inner(vfs), path, sync);
  };
  v.xAccess = [](sqlite3_vfs* vfs, const char* path, int flags, int* out) {
    return inner(vfs)->xAccess(inner(vfs), path, flags, out);
  };
  v.xFullPathname = [](sqlite3_vfs* vfs, const char* path, int n, char* out) {
    return inner(vfs)->xFullPathname(inner(vfs), path, n, out);
  };
  v.xDlOpen = [](sqlite3_vfs* vfs, const char* path) {
    return inner(vfs)->xDlOpen(inner(vfs), path);
  };
  v.xDlError = [](sqlite3_vfs* vfs, int n, char* out) { inner(vfs)->xDlError(inner(vfs), n, out); };
  v.xDlSym = [](sqlite3_vfs* vfs, void* handle, const char* symbol) {
    return inner(vfs)->xDlSym(inner(vfs), handle, symbol);
  };
  v.xDlClose = [](sqlite3_vfs* vfs, void* handle) { inner(vfs)->xDlClose(inner(vfs), handle); };
  v.xRandomness = [](sqlite3_vfs* vfs, int n, char* out) {
    return inner(vfs)->xRandomness(inner(vfs), n, out);
  };
  v.xSleep = [](sqlite3_vfs* vfs, int us) { return inner(vfs)->xSleep(inner(vfs), us); };
  v.xCurrentTime = [](sqlite3_vfs* vfs, double* out) {
    return inner(vfs)->xCurrentTime(inner(vfs), out);
  };
  v.xGetLastError = [](sqlite3_vfs* vfs, int n, char* out) {
    return inner(vfs)->xGetLastError(inner(vfs), n, out);
  };
  v.xCurrentTimeInt64 = [](sqlite3_vfs* vfs, sqlite3_int64* out) {
    return inner(vfs)->xCurrentTimeInt64(inner(vfs), out);
  };
  v.xSetSystemCall = [](sqlite3_vfs* vfs, const char* call, sqlite3_syscall_ptr p) {
    return inner(vfs)->xSetSystemCall(inner(vfs), call, p);
  };
  v.xGetSystemCall = [](sqlite3_vfs* vfs, const char* call) {
    return inner(vfs)->xGetSystemCall(inner(vfs), call);
  };
  v.xNextSystemCall = [](sqlite3_vfs* vfs, const char* call) {
    return inner(vfs)->xNextSystemCall(inner(vfs), call);
  };
  if (s.inner->iVersion < 3)
    throw std::runtime_error("SQLite's default VFS is older than version 3");
  if (const int rc = sqlite3_vfs_register(&v, 0); rc != SQLITE_OK)
    throw std::runtime_error(std::string("cannot register the WAL VFS: ") + sqlite3_errstr(rc));
}

WalWriteGather::~WalWriteGather() {
  sqlite3_vfs_unregister(&state_->vfs);
}

const std::string& WalWriteGather::name() const {
  return state_->name;
}

}  // namespace storage
