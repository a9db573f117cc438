"""Shared test helpers: real local peers the suite starts (scripted LLM server, ...)."""
