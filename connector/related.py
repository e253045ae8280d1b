"""Seen before: a tenant's earlier escalations most like a new one, and what fixed them.

A search, not a model call. The database's own full-text index finds the candidates:
PostgreSQL's `search_vector` (a generated tsvector, GIN-indexed) or, in embedded mode, the
SQLite FTS5 table `escalation_search` (both made in migration 0007). One lookup inside the
tenant: the same client's escalations sharing any of the new one's words (the client's rows
only, through the (tenant, client) index). Another client's look-alike is not the same
problem, so it is never "seen before"; only when the PSA names no client does the lookup span
the tenant, for escalations sharing every word of the title.

The index's own relevance picks the candidates; rank() orders them by the share of the new
escalation's words each holds, boosted for the same client and each configuration item they
share; one sharing fewer than MIN_SHARED_TERMS words and no configuration item is not kept.
Never across tenants: the lookup filters on the tenant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, scoped_session

from connector.models import Escalation

MAX_RELATED = 3
POOL = 50  # candidates each lookup returns, by the index's own relevance, for rank() to order
MAX_QUERY_TERMS = 40
SEARCH_TEXT_CHARS = 4_000  # of title, reason, description and items, as indexed
CLIENT_BOOST = 0.2
ITEM_BOOST = 0.5  # times the share of the new escalation's configuration items it shares
MIN_SHARED_TERMS = 2
RESOLUTION_CHARS = 4_000  # what is kept of a resolution

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_MARKER = re.compile(r"\[redacted: \w+\]")
# Words that say nothing about the problem; the index drops its own stop words besides.
_NOISE = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "from",
        "that",
        "this",
        "have",
        "has",
        "was",
        "were",
        "are",
        "not",
        "but",
        "all",
        "any",
        "can",
        "cannot",
        "could",
        "our",
        "your",
        "their",
        "its",
        "into",
        "out",
        "off",
        "onto",
        "when",
        "then",
        "than",
        "them",
        "they",
        "she",
        "him",
        "her",
        "his",
        "you",
        "who",
        "what",
        "which",
        "where",
        "why",
        "how",
        "also",
        "again",
        "still",
        "just",
        "only",
        "very",
        "been",
        "being",
        "will",
        "would",
        "should",
        "ticket",
        "escalated",
        "escalation",
        "escalate",
        "please",
        "help",
        "issue",
        "problem",
        "user",
        "client",
        "customer",
        "redacted",
        "none",
        "given",
    ]
)


@dataclass(frozen=True)
class Candidate:
    id: int
    text_score: float  # the index's relevance, scaled to [0, 1)
    same_client: bool
    configuration_names: tuple[str, ...]
    search_words: frozenset[str]


def words(value: str) -> list[str]:
    """The searchable words of a text, in order, each once: lower-case letters and digits,
    redaction markers and noise left out."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(_MARKER.sub(" ", value).casefold()):
        if (len(word) >= 3 or word.isdigit()) and word not in _NOISE:
            seen.setdefault(word, None)
    return list(seen)


def search_fields(snapshot: dict[str, Any]) -> tuple[str, list[str], str]:
    """(client, configuration item names, search text) from a redacted context snapshot."""
    ticket = snapshot.get("ticket") or {}
    items = [
        str(item.get("name") or "").strip()
        for item in snapshot.get("configurations") or []
        if isinstance(item, dict) and str(item.get("name") or "").strip()
    ]
    parts = [
        snapshot.get("reason") or "",
        " ".join(items),
        snapshot.get("description") or "",
    ]
    search_text = "\n".join(p for p in parts if p)[:SEARCH_TEXT_CHARS]
    return str(ticket.get("company") or "").strip(), items, search_text


def index(escalation: Escalation, snapshot: dict[str, Any]) -> None:
    """Set what the search reads on the escalation (the caller commits)."""
    company, items, search_text = search_fields(snapshot)
    escalation.company = company[:200]
    escalation.configuration_names = items[:50]
    escalation.search_text = search_text


def find(
    session: Session | scoped_session[Session], escalation: Escalation, limit: int = MAX_RELATED
) -> list[Escalation]:
    """The tenant's earlier escalations most like this one, best first, at most `limit`."""
    title_terms = words(escalation.ticket_title or "")
    terms = words(" ".join([escalation.ticket_title or "", escalation.search_text or ""]))
    terms = terms[:MAX_QUERY_TERMS]
    if not terms:
        return []
    search = _postgres if session.get_bind().dialect.name == "postgresql" else _sqlite
    params = {
        "tenant": escalation.tenant_id,
        "id": escalation.id,
        "before": escalation.received_at,
        "company": escalation.company or "",
        "pool": POOL,
    }
    candidates = {c.id: c for c in search(session, params, terms, title_terms, escalation.company)}
    ranked = rank(candidates.values(), set(terms), escalation.configuration_names or [])[:limit]
    if not ranked:
        return []
    rows = {e.id: e for e in session.query(Escalation).filter(Escalation.id.in_(ranked))}
    return [rows[i] for i in ranked if i in rows]


