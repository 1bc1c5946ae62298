"""What taking turns costs in a SharedRunner: the host time of one round (every member asks
for the network once, the round runs, every member gets its rows back) with a network that
costs nothing (the tests' stub), for 1, 4, 8 and 16 members (seated threads).

    python benchmarks/bench_shared_runner.py [--rounds 300] [--repeat 3]

A round's cost should grow with the members (each takes a turn) at a constant cost per
member: a handoff wakes the next member's thread alone. The best of ``--repeat`` runs.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from stub_network import StubRunner  # noqa: E402
from ssmvos.model import ReferenceEncoding  # noqa: E402
from ssmvos.runtime import SharedRunner  # noqa: E402


def round_cost(members: int, rounds: int) -> float:
    """Seconds per round for ``members`` seated threads making ``rounds`` calls each."""
    shared = SharedRunner(StubRunner(), max_batch=64, seats=members)
    z = torch.zeros(1, 1, 1, 1)
    ref = ReferenceEncoding(z, z, z.view(1, 1, 1), z, z)
    images, masks = torch.zeros(1, 8, 8, 3, dtype=torch.uint8), torch.zeros(1, 8, 8)

    def work(seat: int) -> None:
        with shared.turn(seat) as runner:
            for _ in range(rounds):
                runner.segment(ref, images, masks)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(members)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    assert shared.stats["rounds"] == rounds and shared.stats["rows"] == rounds * members
    return seconds / rounds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}; {args.rounds} rounds, best of {args.repeat}")
    print(f"{'members':>7s} {'us per round':>13s} {'us per member':>14s}")
    for members in (1, 4, 8, 16):
        best = min(round_cost(members, args.rounds) for _ in range(args.repeat)) * 1e6
        print(f"{members:7d} {best:13.1f} {best / members:14.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
