"""The call queue: claims queued calls, enforces concurrency limits, hands each call to
the transport serving its destination, and keeps the lease that pins it to this process."""