def rank(candidates: Iterable[Candidate], terms: set[str], items: list[str]) -> list[int]:
    """Candidate ids, best first; too thin a match is left out.

    The score is the share of the new escalation's words a candidate holds (the same in both
    databases: PostgreSQL's ranks know nothing of how rare a word is, so they only pick the
    pool), plus the boosts for the same client and each configuration item shared."""
    mine = {name.casefold() for name in items}
    scored: list[tuple[float, int]] = []
    for c in candidates:
        shared_items = len(mine & {name.casefold() for name in c.configuration_names})
        shared_words = len(terms & c.search_words)
        if shared_words < MIN_SHARED_TERMS and not shared_items:
            continue
        score = shared_words / max(len(terms), 1) + (CLIENT_BOOST if c.same_client else 0.0)
        if mine:
            score += ITEM_BOOST * shared_items / len(mine)
        scored.append((score, c.id))
    scored.sort(key=lambda pair: (-pair[0], -pair[1]))  # ties: the most recent first
    return [escalation_id for _, escalation_id in scored]


# --- the two indexes ---------------------------------------------------------------------

_COLUMNS = "e.id, e.company, e.configuration_names, e.ticket_title, e.search_text"
_SCOPE = "e.tenant_id = :tenant AND e.id <> :id AND e.received_at <= :before"


def _candidate(row: Any, score: float, company: str) -> Candidate:
    names = row.configuration_names
    if isinstance(names, str):  # SQLite hands JSON back as text through raw SQL
        names = json.loads(names or "[]")
    return Candidate(
        id=row.id,
        text_score=score,
        same_client=bool(company) and row.company == company,
        configuration_names=tuple(names or ()),
        search_words=frozenset(words(f"{row.ticket_title} {row.search_text}")),
    )


def _postgres(
    session: Session | scoped_session[Session],
    params: dict[str, Any],
    terms: list[str],
    title: list[str],
    company: str,
) -> list[Candidate]:
    # Words are letters and digits only, so joining them makes a valid tsquery.
    if company:
        lookups = [("|".join(terms), "AND e.company = :company")]
    else:
        lookups = [("&".join(title), "")] if title else []
    found: list[Candidate] = []
    for query, narrower in lookups:
        rows = session.execute(
            text(
                f"SELECT {_COLUMNS}, ts_rank(e.search_vector, q, 32) AS score "
                "FROM escalations e, to_tsquery('english', :query) q "
                f"WHERE {_SCOPE} {narrower} AND e.search_vector @@ q "
                "ORDER BY score DESC, e.id DESC LIMIT :pool"
            ),
            {**params, "query": query},
        )
        found.extend(_candidate(row, float(row.score), company) for row in rows)
    return found


def _sqlite(
    session: Session | scoped_session[Session],
    params: dict[str, Any],
    terms: list[str],
    title: list[str],
    company: str,
) -> list[Candidate]:
    def quoted(group: list[str]) -> list[str]:
        return ['"' + word.replace('"', "") + '"' for word in group]

    if company:
        lookups = [(" OR ".join(quoted(terms)), "AND e.company = :company")]
    else:
        lookups = [(" AND ".join(quoted(title)), "")] if title else []
    found: list[Candidate] = []
    for query, narrower in lookups:
        rows = session.execute(
            text(
                f"SELECT {_COLUMNS}, -bm25(escalation_search, 2.0, 1.0) AS score "
                "FROM escalation_search JOIN escalations e ON e.id = escalation_search.rowid "
                f"WHERE escalation_search MATCH :query AND {_SCOPE} {narrower} "
                "ORDER BY score DESC, e.id DESC LIMIT :pool"
            ),
            {**params, "query": query},
        )
        # bm25 grows without bound; scaled like PostgreSQL's normalisation 32: s / (s + 1).
        found.extend(
            _candidate(row, max(row.score, 0.0) / (max(row.score, 0.0) + 1), company)
            for row in rows
        )
    return found


def view(earlier: Escalation) -> dict[str, Any]:
    """What is kept, shown and sent of an earlier escalation (all of it redacted already)."""
    return {
        "escalation_id": earlier.id,
        "ticket_number": earlier.ticket_number,
        "ticket_id": earlier.ticket_id,
        "title": earlier.ticket_title,
        "company": earlier.company,
        "url": earlier.ticket_url,
        "received_at": _iso(earlier.received_at),
        "resolution": earlier.resolution or "",
        "resolved_by": earlier.resolved_by or "",
        "resolved_at": _iso(earlier.resolved_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
