"""Token buckets on an injected clock (pure): how many refusals may be reported, per topic and in total."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

_KEY_SHOWN = 64  # a longer topic is kept as its first characters and a digest of the whole


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; ``take(now)`` spends one if there is one.

    ``now`` comes from the caller (a monotonic clock), so tests move time by hand.
    A clock that goes backwards refills nothing.
    """

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate < 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate >= 0 and burst >= 1, got rate={rate}, burst={burst}")
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def available(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= 1.0

    def take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.burst


@dataclass(frozen=True)
class Limits:
    """Per-topic and total budgets. ``max_topics`` bounds the memory an attacker naming new topics can use."""

    topic_rate: float = 1 / 60  # one report per topic per minute after the burst
    topic_burst: float = 3
    total_rate: float = 1.0
    total_burst: float = 20
    max_topics: int = 1024


class RefusalLimiter:
    """Decides which refusals are reported (ack, event, log line); the others are only counted.

    A report needs a token from the topic's bucket and from the total bucket; both
    are spent together or not at all. Topic buckets are kept for the ``max_topics``
    most recently refused topics, each under a key of bounded length (``topic_key``):
    the topic names are the sender's, up to 65,535 bytes each; a forgotten topic
    starts again with a full burst, which the total bucket still bounds.
    """

    def __init__(self, limits: Limits = Limits()) -> None:
        self.limits = limits
        self._total: TokenBucket | None = None
        self._topics: OrderedDict[str, TokenBucket] = OrderedDict()

    def allow(self, topic: str, now: float) -> bool:
        lim = self.limits
        if self._total is None:
            self._total = TokenBucket(lim.total_rate, lim.total_burst, now)
        key = topic_key(topic)
        bucket = self._topics.get(key)
        if bucket is None:
            bucket = TokenBucket(lim.topic_rate, lim.topic_burst, now)
            self._topics[key] = bucket
            while len(self._topics) > lim.max_topics:
                self._topics.popitem(last=False)
        else:
            self._topics.move_to_end(key)
        if bucket.available(now) and self._total.available(now):
            bucket.take(now)
            self._total.take(now)
            return True
        return False

    @property
    def tracked_topics(self) -> int:
        return len(self._topics)


def topic_key(topic: str) -> str:
    """The key of a topic's bucket: the topic itself when short, else its first characters and a digest of it,
    so that a budget per topic costs at most about a hundred characters however long the name."""
    if len(topic) <= 2 * _KEY_SHOWN:
        return topic
    digest = hashlib.blake2b(topic.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return f"{topic[:_KEY_SHOWN]}#{digest}"
