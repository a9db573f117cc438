"""Providers: one Protocol per capability and its back-ends.

LLM (``llm``): the ``LLM`` Protocol and shared types; ``openai_llm`` speaks to any
OpenAI-compatible server (``llm_from_settings`` returns ``None`` when none is set: the
embedded mode). Embedding (``embed``): the ``Embedder`` Protocol and the offline
``MiniLMEmbedder``. The embedded mode's brain (``embedded_brain``) chooses edges by
similarity and fills variables with the typed ``extractors``. ``scripted`` holds
in-process fakes for unit tests. Speech (STT/TTS) lives in ``providers.speech``.

This package module imports nothing itself, so importing one back-end never loads
the others' heavy dependencies: import the submodule you need.
"""
