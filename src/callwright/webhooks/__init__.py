"""Outbound webhooks: signed, retried, delivered in order from the outbox.

The outbox rows are written by ``callwright.store.webhook_outbox`` in the transaction of
the change that causes them; this package sends them (``worker``), signs them
(``signing``), decides retries (``retry``) and keeps the org signing secrets (``secrets``).
"""
