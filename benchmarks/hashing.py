"""Which hash for the blob store: BLAKE3 or SHA-256? Throughput on large and small inputs.

    python3 benchmarks/hashing.py [--mib 256] [--repeat 5]

Prints MB/s for one large buffer and the time for 10,000 buffers of 10 KB (the shape of a
folder of small files), median of the repetitions.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import time
from collections.abc import Callable

import blake3


def _median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="size of the large buffer")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    big = os.urandom(args.mib * 2**20)
    small = [os.urandom(10 * 1024) for _ in range(10_000)]
    hashes: dict[str, Callable[[bytes], str]] = {
        "sha256": lambda data: hashlib.sha256(data).hexdigest(),
        "blake3 (1 thread)": lambda data: blake3.blake3(data).hexdigest(),
    }
    print(f"{'hash':<20} {'large, MB/s':>12} {'10k x 10 KB, ms':>16}")
    for name, fn in hashes.items():
        large = _median_seconds(lambda fn=fn: fn(big), args.repeat)
        many = _median_seconds(lambda fn=fn: [fn(b) for b in small], args.repeat)
        print(f"{name:<20} {args.mib * 1.048576 / large:>12,.0f} {many * 1000:>16.1f}")


if __name__ == "__main__":
    main()
