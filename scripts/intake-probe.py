#!/usr/bin/env python3
"""What an append-only intake log's sync would cost beside the hub's SQLite I/O.

Appends 11 KB (ten 1.1 KB messages) and fdatasyncs it every 2 ms, as an intake log would at
5,000 messages/s, and prints the latency of each append+sync (percentiles, worst per second).
Run it alone, then while `vigil bench ingest --devices 500 --seconds 20 --readings 10 --rate 10`
loads the disk (docs/performance.md, session 7).
Usage: scripts/intake-probe.py FILE SECONDS
"""

import os
import sys
import time


def main():
    path, seconds = sys.argv[1], float(sys.argv[2])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    payload = os.urandom(10 * 1100)
    latencies, worst = [], {}
    start = time.monotonic()
    due = start
    while time.monotonic() - start < seconds:
        began = time.monotonic()
        os.write(fd, payload)
        os.fdatasync(fd)
        took = (time.monotonic() - began) * 1000
        latencies.append(took)
        second = int(began - start)
        worst[second] = max(worst.get(second, 0.0), took)
        due += 0.002
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            due = time.monotonic()
    os.close(fd)
    os.remove(path)
    latencies.sort()

    def at(q):
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    print(f"{len(latencies)} syncs: p50 {at(0.5):.2f} ms, p99 {at(0.99):.2f} ms, "
          f"p99.9 {at(0.999):.2f} ms, max {latencies[-1]:.1f} ms")
    print("worst per second (ms):", " ".join(f"{worst[s]:.0f}" for s in sorted(worst)))


if __name__ == "__main__":
    main()
