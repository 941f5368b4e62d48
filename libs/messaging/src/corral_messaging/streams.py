"""Which streams and buckets exist, and how they keep messages: the one definition both buses use."""

from __future__ import annotations

import enum
import re

import msgspec

from corral_contracts.subjects import (
    CMD_STREAM,
    CMD_SUBJECTS,
    DLQ_STREAM,
    DLQ_SUBJECTS,
    EVT_STREAM,
    EVT_SUBJECTS,
    LOGS_STREAM,
    LOGS_SUBJECTS,
    ACTIVITY_BUCKET,
    RUNNERS_BUCKET,
)


class Retention(enum.Enum):
    LIMITS = "limits"
    """Messages stay until limits (none by default) remove them."""
    WORK_QUEUE = "workqueue"
    """A message is removed once a consumer acks (or terminates) it."""


class StreamSpec(msgspec.Struct, frozen=True):
    name: str
    subjects: str
    retention: Retention
    duplicate_window: float
    """Seconds during which a second publish with the same `Nats-Msg-Id` is dropped."""
    max_age: float = 0.0
    """Seconds a message is kept; 0 keeps it forever."""


class BucketSpec(msgspec.Struct, frozen=True):
    name: str
    ttl: float
    """Seconds an entry lives after its last put."""


STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec(CMD_STREAM, CMD_SUBJECTS, Retention.WORK_QUEUE, duplicate_window=10 * 60),
    StreamSpec(EVT_STREAM, EVT_SUBJECTS, Retention.LIMITS, duplicate_window=60 * 60),
    StreamSpec(DLQ_STREAM, DLQ_SUBJECTS, Retention.LIMITS, duplicate_window=60 * 60),
    StreamSpec(LOGS_STREAM, LOGS_SUBJECTS, Retention.LIMITS, duplicate_window=10 * 60, max_age=24 * 3600.0),
)

BUCKETS: tuple[BucketSpec, ...] = (
    BucketSpec(RUNNERS_BUCKET, ttl=30.0),
    BucketSpec(ACTIVITY_BUCKET, ttl=30 * 24 * 3600.0),
)


def stream_named(name: str) -> StreamSpec:
    for spec in STREAMS:
        if spec.name == name:
            return spec
    raise KeyError(f"no stream named {name!r}; streams are {[s.name for s in STREAMS]}")


def stream_for_subject(subject: str) -> StreamSpec | None:
    """The stream that stores messages published on `subject`, if any."""
    for spec in STREAMS:
        if subject_matches(spec.subjects, subject):
            return spec
    return None


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` matches one token, a final `>` one or more."""
    wanted = pattern.split(".")
    tokens = subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return index == len(wanted) - 1 and len(tokens) > index
        if index >= len(tokens) or (token != "*" and token != tokens[index]):
            return False
    return len(tokens) == len(wanted)


_KEY = re.compile(r"^[-/_=.a-zA-Z0-9]+$")


def check_key(key: str) -> str:
    """A key-value key as NATS accepts it: letters, digits, `-/_=.`, not starting or ending with `.`."""
    if not _KEY.match(key) or key.startswith(".") or key.endswith("."):
        raise ValueError(f"not a valid key: {key!r}")
    return key


def check_followable(stream: str) -> StreamSpec:
    """Followers read without acks, which a work-queue stream does not allow."""
    spec = stream_named(stream)
    if spec.retention is Retention.WORK_QUEUE:
        raise ValueError(f"cannot follow work-queue stream {stream!r}: consume it")
    return spec
