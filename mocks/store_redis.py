"""State shared through Redis, for several processes or hosts serving one mock.

``veomock serve --workers N --store redis://HOST:PORT/DB`` keeps what the workers must agree on
in Redis, under one key prefix, and each worker reads it there on every request:

- **jobs** (:class:`RedisJobs`): each job as one JSON value, and their creation order in a list.
  A new id is reserved with ``SET NX``, so ids are unique across workers, and every worker sees
  every job. A worker keeps the job it last decoded while the stored value is unchanged (so the
  status memo still works);
- **balances** (:class:`RedisLedger`): per key, the initial balance and what was charged, and the
  open jobs in a sorted set by end time; a Lua script settles what ended and reads the balance
  in one atomic step;
- **the clocks** (:class:`SharedClock`, :class:`SharedClocks`): provider time as a base, a
  wall-clock anchor and a speed (wall time, so hosts need synchronised clocks), the default's and
  each tenant's own in one hash, so a request reads its key's clock in one round trip;
- **the journal** (:class:`RedisJournal`): a list capped by entry count;
- **rate limits** (:class:`RedisLimiter`): a sliding window per key in a sorted set;
- **the settings** (:class:`RedisState`, :class:`SharedScenarios`): scenario rules, the chaos
  profile, limit overrides and webhook targets as one JSON document, with a version in the clocks'
  hash, so a request notices a change in the round trip that reads its clock; a rule's uses are
  counted in a hash;
- **the webhook schedule** (:class:`RedisSchedule`): per API key, the watches of the jobs with
  callbacks to come (a sorted set by when the job next changes state) and the deliveries due (a
  sorted set by the time they are due on that key's clock), with their payloads in a hash; the
  policies in a hash. A worker's pass claims what is due with a Lua script that moves each
  claimed entry's score on by a lease, so each watch pass and each attempt is made by one worker,
  and an entry whose claimer died comes due again. A pass over a watch lands (its deliveries and
  the watch written back) in one script that checks the watch is still as the worker read it.

Everything a request changes is written before it is answered, so a ``kill -9`` of the whole
mock loses no job, no balance and no callback to come: started again on the same Redis, it
carries on.
"""

from __future__ import annotations

import itertools
import math
import pickle
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import orjson
import redis
from veomock.contracts import Contract
from veomock.mocks.billing import Ledger
from veomock.mocks.clock import Clock, Clocks, check_seconds, check_speed
from veomock.mocks.journal import expanded
from veomock.mocks.lifecycle import Job, Outcome
from veomock.mocks.limits import WINDOW, Limiter, Refusal
from veomock.mocks.scenarios import Action, Chaos, Decision, Facts, Rule, RuleError, Scenarios, parse_rule
from veomock.mocks.serving import guarded
from veomock.mocks.state import MockState

__all__ = [
    "IdTaken",
    "RedisJobs",
    "RedisJournal",
    "RedisLedger",
    "RedisLimiter",
    "RedisSchedule",
    "RedisState",
    "SharedClock",
    "SharedClocks",
    "SharedScenarios",
    "WorkerProtocol",
    "connect",
]


_T = TypeVar("_T")

# uvicorn's HTTP protocol with the mock's deadlines, by name for ``veomock serve --workers N``.
WorkerProtocol = guarded()


def connect(url: str) -> redis.Redis:
    """A client for ``redis://HOST:PORT/DB``; it must answer now, or the mock would fail later."""
    try:
        client = redis.Redis.from_url(url)
        client.ping()
    except (ValueError, redis.RedisError) as exc:
        hint = "give redis://HOST:PORT/DB of a running Redis"
        raise ValueError(f"--store {url}: cannot use it ({exc}); {hint}") from None
    return client


class IdTaken(KeyError):
    """Another worker holds a job with this id: draw another."""


def _encode(job: Job) -> bytes:
    o = job.outcome
    return orjson.dumps(
        [
            job.id,
            job.provider,
            job.model,
            job.key,
            job.namespace,
            job.params,
            job.price,
            job.created_at,
            job.times,
            job.states,
            [o.state, o.code, o.message],
            job.result_path,
            job.revision,
        ]
    )


def _decode(raw: bytes) -> Job:
    (ident, provider, model, key, namespace, params, price, created, times, states, outcome, path, rev) = orjson.loads(
        raw
    )
    timeline = list(zip(times, states, strict=True))
    return Job(ident, provider, model, key, namespace, params, price, created, timeline, Outcome(*outcome), path, rev)


