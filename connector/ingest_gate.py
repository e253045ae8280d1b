"""One Redis round trip in front of every webhook: the tenant's rate limit, whether this
process's snapshot of the tenant is current, and, for a delivery that changes nothing, its
audit row.

Most of what a PSA sends is not an escalation; the database is not asked about those. The
script (atomic in Redis) counts the delivery in the tenant's fixed window, compares the
tenant's generation counter (connector.tenant_cache) with the snapshot's, checks the ticket
is not in the tenant's escalated index (connector.escalated_index), and only then appends
the audit row to the stream connector.delivery_audit flushes. Anything else it answers
PROCEED, and the caller takes the database path, exactly as before the gate existed; a
delivery that may enter an escalated status has its ticket added to the index on the way. A
hand-written script because no library does these checks in one round trip; the window is the
fixed window flask-limiter's default strategy counts.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache

import redis
from limits import parse

from connector import delivery_audit, escalated_index
from connector.tenant_cache import generation_key

_SCRIPT = """
-- KEYS: window, generation, escalated index, audit stream
-- ARGV: limit (0: not counted), window seconds, generation ("-": not compared),
--       ticket id ("": no ticket), audit row ("": none), ticket to index ("": none)
if ARGV[1] ~= '0' then
  local hits = redis.call('INCR', KEYS[1])
  if hits == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
  if hits > tonumber(ARGV[1]) then
    return {'limited', redis.call('TTL', KEYS[1])}
  end
end
if ARGV[3] ~= '-' then
  local generation = redis.call('GET', KEYS[2]) or ''
  if generation ~= ARGV[3] then return {'stale', 0} end
end
if ARGV[5] == '' then
  if ARGV[6] ~= '' then redis.call('SADD', KEYS[3], ARGV[6]) end
  return {'proceed', 0}
end
if ARGV[4] ~= '' then
  if redis.call('SISMEMBER', KEYS[3], '*') == 0 then return {'unindexed', 0} end
  if redis.call('SISMEMBER', KEYS[3], ARGV[4]) == 1 then return {'proceed', 0} end
end
return {'audited', redis.call('XADD', KEYS[4], '*', 'row', ARGV[5])}
"""

LIMITED, STALE, PROCEED, UNINDEXED, AUDITED = "limited", "stale", "proceed", "unindexed", "audited"


@dataclass(frozen=True)
class Verdict:
    kind: str  # one of the names above; UNINDEXED is PROCEED with the index to rebuild after
    retry_after: int = 0
    indexed: bool = False  # the ticket asked for is in the escalated index now

    @property
    def proceed(self) -> bool:
        return self.kind in (PROCEED, UNINDEXED)


@lru_cache(maxsize=16)
def _window(rate: str) -> tuple[int, int]:
    item = parse(rate)
    return item.amount, item.get_expiry()


class IngestGate:
    def __init__(self, connection: redis.Redis):
        self._script = connection.register_script(_SCRIPT)

    def admit(
        self,
        slug: str,
        rate: str,
        *,
        tenant_id: int | None = None,
        generation: bytes | None = None,
        count: bool = True,
        ticket_id: str = "",
        audit: str = "",
        index: str = "",
    ) -> Verdict:
        """`index`: a ticket to add to the escalated index when the delivery proceeds without
        an audit row (one that may enter an escalated status: the add must come before the
        commit). Raises redis.RedisError when Redis cannot be asked (the caller falls back to
        the database for everything, as the limiter fails open)."""
        amount, seconds = _window(rate)
        window = math.floor(time.time() / seconds)
        keys = [
            f"baton:webhook-window:{slug}:{window}",
            generation_key(tenant_id or 0),
            escalated_index.key(tenant_id or 0),
            delivery_audit.STREAM,
        ]
        compared = b"-" if tenant_id is None or generation is None else generation
        kind, value = self._script(
            keys, [amount if count else 0, seconds, compared, ticket_id, audit, index]
        )
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        indexed = bool(index) and not audit and kind == PROCEED
        return Verdict(kind, max(1, int(value)) if kind == LIMITED else 0, indexed)
