"""Creating or updating the streams and buckets of `streams.py` on a JetStream server."""

from __future__ import annotations

import logging

from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError

from .streams import BUCKETS, STREAMS, BucketSpec, Retention, StreamSpec

log = logging.getLogger("corral_messaging")

STREAM_NAME_IN_USE = 10058
"""JetStream error code: a stream of that name exists with another configuration."""

_RETENTION = {Retention.LIMITS: api.RetentionPolicy.LIMITS, Retention.WORK_QUEUE: api.RetentionPolicy.WORK_QUEUE}


def stream_config(spec: StreamSpec, *, replicas: int) -> api.StreamConfig:
    return api.StreamConfig(
        name=spec.name,
        subjects=[spec.subjects],
        retention=_RETENTION[spec.retention],
        storage=api.StorageType.FILE,
        duplicate_window=spec.duplicate_window,
        max_age=spec.max_age or None,
        num_replicas=replicas,
    )


async def ensure_streams(js: JetStreamContext, *, replicas: int = 1) -> None:
    """Create what is missing, update what differs; safe to run twice and from many processes."""
    for spec in STREAMS:
        await _ensure_stream(js, stream_config(spec, replicas=replicas))
    for bucket in BUCKETS:
        await _ensure_bucket(js, bucket, replicas=replicas)


async def _ensure_stream(js: JetStreamContext, config: api.StreamConfig) -> None:
    try:
        await js.add_stream(config)  # same configuration: the server answers with the existing stream
    except BadRequestError as exc:
        if exc.err_code != STREAM_NAME_IN_USE:
            raise
        log.info("updating stream %s to the configured settings", config.name)
        await js.update_stream(config)


async def _ensure_bucket(js: JetStreamContext, spec: BucketSpec, *, replicas: int) -> None:
    try:
        await js.create_key_value(
            bucket=spec.name, ttl=spec.ttl, history=1, storage=api.StorageType.FILE, replicas=replicas
        )
    except BadRequestError as exc:
        if exc.err_code != STREAM_NAME_IN_USE:
            raise
        info = await js.stream_info(f"KV_{spec.name}")
        config = info.config
        if config.max_age != spec.ttl or config.num_replicas != replicas:
            log.info("updating bucket %s to the configured settings", spec.name)
            config.max_age = spec.ttl
            config.num_replicas = replicas
            await js.update_stream(config)