# KEYS: the job, the creation order. ARGV: the job's JSON, its "provider id". A new job in one step:
# written unless the id is taken (then 0, and nothing changes).
_RESERVE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
return 1
"""


class RedisJobs(MutableMapping[tuple[str, str], Job]):
    """The job store as a mapping of ``(provider, id)`` to jobs, kept in Redis."""

    def __init__(self, client: redis.Redis, prefix: str, cache_size: int = 10_000) -> None:
        self.client: Any = client  # replies are bytes (no decoding)
        self.prefix = prefix
        self.order = f"{prefix}jobs"  # "provider id" of every job, oldest first
        self._cache: OrderedDict[tuple[str, str], tuple[bytes, Job]] = OrderedDict()
        self._cache_size = cache_size
        self._reserve = client.register_script(_RESERVE)
        self.drawing = False  # while a job is made (RedisState.create_job)

    def _key(self, ident: tuple[str, str]) -> str:
        return f"{self.prefix}job:{ident[0]}:{ident[1]}"

    def _kept(self, ident: tuple[str, str], raw: bytes) -> Job:
        cached = self._cache.get(ident)
        if cached is not None and cached[0] == raw:
            return cached[1]
        job = _decode(raw)
        self._cache[ident] = (raw, job)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return job

    def __getitem__(self, ident: tuple[str, str]) -> Job:
        raw = self.client.get(self._key(ident))
        if raw is None:
            raise KeyError(ident)
        return self._kept(ident, raw)

    def __contains__(self, ident: object) -> bool:
        if self.drawing:
            return False  # a new id: writing it (SET NX) is the check, so there is none to make first
        return isinstance(ident, tuple) and bool(self.client.exists(self._key(ident)))

    def __setitem__(self, ident: tuple[str, str], job: Job) -> None:
        """A new job (its id reserved: :class:`IdTaken` if another worker has it), or a changed one."""
        raw = _encode(job)
        if ident in self._cache and self._cache[ident][1] is job:
            self.client.set(self._key(ident), raw)
        elif not self._reserve(keys=[self._key(ident), self.order], args=[raw, f"{ident[0]} {ident[1]}"]):
            raise IdTaken(ident)
        self._cache[ident] = (raw, job)

    def save(self, job: Job) -> None:
        """Write back a job that changed (a forced state)."""
        self[(job.provider, job.id)] = job

    def __delitem__(self, ident: tuple[str, str]) -> None:
        if not self.client.delete(self._key(ident)):
            raise KeyError(ident)
        self.client.lrem(self.order, 1, f"{ident[0]} {ident[1]}")
        self._cache.pop(ident, None)

    def _idents(self) -> list[tuple[str, str]]:
        return [tuple(x.decode().split(" ", 1)) for x in self.client.lrange(self.order, 0, -1)]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._idents())

    def items(self) -> Iterator[tuple[tuple[str, str], Job]]:  # type: ignore[override]
        idents = self._idents()
        for start in range(0, len(idents), 500):
            chunk = idents[start : start + 500]
            for ident, raw in zip(chunk, self.client.mget([self._key(i) for i in chunk]), strict=True):
                if raw is not None:
                    yield ident, self._kept(ident, raw)

    def values(self) -> Iterator[Job]:  # type: ignore[override]
        return (job for _, job in self.items())

    def __len__(self) -> int:
        return int(self.client.llen(self.order))

    def clear(self) -> None:
        _delete_prefix(self.client, self.prefix)
        self._cache.clear()


def _delete_prefix(client: redis.Redis, prefix: str, keep: Collection[str] = ()) -> None:
    kept = {name.encode() for name in keep}
    found = (k for k in client.scan_iter(match=prefix.replace("*", r"\*") + "*", count=1000) if k not in kept)
    for keys in _batched(found, 500):
        client.delete(*keys)


def _batched(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# KEYS: the account hash, its open jobs (sorted set: id by end time), what each costs (hash: id ->
# "open|final": charged while open, charged once ended). ARGV: now, the initial balance.
_SETTLE = """
redis.call('HSETNX', KEYS[1], 'initial', ARGV[2])
local ended = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if #ended > 0 then
  local settled, pending = 0, 0
  for _, id in ipairs(ended) do
    local info = redis.call('HGET', KEYS[3], id)
    if info then
      local bar = string.find(info, '|', 1, true)
      pending = pending + tonumber(string.sub(info, 1, bar - 1))
      settled = settled + tonumber(string.sub(info, bar + 1))
      redis.call('HDEL', KEYS[3], id)
    end
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
  redis.call('HINCRBYFLOAT', KEYS[1], 'settled', tostring(settled))
  redis.call('HINCRBYFLOAT', KEYS[1], 'pending', tostring(-pending))
