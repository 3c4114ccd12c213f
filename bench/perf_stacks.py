#!/usr/bin/env python3
"""Per-request CPU breakdown by thread and by stage, from whole call stacks.

usage: perf script -i PERF_DATA -F comm,tid,ip,sym,dso > stacks.txt
       bench/perf_stacks.py stacks.txt US_PER_REQUEST

For a profile taken with DWARF call graphs of a build with symbols (RelWithDebInfo), e.g.
`perf record --call-graph dwarf,32768 -F 1000 -p PID -- sleep 3` during a compare round
(BENCHMARKS.md §9). Unlike bench/perf_breakdown.py, which sorts a Release build's samples by
the function that spent them, each sample here goes to the first stage (in the order below)
whose pattern matches any frame of its stack: a memcpy inside SQLite's insert counts as
SQLite's, a sendmsg as the answer's write. Shares are of all the server's samples; microseconds
are the share times US_PER_REQUEST (the server's CPU per request in the same round).
"""
import collections
import re
import sys

# (thread group, regex on the thread name)
THREADS = [
    ("writer", r"^bangfu-writer$"),
    ("event loops", r"^bangfu(-io)?$"),
    ("checkpoint", r"^bangfu-ckpt$"),
    ("log batches", r"^bangfu-log$"),
]

# (stage, regex on one frame's symbol), first match over the stage list wins.
STAGES = [
    ("WAL fsync (fdatasync)", r"fdatasync"),
    ("SQLite file reads (pread)", r"pread"),
    ("checkpoint: copying the WAL back", r"sqlite3_wal_checkpoint"),
    ("commit: WAL frames and their write", r"sqlite3VdbeHalt|sqlite3WalFrames|x_sync|x_write"),
    ("check-in rows and their indexes (add_checkin)", r"Tx::add_checkin|correct_checkin"),
    ("the month's count for the reply (counted_visits)", r"Tx::counted_visits"),
    ("the raw message: insert, then its reply (save_inbound, set_reply)",
     r"Tx::save_inbound|Tx::set_reply|Tx::set_failed"),
    ("the reply's template (mustache)", r"Templates::render|mustache"),
    ("other SQLite (savepoints, BEGIN, problems, reads)", r"sqlite3|SQLite::"),
    ("understanding the text", r"handlers::understand|parse_correction|parse_problem_command|"
                               r"handlers::normalize"),
    ("signature (SHA-1)", r"SHA1|sha1|EVP_Digest"),
    ("AES decrypt / encrypt", r"EVP_Cipher|EVP_Decrypt|EVP_Encrypt|aes|AES"),
    ("base64", r"EVP_Decode|EVP_Encode|base64"),
    ("JSON", r"boost::json|nlohmann|json::"),
    ("roster lookup (roster_of)", r"roster_of"),
    ("logging", r"bot::(Stream)?Logger::"),
    ("socket write (sendmsg, the answer)", r"sendmsg|writev|__x64_sys_write"),
    ("socket read (recvmsg)", r"recvmsg|readv|__x64_sys_read"),
    ("HTTP parsing (Beast)", r"basic_parser"),
    ("waiting for events (epoll_wait)", r"epoll_wait"),
    ("thread hand-offs (futex, condition variables)", r"futex|pthread_cond|condition_variable"),
    ("kernel: context switches, interrupts",
     r"^__?schedule$|finish_task_switch|asm_common_interrupt|handle_softirqs|irq_exit"),
    # Every event-loop sample has bot::http::Server::run below it: this takes what is left of
    # theirs, allocations included, so the stage after it counts only the other threads'.
    ("the loops' remaining work (Beast, Asio, the callback's glue, their allocations)",
     r"^bot::|boost::beast|boost::asio"),
    ("memory (malloc, free, copies)", r"malloc|free|tc_|operator new|operator delete|memcpy|memmove"),
]


def samples(path):
    comm, frames = None, []
    for line in open(path, errors="replace"):
        if not line.strip():
            if comm is not None:
                yield comm, frames
            comm, frames = None, []
        elif not line[0].isspace():
            comm, frames = line.split()[0], []
        else:
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                frames.append(re.sub(r"\s+\([^)]*\)$", "", parts[1]))
    if comm is not None:
        yield comm, frames


def main():
    path, us = sys.argv[1], float(sys.argv[2])
    per = collections.defaultdict(collections.Counter)
    total = 0
    compiled = [(name, re.compile(rx)) for name, rx in STAGES]
    for comm, frames in samples(path):
        group = next((g for g, rx in THREADS if re.search(rx, comm)), "other threads")
        stage = next((n for n, rx in compiled if any(rx.search(f) for f in frames)), "other")
        per[group][stage] += 1
        total += 1
    print(f"{total} samples; {us:.1f} us per request")
    for group, _ in THREADS + [("other threads", "")]:
        stages = per.get(group)
        if not stages:
            continue
        n = sum(stages.values())
        print(f"\n{group}: {100 * n / total:.1f}% · {us * n / total:.1f} us/req")
        for stage, k in stages.most_common():
            if 100 * k / total >= 0.1:
                print(f"  {100 * k / total:5.1f}% {us * k / total:6.1f}  {stage}")


if __name__ == "__main__":
    main()
