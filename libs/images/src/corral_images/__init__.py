"""Docker images as async byte streams, so an image moves between engines (over HTTP) without being
held whole in memory or on disk."""

from .streams import LoadFailed, load_stream, save_stream

__all__ = ["LoadFailed", "load_stream", "save_stream"]
