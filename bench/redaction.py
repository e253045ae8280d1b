"""Redaction: recall and facts kept on the evaluation set, and the time to redact big tickets.

    .venv/bin/python bench/redaction.py [--runs 15] [--failures]

Quality: every line of tests/redaction/eval_lines.jsonl (362 lines written for this set in the
seven handoff languages, none from the corpus) goes through `connector.redaction.redact`. A
secret line passes when no more than half of its secret survives anywhere in the result; a fact
line passes when it comes through unchanged. Printed per kind and per language, for the part
the rules were tuned on and the held-out part separately.

Speed: the median of --runs calls (after one warm-up) on the corpus's longest ticket (its
description and every note joined, as context building redacts them) and on a 500-note ticket
(the corpus's own 562 notes, secrets included, taken in order and joined), in wall-clock and in
this process's CPU time.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _harness import header, ms, verdict

from connector.redaction import redact
from tests.corpus import load_corpus
from tests.redaction.eval_set import load_eval_lines
from tests.redaction.scoring import Tally, score

RECALL, FACTS_KEPT, FIVE_HUNDRED_NOTES_SECONDS = 0.99, 0.99, 0.020


def ticket_text(row: dict) -> str:
    return "\n\n".join([row.get("description", ""), *(n["text"] for n in row["notes"])])


def timed(text: str, runs: int) -> tuple[float, float]:
    redact(text)
    wall, cpu = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        redact(text)
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def table(title: str, tallies: dict[tuple[str, str], Tally]) -> None:
    print(f"\n{title}")
    print(f"  {'':24} {'recall':>16} {'facts kept':>16}")
    keys = sorted({key for _, key in tallies})
    for key in keys:
        cells = []
        for label in ("secret", "fact"):
            t = tallies.get((label, key))
            cells.append(f"{t.passed}/{t.total} {100 * t.rate:5.1f}%" if t else "-")
        print(f"  {key:24} {cells[0]:>16} {cells[1]:>16}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--failures", action="store_true", help="list the lines that fail")
    args = parser.parse_args()
    header("redaction")

    lines = load_eval_lines()
    print(f"\nevaluation set: {len(lines)} lines")
    totals = score(lines, key=lambda line: line.split)
    for split in ("tune", "held_out", "all"):
        chosen = [line for line in lines if split == "all" or line.split == split]
        t = score(chosen)
        recall, kept = t[("secret", "all")], t[("fact", "all")]
        print(
            f"  {split:9} recall {recall.passed}/{recall.total} = {100 * recall.rate:.1f}%   "
            f"facts kept {kept.passed}/{kept.total} = {100 * kept.rate:.1f}%"
        )
    table("per kind (secrets: recall; facts: kept)", score(lines, key=lambda line: line.kind))
    table("per language", score(lines, key=lambda line: line.lang))
    for split in ("tune", "held_out"):
        table(
            f"per language, {split}",
            score([line for line in lines if line.split == split], key=lambda line: line.lang),
        )
    if args.failures:
        for (label, split), tally in sorted(totals.items()):
            print(f"  failing {label} lines, {split}: {', '.join(tally.failed) or 'none'}")

    rows = load_corpus()
    longest = max(rows, key=lambda row: len(ticket_text(row)))
    notes = [note["text"] for row in rows for note in row["notes"]]
    five_hundred = "\n\n".join(notes[:500])
    print("\nspeed (median wall / CPU)")
    wall, cpu = timed(ticket_text(longest), args.runs)
    chars = len(ticket_text(longest))
    print(f"  longest corpus ticket ({longest['id']}, {chars:,} chars): {ms(wall)} / {ms(cpu)}")
    wall, cpu = timed(five_hundred, args.runs)
    print(f"  500-note ticket ({len(five_hundred):,} chars): {ms(wall)} / {ms(cpu)}")

    overall = score(lines)
    recall, kept = overall[("secret", "all")].rate, overall[("fact", "all")].rate
    print("\ntargets")
    print(f"  recall >= {RECALL:.0%}: {100 * recall:.1f}% {verdict(recall >= RECALL)}")
    print(f"  facts kept >= {FACTS_KEPT:.0%}: {100 * kept:.1f}% {verdict(kept >= FACTS_KEPT)}")
    met = wall < FIVE_HUNDRED_NOTES_SECONDS
    print(f"  500-note ticket < {ms(FIVE_HUNDRED_NOTES_SECONDS)}: {ms(wall)} {verdict(met)}")


if __name__ == "__main__":
    main()
