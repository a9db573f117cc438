"""The live conversation: turn-taking, the agent's replies, and the call's record.

``turns`` is the pure floor-control core (frames in, actions out); the loop around it
owns the audio port, the speech and language providers and the store.
"""