end
local b = redis.call('HMGET', KEYS[1], 'initial', 'settled', 'pending')
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {b[1], b[2] or '0', b[3] or '0', redis.call('ZCARD', KEYS[2]), first[2] or false}
"""
# KEYS as above; ARGV: id, new end, "open|final". Only a job still open is moved.
_RESCHEDULE = """
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
end
"""


# KEYS as above; ARGV: the initial balance, the job's id, its end, "open|final", what it holds while open.
_RECORD = """
redis.call('HSETNX', KEYS[1], 'initial', ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
redis.call('HINCRBYFLOAT', KEYS[1], 'pending', ARGV[5])
"""


class RedisLedger(Ledger):
    """:class:`~mocks.billing.Ledger` with its accounts in Redis: the same calls, the same figures."""

    def __init__(self, billing: dict[str, Any], client: redis.Redis, prefix: str) -> None:
        super().__init__(billing)
        self.client: Any = client  # replies are bytes (no decoding)
        self.prefix = prefix
        self._settle_script = client.register_script(_SETTLE)
        self._reschedule_script = client.register_script(_RESCHEDULE)
        self._record_script = client.register_script(_RECORD)

    def _keys(self, key: str) -> list[str]:
        base = f"{self.prefix}{key}"
        return [f"{base}:account", f"{base}:open", f"{base}:costs"]

    def _costs(self, job: Job) -> tuple[float, str]:
        return self._end(job), f"{self._open_charge(job)!r}|{self._final_charge(job)!r}"

    def _read(self, key: str, now: float) -> tuple[float, float, float, int, float | None]:
        initial, settled, pending, count, first = self._settle_script(self._keys(key), [repr(now), repr(self.initial)])
        end = None if first is None else float(first)
        return float(initial), float(settled), float(pending), int(count), end

    def record(self, job: Job) -> None:
        end, cost = self._costs(job)
        args = [repr(self.initial), job.id, _score(end), cost, repr(self._open_charge(job))]
        self._record_script(self._keys(job.key), args)

    def rescheduled(self, job: Job) -> None:
        end, cost = self._costs(job)
        self._reschedule_script(self._keys(job.key), [job.id, repr(end), cost])

    def charged(self, key: str, now: float) -> float:
        _, settled, pending, _, _ = self._read(key, now)
        return round(settled + pending, 6)

    def remaining(self, key: str, now: float) -> float:
        initial, settled, pending, _, _ = self._read(key, now)
        return round(initial - round(settled + pending, 6), 6)

    def set_balance(self, key: str, amount: float, now: float) -> None:
        self.client.hset(self._keys(key)[0], "initial", repr(amount + self.charged(key, now)))

    def open_count(self, key: str, now: float) -> int:
        return self._read(key, now)[3]

    def next_end(self, key: str, now: float) -> float | None:
        end = self._read(key, now)[4]
        return None if end is None or end == math.inf else end

    def forget(self, key: str) -> None:
        self.client.delete(*self._keys(key))

    def view(self, key: str, now: float) -> dict[str, float]:
        initial, settled, pending, _, _ = self._read(key, now)
        charged = round(settled + pending, 6)
        return {"remaining": round(initial - charged, 6), "initial": initial, "charged": charged}


def _unpack_clock(packed: bytes) -> tuple[float, float, float]:
    base, anchor, speed = (float(x) for x in packed.split())
    return base, anchor, speed


def _time_of(packed: bytes) -> float:
    base, anchor, speed = _unpack_clock(packed)
    return base if speed == 0 else base + (time.time() - anchor) * speed


class SharedClock(Clock):
    """Provider time kept in Redis: ``base + (wall time - anchor) * speed``, read on every call.

    One hash holds every clock of a mock: the default in the field ``state``, a tenant's own in
    ``tenant:KEY``. The first process to come up on a Redis sets the default clock; the others,
    and restarts, join it (``join``: only read a clock that is there).
    """

    def __init__(
        self,
        client: redis.Redis,
        name: str,
        speed: float = 1.0,
        start: float | None = None,
        field: str = "state",
        join: bool = False,
    ) -> None:
        self.client: Any = client
        self.name, self.field = name, field
        super().__init__(speed, start)  # checks the speed, and calls restore(): it writes nothing yet
        self._made = True
        if not join:
            self.client.hsetnx(name, field, self._pack(time.time() if start is None else float(start), speed))

    @staticmethod
    def _pack(base: float, speed: float) -> str:
        return f"{base!r} {time.time()!r} {float(speed)!r}"

    def _state(self) -> tuple[float, float, float]:
        return _unpack_clock(self.client.hget(self.name, self.field))

    @property
    def speed(self) -> float:
        return self._state()[2]

    def now(self) -> float:
        return _time_of(self.client.hget(self.name, self.field))

    def advance(self, seconds: float) -> float:
        now = self.now()
        self.client.hset(self.name, self.field, self._pack(now + check_seconds("advance", seconds, now), self.speed))
        return self.now()

    def set_speed(self, speed: float) -> None:
        self.client.hset(self.name, self.field, self._pack(self.now(), check_speed(speed)))

    def restore(self) -> None:
        speed, start = self._initial
        if getattr(self, "_made", False):  # not while the base class is being made: a worker joins
            self.client.hset(self.name, self.field, self._pack(time.time() if start is None else start, speed))


class SharedClocks(Clocks):
    """:class:`~mocks.clock.Clocks` in Redis: a tenant's own clock is a field of the default's
    hash, so every worker reads the same tenant clock, in one round trip per request."""

    def __init__(self, default: SharedClock) -> None:
        super().__init__(default)
        self.shared = default

    def _field(self, key: str) -> str:
        return f"tenant:{key}"

    def _tenant(self, key: str) -> SharedClock:
        shared = self.shared
        return SharedClock(shared.client, shared.name, field=self._field(key), join=True)

    def of(self, key: str | None) -> Clock:
        if key is not None and self.shared.client.hexists(self.shared.name, self._field(key)):
            return self._tenant(key)
        return self.default

    def now(self, key: str | None = None) -> float:
        return self.read(key)[0]

    def read(self, key: str | None = None) -> tuple[float, bytes | None]:
        """``key``'s time now and the settings' version (:class:`RedisState`), in one round trip."""
        fields = ["state", "settings"] if key is None else ["state", "settings", self._field(key)]
        default, version, *own = self.shared.client.hmget(self.shared.name, fields)
        return _time_of(own[0] if own and own[0] is not None else default), version

    def now_and_speed(self, key: str | None = None) -> tuple[float, float]:
        fields = ["state"] if key is None else ["state", self._field(key)]
        default, *own = self.shared.client.hmget(self.shared.name, fields)
        packed = own[0] if own and own[0] is not None else default
        return _time_of(packed), _unpack_clock(packed)[2]

    def own(self, key: str) -> Clock:
        shared = self.shared
        # Forked from the default: its time and speed now (kept if another worker forked first).
        speed, now = self.default.speed, self.default.now()
        return SharedClock(shared.client, shared.name, speed, now, field=self._field(key))

    def _all(self) -> dict[str, bytes]:
        return {k.decode(): v for k, v in self.shared.client.hgetall(self.shared.name).items()}

    def owned(self) -> dict[str, Clock]:
        return {f[len("tenant:") :]: self._tenant(f[len("tenant:") :]) for f in self._all() if f.startswith("tenant:")}

    def drop(self, key: str) -> None:
        self.shared.client.hdel(self.shared.name, self._field(key))

    def reset(self) -> None:
        tenants = [f for f in self._all() if f.startswith("tenant:")]
        if tenants:
            self.shared.client.hdel(self.shared.name, *tenants)
        self.default.restore()

    def running(self) -> bool:
        clocks = [packed for f, packed in self._all().items() if f == "state" or f.startswith("tenant:")]
        return any(_unpack_clock(packed)[2] > 0 for packed in clocks)


# KEYS: the journal. ARGV: an entry, how many entries it keeps.
_APPEND = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
"""


class RedisJournal:
    """The journal as a capped Redis list: what :class:`~mocks.journal.Journal` offers, shared.

    It is capped by entry count (``maxlen``) only, not by bytes: each body of an inbound exchange
    is already cut at :data:`~mocks.journal.BODY_LIMIT` as it is recorded (:func:`~mocks.journal.exchange`).
    """

    def __init__(self, client: redis.Redis, name: str, maxlen: int) -> None:
        self.client: Any = client
        self.name, self._maxlen = name, maxlen
        self._append = client.register_script(_APPEND)

    @property
    def maxlen(self) -> int | None:
        return self._maxlen

    @property
    def bytes(self) -> int:
        return int(self.client.memory_usage(self.name) or 0)

    def append(self, entry: dict[str, Any]) -> None:
        self._append(keys=[self.name], args=[pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL), self._maxlen])

    def __len__(self) -> int:
        return int(self.client.llen(self.name))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for raw in self.client.lrange(self.name, 0, -1):
            entry: dict[str, Any] = pickle.loads(raw)  # written by the workers of this mock only
            yield expanded(entry)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return list(self)[index]

    def drop(self, key: str) -> None:
        kept = [raw for raw in self.client.lrange(self.name, 0, -1) if pickle.loads(raw).get("key") != key]
        pipe = self.client.pipeline()
        pipe.delete(self.name)
        if kept:
            pipe.rpush(self.name, *kept)
        pipe.execute()


