#!/usr/bin/env python3
"""Per-request CPU breakdown of a `perf record -g` profile of the server (bench/compare.sh PERF=1).

usage: bench/perf_breakdown.py PERF_DATA US_PER_REQUEST

User-space time is bucketed by the symbol (and library) that spent it, self time only, since a
Release build has no frame pointers; kernel time by the system call it was spent in, inclusive,
from the kernel's own call chains. Each bucket is printed as a share of the server's samples and
as microseconds per request (the share times US_PER_REQUEST, measured by compare.sh).
"""
import re
import subprocess
import sys

perf_data, us_per_req = sys.argv[1], float(sys.argv[2])


def report(*args):
    out = subprocess.run(["perf", "report", "-i", perf_data, "--stdio", "-g", "none", *args],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(?:([\d.]+)%\s+)?(\S+)\s+\[(.)\]\s+(.*)$", line)
        if m:
            rows.append((float(m.group(1)), float(m.group(2) or 0), m.group(3), m.group(4),
                         m.group(5).strip()))
    return rows

USER = [  # (bucket, regex on "dso symbol"), first match wins
    ("SQLite (user)", r"libsqlite3|sqlite3"),
    ("crypto: signature SHA-1, AES (OpenSSL)", r"libcrypto|sha1|aes|EVP_"),
    ("JSON (Boost.JSON on the callback since 2026-12-06, nlohmann elsewhere)", r"nlohmann|json"),
    ("understanding (handlers)", r"handlers::|understand|keyword|chinese_date"),
    ("templates (mustache)", r"mustache"),
    ("HTTP parsing and I/O code (httplib / Beast / Asio)", r"httplib|beast|asio"),
    ("logging", r"Logger|ostream|ostream_insert|locale"),
    ("malloc / free / memcpy / strings (tcmalloc, libc, libstdc++)",
     r"libtcmalloc|libc\.so|libstdc\+\+|malloc|free|memcpy|memmove|strlen"),
]
KERNEL = [  # (bucket, syscall entry), inclusive
    ("kernel: fsync (group commit)", "__x64_sys_fdatasync"),
    ("kernel: SQLite file writes (pwrite)", "__x64_sys_pwrite64"),
    ("kernel: network send", "__x64_sys_sendto"),
    ("kernel: network send (write/writev)", "__x64_sys_writev"),
    ("kernel: network receive", "__x64_sys_recvfrom"),
    ("kernel: network receive (read)", "__x64_sys_read"),
    ("kernel: log writes (write)", "__x64_sys_write"),
    ("kernel: poll / epoll", "__x64_sys_poll"),
    ("kernel: epoll_wait", "__x64_sys_epoll_wait"),
    ("kernel: thread hand-offs (futex wait/wake)", "__x64_sys_futex"),
    ("kernel: accept/other", "__x64_sys_accept4"),
    # Kernel 6.x names the socket calls Asio makes (sendmsg/recvmsg) and write() by their inner
    # functions; page faults and madvise are the allocator's (glibc trimming, then refaulting).
    ("kernel: network send (sendmsg)", "__sys_sendmsg"),
    ("kernel: network receive (recvmsg)", "__sys_recvmsg"),
    ("kernel: log writes (ksys_write)", "ksys_write"),
    ("kernel: SQLite file reads (pread)", "__x64_sys_pread64"),
    ("kernel: madvise (malloc trimming)", "__x64_sys_madvise"),
    ("kernel: page faults", "asm_exc_page_fault"),
]

self_rows = report("--no-children", "--sort", "dso,sym")
buckets = {name: 0.0 for name, _ in USER}
kernel_self = 0.0
other = 0.0
for pct, _, dso, kind, sym in self_rows:
    if kind == "k":
        kernel_self += pct
        continue
    key = f"{dso} {sym}"
    for name, rx in USER:
        if re.search(rx, key):
            buckets[name] += pct
            break
    else:
        other += pct
buckets["other user-space code"] = other

child_out = subprocess.run(["perf", "report", "-i", perf_data, "--stdio", "-g", "none", "--children",
                            "--sort", "sym"], capture_output=True, text=True, check=True).stdout
incl = {}
for line in child_out.splitlines():
    m = re.match(r"\s+([\d.]+)%\s+([\d.]+)%\s+\[(.)\]\s+(\S+)", line)
    if m and m.group(3) == "k":
        incl[m.group(4)] = float(m.group(1))
kernel_named = 0.0
kb = {}
for name, entry in KERNEL:
    kb[name] = incl.get(entry, 0.0)
    kernel_named += kb[name]
sched = incl.get("schedule", 0.0)

print(f"{'share':>7} {'us/req':>7}  bucket")
for name, pct in list(buckets.items()) + list(kb.items()):
    if pct >= 0.05:
        print(f"{pct:6.1f}% {pct * us_per_req / 100:7.1f}  {name}")
print(f"{kernel_self:6.1f}% {kernel_self * us_per_req / 100:7.1f}  kernel, all (self), of which the "
      f"system calls above {kernel_named:.1f}% and context switches (schedule) {sched:.1f}%")
