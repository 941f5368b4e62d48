"""The local platform: Docker engine, nats-server, the default sandbox image, and the services."""
