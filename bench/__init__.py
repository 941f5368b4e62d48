"""`make bench`: Corral's latencies beside the same operation done directly with docker-py (the floor)."""
