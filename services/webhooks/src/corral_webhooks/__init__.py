"""Webhooks: every platform event delivered to the endpoints that subscribed, signed, retried."""
