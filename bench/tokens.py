"""Tokens per escalation: Baton's one call (plus tone calls only when opened) against the
three-call design it replaces, over the shared corpus.

    .venv/bin/python bench/tokens.py [--client-update-share 0.5] [--email-share 0.2] [--per-ticket]

Both designs read each corpus ticket (tests/corpus.py `corpus_context`) through the same
prompt builder, `connector.context.build_source` (redacted, within the 12,000-token budget),
and every input is counted with the same `connector.context.estimate_tokens`
(ceil(characters / 3.5)): the system prompt, the user message and, for the summary's
structured output, the JSON schema sent with it.

Baton: one summary call (`connector.summary.build_request`), plus a tone rewrite
(`connector.tone.build_request`, input = the saved handoff + the tone instructions) for the
audiences opened: by default a client update for 50% of escalations and an email draft for
20%. "Ticket notes" is the saved handoff itself: no call.

The three-call design: a rich escalation package, an assessment, and a status update, EACH
summarising the whole ticket: the same build_source text and system prompt, plus that call's
own instructions (below).

Output sizes are stated, not measured (there is no real model here): see OUTPUT_TOKENS.
Thinking tokens are left out of both designs; counting them would add a similar amount per
call, which only widens the gap (one call against three).
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass
from typing import Any

from _harness import header, verdict

from connector import summary, tone
from connector.config import DEFAULT_PRICES, DEFAULT_SUMMARY_MODEL, DEFAULT_TONE_MODEL
from connector.context import DEFAULT_BUDGET_TOKENS, build_source, estimate_tokens
from connector.models import Handoff
from tests.corpus import corpus_context, load_corpus

TARGET_REDUCTION = 0.65

# What the three calls of the old design asked for, each over the whole ticket.
OLD_INSTRUCTIONS = {
    "escalation package": (
        "Write a complete escalation package for the senior technician: a problem statement, "
        "the affected users, devices and services, a timeline of everything that was tried "
        "and what each attempt showed, the evidence gathered so far, open questions, risks, "
        "and recommended next steps in order."
    ),
    "assessment": (
        "Assess this escalation: the most likely root cause and the alternatives, your "
        "confidence in each, the business impact and severity, and whether it needs a "
        "specialist or a vendor. Be specific and cite the facts from the ticket."
    ),
    "status update": (
        "Write a short status update for the client about this ticket in plain words: what "
        "happened, what we are doing next, and whether they need to do anything. At most "
        "about 120 words, no greeting, no signature."
    ),
}

# Stated output sizes (tokens). A handoff at its schema's upper bound is ~1,000 tokens of
# JSON (see saved_handoff); the old package is at least that; an assessment half of it; a
# status update or client update ~120 words; an email draft a little more.
OUTPUT_TOKENS = {
    "summary": 1000,
    "tone:client_update": 200,
    "tone:email_draft": 300,
    "escalation package": 1000,
    "assessment": 500,
    "status update": 200,
}


def request_input_tokens(request: dict[str, Any]) -> int:
    """The system prompt, every message's text and a structured output's schema."""
    tokens = estimate_tokens(str(request.get("system") or ""))
    for message in request["messages"]:
        tokens += estimate_tokens(str(message["content"]))
    schema = ((request.get("output_config") or {}).get("format") or {}).get("schema")
    if schema is not None:
        tokens += estimate_tokens(json.dumps(schema))
    return tokens


def saved_handoff() -> Handoff:
    """The handoff a tone call rewrites, at the upper bound of what the summary may return:
    1,200 characters of prose, 8 facts, a cause and 5 steps (an upper bound, so Baton's tone
    calls are counted at their most expensive)."""
    return Handoff(
        summary_prose="x" * 1200,
        what_we_know=["f" * 160] * 8,
        likely_cause="c" * 300,
        suggested_steps=["s" * 100] * 5,
        confidence="medium",
    )


@dataclass
class Counted:
    ticket: int
    notes: int
    source: int  # build_source tokens
    summary_in: int  # the one summary call's input
    baton_in: float
    baton_out: float
    old_in: float
    old_out: float

    @property
    def baton(self) -> float:
        return self.baton_in + self.baton_out

    @property
    def old(self) -> float:
        return self.old_in + self.old_out


def count(row: dict[str, Any], shares: dict[str, float]) -> Counted:
    material = build_source(
        corpus_context(row),
        reason=row.get("escalation_reason"),
        escalated_by=row.get("escalated_by", ""),
        budget_tokens=DEFAULT_BUDGET_TOKENS,
    )
    one = summary.build_request(material.text, language="en", model=DEFAULT_SUMMARY_MODEL)
    summary_in = request_input_tokens(one)
    baton_in: float = summary_in
    baton_out: float = OUTPUT_TOKENS["summary"]
    handoff = saved_handoff()
    for audience, share in shares.items():
        request = tone.build_request(audience, handoff, language="en", model=DEFAULT_TONE_MODEL)
        baton_in += share * request_input_tokens(request)
        baton_out += share * OUTPUT_TOKENS[f"tone:{audience}"]

    old_in = old_out = 0
    for name, instructions in OLD_INSTRUCTIONS.items():
        request = {
            "system": summary.SYSTEM_PROMPT.format(language="English"),
            "messages": [{"role": "user", "content": material.text + "\n\n" + instructions}],
        }
        old_in += request_input_tokens(request)
        old_out += OUTPUT_TOKENS[name]
    return Counted(
        row["id"],
        len(row.get("notes", [])),
        material.tokens,
        summary_in,
        baton_in,
        baton_out,
        old_in,
        old_out,
    )


def dollars(c: Counted, shares: dict[str, float]) -> tuple[float, float]:
    """Per escalation at list prices: the summary and the three old calls on the summary
    model, tone calls on the tone model."""
    big_in, big_out = DEFAULT_PRICES[DEFAULT_SUMMARY_MODEL]
    small_in, small_out = DEFAULT_PRICES[DEFAULT_TONE_MODEL]
    tone_out = c.baton_out - OUTPUT_TOKENS["summary"]
    baton = (
        c.summary_in * big_in
        + OUTPUT_TOKENS["summary"] * big_out
        + (c.baton_in - c.summary_in) * small_in
        + tone_out * small_out
    ) / 1e6
    old = (c.old_in * big_in + c.old_out * big_out) / 1e6
    return baton, old


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--client-update-share", type=float, default=0.5)
    parser.add_argument("--email-share", type=float, default=0.2)
    parser.add_argument("--per-ticket", action="store_true", help="print one line per ticket")
    args = parser.parse_args()
    shares = {"client_update": args.client_update_share, "email_draft": args.email_share}

    header("bench/tokens: tokens per escalation, Baton against the three-call design")
    rows = load_corpus()
    counted = [count(row, shares) for row in rows]
    print(
        f"corpus: {len(rows)} escalations, {sum(c.notes for c in counted)} notes; "
        f"build_source budget {DEFAULT_BUDGET_TOKENS:,} tokens; estimate_tokens = "
        f"ceil(chars / 3.5)"
    )
    print(
        f"assumptions: client update opened for {shares['client_update']:.0%} of escalations, "
        f"email draft for {shares['email_draft']:.0%}; tone input = the saved handoff at its "
        f"upper bound + tone.build_request's instructions; outputs (tokens) {OUTPUT_TOKENS}; "
        f"thinking not counted"
    )
    if args.per_ticket:
        print(f"{'ticket':>8} {'notes':>5} {'source':>7} {'baton':>7} {'3-call':>7} {'saved':>6}")
        for c in counted:
            print(
                f"{c.ticket:>8} {c.notes:>5} {c.source:>7} {c.baton:>7.0f} {c.old:>7.0f} "
                f"{1 - c.baton / c.old:>6.1%}"
            )
    n = len(counted)
    mean = {
        "source": sum(c.source for c in counted) / n,
        "baton_in": sum(c.baton_in for c in counted) / n,
        "baton_out": sum(c.baton_out for c in counted) / n,
        "old_in": sum(c.old_in for c in counted) / n,
        "old_out": sum(c.old_out for c in counted) / n,
    }
    baton = mean["baton_in"] + mean["baton_out"]
    old = mean["old_in"] + mean["old_out"]
    reductions = [1 - c.baton / c.old for c in counted]
    print(f"-- per escalation, mean over the corpus (build_source: {mean['source']:,.0f} tokens)")
    print(
        f"   Baton (1 summary call + tone calls as opened): input {mean['baton_in']:,.0f}, "
        f"output {mean['baton_out']:,.0f}, total {baton:,.0f} tokens"
    )
    print(
        f"   three-call design (package, assessment, status update): input "
        f"{mean['old_in']:,.0f}, output {mean['old_out']:,.0f}, total {old:,.0f} tokens"
    )
    print(
        f"   reduction: {1 - baton / old:.1%} fewer tokens per escalation "
        f"(input {1 - mean['baton_in'] / mean['old_in']:.1%}, output "
        f"{1 - mean['baton_out'] / mean['old_out']:.1%}); per ticket min "
        f"{min(reductions):.1%}, median {statistics.median(reductions):.1%}, "
        f"max {max(reductions):.1%}"
    )
    bare = [count(row, dict.fromkeys(shares, 0.0)) for row in rows]
    bare_total = sum(c.baton for c in bare) / n
    one = summary.build_request("", language="en", model=DEFAULT_SUMMARY_MODEL)
    schema = one["output_config"]["format"]["schema"]
    print(
        f"   of Baton's summary call: system prompt {estimate_tokens(one['system'])}, "
        f"output schema {estimate_tokens(json.dumps(schema))}, ticket material "
        f"{mean['source']:,.0f} (mean) tokens; tone calls add "
        f"{mean['baton_in'] + mean['baton_out'] - bare_total:,.0f} tokens per escalation"
    )
    print(
        f"   with no audience opened (the summary alone): {bare_total:,.0f} tokens, "
        f"{1 - bare_total / old:.1%} fewer"
    )
    costs = [dollars(c, shares) for c in counted]
    baton_usd = sum(b for b, _ in costs) / n
    old_usd = sum(o for _, o in costs) / n
    print(
        f"   at list prices ({DEFAULT_SUMMARY_MODEL} for the summary and the three calls, "
        f"{DEFAULT_TONE_MODEL} for tone): ${baton_usd:.4f} against ${old_usd:.4f} "
        f"per escalation ({1 - baton_usd / old_usd:.1%} less)"
    )
    print("-- against the target")
    print(
        f"   >= {TARGET_REDUCTION:.0%} fewer tokens per escalation: {1 - baton / old:.1%} -> "
        f"{verdict(1 - baton / old >= TARGET_REDUCTION)}"
    )


if __name__ == "__main__":
    main()
