"""callwright: self-hosted voice-AI phone agents with a Bland-compatible REST API."""

__version__ = "0.1.0"
