"""In-memory streams and key-value buckets: what a nats-server keeps, for `MemoryBus`."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable

import msgspec

from .delivery import Delivery, PublishAck
from .headers import delivery_msg_id
from .streams import BucketSpec, StreamSpec, subject_matches

Clock = Callable[[], float]


class StoredMessage(msgspec.Struct, frozen=True):
    seq: int
    subject: str
    data: bytes
    headers: dict[str, str]

    def delivery(self, stream: str, num_delivered: int) -> Delivery:
        return Delivery(
            subject=self.subject,
            data=self.data,
            headers=dict(self.headers),
            msg_id=delivery_msg_id(stream, self.seq, self.headers),
            stream_seq=self.seq,
            num_delivered=num_delivered,
        )


class MemoryStream:
    """Messages in sequence order, de-duplicated by `Nats-Msg-Id` within the stream's window."""

    def __init__(self, spec: StreamSpec, clock: Clock):
        self.spec = spec
        self._clock = clock
        self._messages: dict[int, StoredMessage] = {}
        self._seqs: list[int] = []
        self._last_seq = 0
        self._seen: dict[str, tuple[int, float]] = {}
        self._listeners: set[Callable[[], None]] = set()

    def append(self, subject: str, data: bytes, headers: dict[str, str], msg_id: str) -> PublishAck:
        now = self._clock()
        self._forget_expired_ids(now)
        seen = self._seen.get(msg_id)
        if seen is not None:
            return PublishAck(stream=self.spec.name, seq=seen[0], duplicate=True)
        self._last_seq += 1
        seq = self._last_seq
        self._messages[seq] = StoredMessage(seq, subject, bytes(data), dict(headers))
        self._seqs.append(seq)
        self._seen[msg_id] = (seq, now)
        for listener in list(self._listeners):
            listener()
        return PublishAck(stream=self.spec.name, seq=seq, duplicate=False)

    def _forget_expired_ids(self, now: float) -> None:
        window = self.spec.duplicate_window
        while self._seen:
            msg_id, (_, at) = next(iter(self._seen.items()))
            if now - at < window:
                return
            del self._seen[msg_id]

    def remove(self, seq: int) -> None:
        if self._messages.pop(seq, None) is not None:
            index = bisect_left(self._seqs, seq)
            del self._seqs[index]

    def get(self, seq: int) -> StoredMessage | None:
        return self._messages.get(seq)

    def next_after(self, seq: int, filter_subject: str) -> StoredMessage | None:
        """The first stored message after stream sequence `seq` that matches `filter_subject`."""
        for index in range(bisect_right(self._seqs, seq), len(self._seqs)):
            message = self._messages[self._seqs[index]]
            if subject_matches(filter_subject, message.subject):
                return message
        return None

    def matching(self, filter_subject: str) -> list[StoredMessage]:
        return [m for m in (self._messages[s] for s in self._seqs) if subject_matches(filter_subject, m.subject)]

    def listen(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every stored message."""
        self._listeners.add(listener)

    def unlisten(self, listener: Callable[[], None]) -> None:
        self._listeners.discard(listener)


class MemoryBucket:
    """Key-value entries that expire `ttl` seconds after their last put."""

    def __init__(self, spec: BucketSpec, clock: Clock):
        self.spec = spec
        self._clock = clock
        self._entries: dict[str, tuple[bytes, float]] = {}

    def put(self, key: str, value: bytes) -> None:
        self._entries[key] = (bytes(value), self._clock())

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None or self._expired(entry[1]):
            return None
        return entry[0]

    def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    def items(self) -> dict[str, bytes]:
        return {key: value for key, (value, at) in self._entries.items() if not self._expired(at)}

    def _expired(self, put_at: float) -> bool:
        return self._clock() - put_at >= self.spec.ttl