# KEYS: the window (sorted set of admitted requests by time). ARGV: now, window seconds, the
# limit, a unique member. Returns {1} when admitted, else {0, the oldest request's time}.
_ADMIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return {0, redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]}
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 60)
return {1}
"""


class RedisLimiter(Limiter):
    """:class:`~mocks.limits.Limiter` with its per-minute windows in Redis; its overrides are part
    of the settings every worker shares (:meth:`document`, :meth:`load`; see :class:`RedisState`)."""

    def __init__(self, contracts: Mapping[str, Contract], client: redis.Redis, prefix: str) -> None:
        super().__init__(contracts)
        self.client: Any = client
        self.prefix = prefix
        self._admit = client.register_script(_ADMIT)
        self._count = itertools.count()

    def document(self) -> list[list[Any]]:
        return [[provider, key, values] for (provider, key), values in sorted(self._overrides.items(), key=str)]

    def load(self, overrides: list[list[Any]]) -> None:
        self._overrides = {(provider, key): dict(values) for provider, key, values in overrides}
        self._effective.clear()

    def forget(self, key: str) -> None:
        super().forget(key)
        for window in self.client.scan_iter(match=f"{self.prefix}window:*:{key}"):
            self.client.delete(window)

    def admit(self, provider: str, key: str, now: float) -> Refusal | None:
        limits = self.effective(provider, key)
        rpm = limits.requests_per_minute
        if rpm is None:
            return None
        member = f"{now!r}:{id(self)}:{next(self._count)}"
        answer = self._admit([f"{self.prefix}window:{provider}:{key}"], [repr(now), repr(WINDOW), rpm, member])
        if answer[0] == 1:
            return None
        wait = limits.retry_after
        if wait is None:
            wait = max(1, math.ceil(float(answer[1]) + WINDOW - now))
        return Refusal("rate_limited", f"Rate limit of {rpm} requests per minute exceeded", wait)


# KEYS: the payloads (hash), then sorted sets of entries (deliveries, or watches). From each, claim
# up to ARGV[3] entries due by ARGV[1]: each is due again at ARGV[2] (the lease's end) unless its
# claimer retries, commits or finishes it first. Per sorted set: id, payload, id, payload, ...
_CLAIM = """
local found = {}
for k = 2, #KEYS do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[k], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
  local out = {}
  if #ids > 0 then
    for _, id in ipairs(ids) do redis.call('ZADD', KEYS[k], ARGV[2], id) end
    local payloads = redis.call('HMGET', KEYS[1], unpack(ids))
    for i, id in ipairs(ids) do out[#out + 1] = id; out[#out + 1] = payloads[i] or false end
  end
  found[#found + 1] = out
end
return found
"""

# KEYS: deliveries (sorted set), watches (sorted set), payloads (hash), marks (hash), the keys
# with something waiting (set), the delivery sequence. Forget entry ARGV[1] of key ARGV[2], and
# the key once nothing of it is left.
_DONE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], 'seen:' .. ARGV[1], 'poke:' .. ARGV[1])
if redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2]) == 0 then redis.call('SREM', KEYS[5], ARGV[2]) end
return 1
"""

# KEYS as for _DONE. A worker's pass over watch ARGV[1] (key ARGV[2]) lands only if the watch is
# still as that worker read it (ARGV[3]; else another worker has done this pass): the deliveries
# it made (ARGV[8..]: due, payload pairs) get ids of the sequence, and the watch is written back
# (ARGV[4], due again at ARGV[5]) or, once it is over (ARGV[4] empty), forgotten. A watch whose job
# moved on (poked) or whose late callbacks a poll released (seen, ARGV[6] = 1) meanwhile is due
# again at once (ARGV[7], the pass's instant).
_COMMIT = """
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[3] then return 0 end
for i = 8, #ARGV, 2 do
  local id = string.format('d%012d', redis.call('INCR', KEYS[6]))
  redis.call('HSET', KEYS[3], id, ARGV[i + 1])
  redis.call('ZADD', KEYS[1], ARGV[i], id)
end
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[4], 'seen:' .. ARGV[1], 'poke:' .. ARGV[1])
else
  local due = ARGV[5]
  if redis.call('HDEL', KEYS[4], 'poke:' .. ARGV[1]) == 1 then due = ARGV[7] end
  if ARGV[6] == '1' and redis.call('HEXISTS', KEYS[4], 'seen:' .. ARGV[1]) == 1 then due = ARGV[7] end
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
  redis.call('ZADD', KEYS[2], due, ARGV[1])
end
if redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('SREM', KEYS[5], ARGV[2])
else
  redis.call('SADD', KEYS[5], ARGV[2])
end
return 1
"""

# KEYS as for _DONE. A poll saw the job of watches ARGV[3..] end at ARGV[1] (ARGV[2] = "seen"),
# or the job was forced into another state (ARGV[2] = "poke"): each watch still waiting notes it
# and comes due at once.
_MARK = """
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[2], ARGV[i]) then
    if ARGV[2] == 'seen' then
      redis.call('HSETNX', KEYS[4], 'seen:' .. ARGV[i], ARGV[1])
    else
      redis.call('HSET', KEYS[4], 'poke:' .. ARGV[i], '1')
    end
    redis.call('ZADD', KEYS[2], '-inf', ARGV[i])
  end
end
return 1
"""


class RedisSchedule:
    """The webhook schedule shared by every worker (:class:`~mocks.webhooks.Schedule`).

    Per API key: the deliveries due (a sorted set by due time), the watches (a sorted set by the
    time their job next changes state), the payloads of both (a hash: a delivery's JSON, a
    watch's record of what it has turned into deliveries so far), and marks (a hash: the first
    poll that saw a watched job end, a job forced into another state). Policies sit in one hash.
    """

    def __init__(self, client: redis.Redis, prefix: str, batch: int = 256) -> None:
        self.client: Any = client
        self.prefix, self.batch = prefix, batch
        self._claim = client.register_script(_CLAIM)
        self._done = client.register_script(_DONE)
        self._commit = client.register_script(_COMMIT)
        self._mark = client.register_script(_MARK)
        self._policies = f"{prefix}policies"

    def _keys(self, key: str) -> list[str]:
        base = self.prefix
        return [
            f"{base}due:{key}",
            f"{base}watch:{key}",
            f"{base}payload:{key}",
            f"{base}marks:{key}",
            f"{base}keys",
            f"{base}seq",
        ]

    def watch(self, key: str, entries: list[tuple[str, float, dict[str, Any]]]) -> None:
        _, watches, table, _, keys, _ = self._keys(key)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(table, mapping={ident: orjson.dumps(record) for ident, _, record in entries})
        pipe.zadd(watches, {ident: when for ident, when, _ in entries})
        pipe.sadd(keys, key)
        pipe.execute()

    def retry(self, ident: str, key: str, due: float, payload: dict[str, Any]) -> None:
        zset, _, table, _, keys, _ = self._keys(key)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(table, ident, orjson.dumps(payload))
        pipe.zadd(zset, {ident: due})
        pipe.sadd(keys, key)
        pipe.execute()

    def waiting(self) -> list[str]:
        members = cast(set[bytes], self.client.smembers(f"{self.prefix}keys"))
        return sorted(k.decode() for k in members)

    def _claimed(self, key: str, now: float, lease: float, *zsets: str) -> list[list[tuple[str, bytes]]]:
        table = self._keys(key)[2]
        found = self._claim(keys=[table, *zsets], args=[repr(now), repr(now + lease), self.batch])
        out = []
        for flat in found:
            claimed = []
            for ident, raw in zip(flat[::2], flat[1::2], strict=True):
                if raw is None:  # forgotten meanwhile
                    self.done(ident.decode(), key)
                else:
                    claimed.append((ident.decode(), raw))
            out.append(claimed)
        return out

    def claim(self, key: str, now: float, lease: float) -> list[tuple[str, dict[str, Any]]]:
        [deliveries] = self._claimed(key, now, lease, self._keys(key)[0])
        return [(ident, orjson.loads(raw)) for ident, raw in deliveries]

    def claim_watches(self, key: str, now: float, lease: float) -> list[tuple[str, bytes, dict[str, Any]]]:
        [watches] = self._claimed(key, now, lease, self._keys(key)[1])
        return [(ident, raw, orjson.loads(raw)) for ident, raw in watches]

    def claim_due(
        self, key: str, now: float, lease: float
    ) -> tuple[list[tuple[str, bytes, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]:
        """The watches and the deliveries due, claimed in one round trip."""
        due, watches, *_ = self._keys(key)
        passes, deliveries = self._claimed(key, now, lease, watches, due)
        return [(i, raw, orjson.loads(raw)) for i, raw in passes], [(i, orjson.loads(raw)) for i, raw in deliveries]

    def commit(
        self,
        key: str,
        ident: str,
        claimed: bytes,
        record: dict[str, Any] | None,
        upcoming: float,
        deliveries: list[tuple[float, dict[str, Any]]],
        now: float,
    ) -> bool:
        late = bool(record and record["late"])
        args: list[Any] = [ident, key, claimed, b"" if record is None else orjson.dumps(record)]
        args += [_score(upcoming), int(late), repr(now)]
        for due, payload in deliveries:
            args += [repr(due), orjson.dumps(payload)]
        return bool(self._commit(keys=self._keys(key), args=args))

    def seen_at(self, key: str, ident: str) -> float | None:
        raw = self.client.hget(self._keys(key)[3], f"seen:{ident}")
        return None if raw is None else float(raw)

    def mark(self, key: str, idents: list[str], what: str, now: float) -> None:
        self._mark(keys=self._keys(key), args=[repr(now), what, *idents])

    def entries(self, key: str) -> list[tuple[float, dict[str, Any]]]:
        """Every delivery waiting for ``key`` (by when it is due, or its lease ends) and every watch."""
        due, watches, table, *_ = self._keys(key)
        pipe = self.client.pipeline(transaction=True)
        pipe.zrange(due, 0, -1, withscores=True)
        pipe.zrange(watches, 0, -1, withscores=True)
        pipe.hgetall(table)
        listed, watched, payloads = pipe.execute()
        return [(score, orjson.loads(payloads[i])) for i, score in [*listed, *watched] if i in payloads]

    def next_due(self) -> float | None:
        firsts = []
        for key in self.waiting():
            due, watches, *_ = self._keys(key)
            pipe = self.client.pipeline(transaction=False)
            pipe.zrange(due, 0, 0, withscores=True)
            pipe.zrange(watches, 0, 0, withscores=True)
            firsts += [score for found in pipe.execute() for _, score in found]
        return min(firsts, default=None)

    def done(self, ident: str, key: str) -> None:
        self._done(keys=self._keys(key), args=[ident, key])

    def set_policy(self, name: str, policy: dict[str, Any] | None) -> None:
        if policy is None:
            self.client.hdel(self._policies, name)
        else:
            self.client.hset(self._policies, name, orjson.dumps(policy))

    def policy(self, *names: str) -> dict[str, Any] | None:
        """The first of the policies ``names`` that is set."""
        for raw in self.client.hmget(self._policies, list(names)):
            if raw is not None:
                return cast(dict[str, Any], orjson.loads(raw))
        return None

    def policies(self) -> dict[str, dict[str, Any]]:
        return {k.decode(): orjson.loads(v) for k, v in self.client.hgetall(self._policies).items()}

    def count(self, names: list[str]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hincrby(f"{self.prefix}counts", name, 1)
        pipe.execute()

    def counts(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.client.hgetall(f"{self.prefix}counts").items()}

    def forget(self, key: str) -> None:
        due, watches, table, marks, keys, _ = self._keys(key)
        jobs = {orjson.loads(ident)[2] for ident in self.client.zrange(watches, 0, -1)}  # see watch_ident
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(due, watches, table, marks)
        pipe.srem(keys, key)
        pipe.hdel(self._policies, f"key:{key}", *(f"job:{job}" for job in jobs))
        pipe.execute()


def _score(value: float) -> str:
    return "+inf" if value == math.inf else repr(value)


class SharedScenarios(Scenarios):
    """:class:`~mocks.scenarios.Scenarios` whose rules and chaos profile come from the settings
    every worker shares (:meth:`load`, :meth:`document`), with each rule's uses counted in Redis:
    a rule for ``times`` requests applies that many times across workers, not on each."""

    def __init__(
        self,
        contracts: Mapping[str, Contract],
        chaos: Mapping[str, Any] | None,
        client: redis.Redis,
        prefix: str,
        worker: int = 0,
    ) -> None:
        self.worker = worker
        super().__init__(contracts, chaos)
        self._seeded(self.chaos)
        self.client: Any = client
        self.uses = f"{prefix}settings:uses"
        self._sources: dict[str, dict[str, Any]] = {}  # each rule as it was given, by id
        self._shared: list[dict[str, Any]] = []  # the rules as last loaded, in order
        self._foreign: set[str] = set()  # those this worker cannot hold (providers it does not serve)
        self._initial = dict(chaos) if chaos else None
        self._profile = self._initial
        self._spent = False  # a rule another worker had used up meanwhile

    def add(self, data: Any) -> Rule:
        rule = super().add(data)
        self._sources[rule.id] = {**data, "id": rule.id}
        return rule

    def clear(self, key: str | None = None, provider: str | None = None, rule_id: str | None = None) -> int:
        before = {r.id for r in self.rules}
        removed = super().clear(key, provider, rule_id)
        gone = before - {r.id for r in self.rules}
        if gone:  # an id given again later starts from no uses
            self.client.hdel(self.uses, *gone)
        return removed

    def _seeded(self, chaos: Chaos | None) -> Chaos | None:
        """Each worker draws its own faults from the profile's seed (as it draws its own ids)."""
        if chaos is not None:
            chaos.rng = random.Random(f"chaos:{chaos.seed}:{self.worker}")
            chaos.hooks = random.Random(f"chaos-webhooks:{chaos.seed}:{self.worker}")
        return chaos

    def set_chaos(self, profile: Mapping[str, Any] | None) -> Chaos | None:
        chaos = self._seeded(super().set_chaos(profile))
        self._profile = dict(profile) if profile else None
        return chaos

    def _spend(self, rule: Rule) -> None:
        rule.used = int(self.client.hincrby(self.uses, rule.id, 1))
        if rule.times is not None and rule.used >= rule.times:
            if rule in self.rules:
                self.rules.remove(rule)
            self._spent = self._spent or rule.used > rule.times

    def consult(self, facts: Facts) -> Decision:
        return self._settled(super().consult, facts)

    def webhook_action(self, facts: Facts) -> Action | None:
        return self._settled(super().webhook_action, facts)

    def _settled(self, ask: Callable[[Facts], _T], facts: Facts) -> _T:
        while True:  # a rule used up by another worker meanwhile is gone here now: ask again
            self._spent = False
            answer = ask(facts)
            if not self._spent:
                return answer

    def to_json(self) -> dict[str, Any]:
        """The listing, with every rule's uses as counted across workers (one used up elsewhere is gone)."""
        uses = self.client.hgetall(self.uses)
        for rule in list(self.rules):
            rule.used = int(uses.get(rule.id.encode(), 0))
            if rule.times is not None and rule.used >= rule.times:
                self.rules.remove(rule)
        return super().to_json()

    def document(self) -> dict[str, Any]:
        """The rules (as given, in order, with those this worker cannot hold) and the chaos profile."""
        live = {r.id for r in self.rules}
        rules = [s for s in self._shared if s["id"] in live or s["id"] in self._foreign]
        listed = {s["id"] for s in rules}
        rules += [self._sources[r.id] for r in self.rules if r.id not in listed]
        return {"rules": rules, "next": self._next, "chaos": self._profile}

    def load(self, document: Mapping[str, Any], uses: Mapping[str, int]) -> None:
        """Take the rules and the chaos profile another worker shared; a rule used up is gone."""
        self.rules, self._sources, self._foreign = [], {}, set()
        self._shared = list(document.get("rules", []))
        for source in self._shared:
            try:
                rule = parse_rule(source, self.contracts, source["id"])
            except RuleError:  # a worker serving other providers shared it: kept, not held here
                self._foreign.add(source["id"])
                continue
            rule.used = uses.get(rule.id, 0)
            if rule.times is None or rule.used < rule.times:
                self.rules.append(rule)
                self._sources[rule.id] = source
        self._next = document.get("next", 1)
        profile = document.get("chaos", self._initial)
        if profile != self._profile:  # an unchanged profile keeps its random source where it is
            try:
                self._seeded(super().set_chaos(profile))
            except RuleError:  # made for providers this worker does not serve
                super().set_chaos(None)
            self._profile = profile


# KEYS: the clock hash (its field "settings": the settings' version), the settings. ARGV: the
# version the change was made on ('' for none), the new version, the new settings.
_PUBLISH = """
if (redis.call('HGET', KEYS[1], 'settings') or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'settings', ARGV[2])
return 1
"""


@dataclass
class RedisState(MockState):
    """:class:`~mocks.state.MockState` with its jobs, balances, clock, journal and webhook schedule
    in Redis at ``store``.

    Several of these (one per worker process, on one host or many) serve one mock. Each takes a
    worker number from Redis and seeds its random sources with it, so workers draw different ids;
    ``SET NX`` settles what is left. A reset empties the store for every worker; starting a worker
    does not (a restart carries on where the mock was).
    """

    store: str = "redis://127.0.0.1:6379/0"
    prefix: str = "veomock:"
    client: Any = field(init=False, repr=False)
    worker: int = field(init=False)
    shared_clocks: SharedClocks = field(init=False, repr=False)  # ``clocks``, with what only they do
    _version: bytes | None = field(init=False, default=None, repr=False)  # of the settings as loaded here
    _settings: dict[str, Any] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.client = connect(self.store)
        self.worker = int(self.client.incr(f"{self.prefix}workers"))
        speed, start = self.clock._initial
        self.clock = SharedClock(self.client, f"{self.prefix}clock", speed, start)
        super().__post_init__()
        self.clocks = self.shared_clocks = SharedClocks(self.clock)
        self._publish = self.client.register_script(_PUBLISH)

    def _fresh(self) -> None:
        super()._fresh()
        for name, runtime in self.providers.items():
            runtime.rng = random.Random(f"{self.seed}:{name}:{self.worker}")
            runtime.ledger = RedisLedger(runtime.contract.billing, self.client, f"{self.prefix}balance:{name}:")
        self.limits = RedisLimiter(self.contracts, self.client, f"{self.prefix}limits:")
        # The same calls as the dict and the Journal they replace (the seam's contract).
        self.jobs = RedisJobs(self.client, self.prefix)  # type: ignore[assignment]
        self.journal = RedisJournal(self.client, f"{self.prefix}journal", self.journal_size)  # type: ignore[assignment]
        self.webhooks.schedule = RedisSchedule(self.client, f"{self.prefix}hooks:")
        self.scenarios = SharedScenarios(self.contracts, self.chaos, self.client, self.prefix, self.worker)
        self._version, self._settings = None, {}

    def reset(self) -> None:
        # The clocks' hash stays: the others read it on every request (a reset puts it back below).
        _delete_prefix(self.client, self.prefix, keep=[f"{self.prefix}workers", self.shared_clocks.shared.name])
        super().reset()
        self.configure(lambda: None)  # the webhook targets are configuration: a reset keeps them

    # -- the settings every worker shares: rules, chaos, webhook targets --------------------------

    def now(self, key: str | None = None) -> float:
        now, version = self.shared_clocks.read(key)  # the default, the key's own and the settings' version
        if version != self._version:
            self._load(version)
        return now

    def _load(self, version: bytes | None) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.get(f"{self.prefix}settings")
        pipe.hgetall(f"{self.prefix}settings:uses")
        raw, uses = pipe.execute()
        settings = orjson.loads(raw) if raw else {}
        assert isinstance(self.scenarios, SharedScenarios)
        self.scenarios.load(settings, {k.decode(): int(v) for k, v in uses.items()})
        assert isinstance(self.limits, RedisLimiter)
        self.limits.load(settings.get("limits", []))
        self.webhooks.targets.add(settings.get("targets", []))
        self._version, self._settings = version, settings

    def _document(self) -> dict[str, Any]:
        assert isinstance(self.scenarios, SharedScenarios) and isinstance(self.limits, RedisLimiter)
        limits = self.limits.document()
        return {**self.scenarios.document(), "limits": limits, "targets": self.webhooks.targets.entries()}

    def configure(self, change: Callable[[], _T]) -> _T:
        """Run ``change`` on the newest settings and share what it changed: if another worker
        shared a change meanwhile, take that one and run ``change`` again on it."""
        for _ in range(32):
            version = self._newest_settings()
            result = change()  # it validates before it applies: a refusal raises, changing nothing
            settings = self._document()
            if settings == self._settings:
                return result
            token = uuid.uuid4().hex.encode()
            names = [self.shared_clocks.shared.name, f"{self.prefix}settings"]
            if self._publish(keys=names, args=[version or b"", token, orjson.dumps(settings)]):
                self._version, self._settings = token, settings
                return result
        raise RuntimeError("the settings kept changing under this control call; send it again")

    def read_settings(self, read: Callable[[], _T]) -> _T:
        self._newest_settings()
        return read()

    def _newest_settings(self) -> bytes | None:
        """Load the shared settings if another worker changed them; their version."""
        version: bytes | None = self.client.hget(self.shared_clocks.shared.name, "settings")
        if version != self._version:
            self._load(version)
        return version

    def create_job(self, *args: Any, **kwargs: Any) -> Job:
        assert isinstance(self.jobs, RedisJobs)
        while True:
            self.jobs.drawing = True  # the id is checked as the job is written, in the same round trip
            try:
                return super().create_job(*args, **kwargs)
            except IdTaken:
                continue  # another worker drew this id first: the random source has moved on
            finally:
                self.jobs.drawing = False

    def force(self, job: Job, target: str, outcome: Outcome | None = None, now: float | None = None) -> None:
        super().force(job, target, outcome, now)
        assert isinstance(self.jobs, RedisJobs)
        self.jobs.save(job)
        self.webhooks.touched(job)
