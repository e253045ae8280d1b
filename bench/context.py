"""Context: prompt tokens and build time against ticket size, 1 to 500 notes.

    .venv/bin/python bench/context.py [--sizes 1,10,50,100,250,500] [--runs 9]

Each ticket is a corpus ticket (its header, description, configuration items and time
entries) with N notes of realistic lengths: the corpus's own notes (562 across the 40
tickets, with their authors, internal flags and secrets), taken in order and cycled, ten
minutes apart. `connector.context.build_source` redacts and fits them to the 12,000-token
budget; the time is the median of --runs builds (after one warm-up build), in wall-clock time
and in this process's CPU time (which other processes' load does not inflate).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from _harness import header, ms, verdict

from adapters.base import TicketContext
from connector.context import DEFAULT_BUDGET_TOKENS, SourceMaterial, build_source
from tests.corpus import corpus_context, load_corpus

TARGET_SECONDS = 0.050
T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


def ticket_with(notes: int) -> tuple[TicketContext, str, str]:
    rows = load_corpus()
    base = max(rows, key=lambda r: len(r.get("description", "")))  # the longest description
    pool = [note for row in rows for note in corpus_context(row).notes]
    chosen = [
        replace(pool[i % len(pool)], id=str(900_000 + i), created_at=T0 + timedelta(minutes=10 * i))
        for i in range(notes)
    ]
    context = replace(corpus_context(base), notes=tuple(chosen))
    return context, base.get("escalation_reason", ""), base.get("escalated_by", "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,10,50,100,250,500")
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    header("bench/context: prompt tokens and build time against ticket size")
    print(f"budget {DEFAULT_BUDGET_TOKENS:,} tokens; median of {args.runs} builds per size")
    print(
        f"{'notes':>6} {'note chars':>11} {'tokens':>7} {'whole':>6} {'short':>6} "
        f"{'omitted':>7} {'median':>9} {'max':>9} {'CPU median':>10}"
    )
    held, slowest, slowest_cpu = True, 0.0, 0.0
    for size in sizes:
        context, reason, escalated_by = ticket_with(size)

        def build(
            context: TicketContext = context, reason: str = reason, by: str = escalated_by
        ) -> SourceMaterial:
            return build_source(
                context, reason=reason, escalated_by=by, budget_tokens=DEFAULT_BUDGET_TOKENS
            )

        material = build()  # warm-up (regex compilation, caches)
        times, cpu = [], []
        for _ in range(args.runs):
            started, used = time.perf_counter(), time.process_time()
            material = build()
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - used)
        snapshot, tokens = material.snapshot, material.tokens
        notes = snapshot["notes"]
        shortened = sum(1 for n in notes if n["shortened"])
        held &= tokens <= DEFAULT_BUDGET_TOKENS
        median = statistics.median(times)
        if size == max(sizes):
            slowest, slowest_cpu = median, statistics.median(cpu)
        print(
            f"{size:>6} {sum(len(n.text) for n in context.notes):>11,} {tokens:>7,} "
            f"{len(notes) - shortened:>6} {shortened:>6} {snapshot['omitted_notes']:>7} "
            f"{ms(median):>9} {ms(max(times)):>9} {ms(statistics.median(cpu)):>10}"
        )
    print("-- against the targets")
    print(f"   budget of {DEFAULT_BUDGET_TOKENS:,} tokens holds at every size -> {verdict(held)}")
    print(
        f"   build time for {max(sizes)} notes < {ms(TARGET_SECONDS)}: median {ms(slowest)} -> "
        f"{verdict(slowest < TARGET_SECONDS)} (CPU time {ms(slowest_cpu)}: wall time above it "
        f"is other processes' load)"
    )


if __name__ == "__main__":
    main()
