"""SIP trunks an org places (and receives) calls through, with their credentials sealed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callwright.store.models import Base


class SipTrunk(Base):
    """A reusable connection to a carrier or PBX (reference §7.2, ``/v1/sip/trunks``).

    ``password_sealed`` is the SIP password encrypted with ``store.crypto``; nothing but
    the SIP user agent ever opens it. ``numbers`` are the numbers, DIDs and extensions
    bound to the trunk, in the order given.
    """

    __tablename__ = "sip_trunks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(50))
    direction: Mapped[str] = mapped_column(String(16))  # inbound | outbound | both
    host: Mapped[str] = mapped_column(String(255))
    # None: the transport's default port (or DNS SRV), as in a SIP URI without a port.
    port: Mapped[int | None] = mapped_column(Integer)
    transport: Mapped[str] = mapped_column(String(8))  # udp | tcp | tls
    auth_mode: Mapped[str] = mapped_column(String(16))  # ip | register
    username: Mapped[str | None] = mapped_column(String(128))
    password_sealed: Mapped[str | None] = mapped_column(Text)
    caller_id: Mapped[str | None] = mapped_column(String(32))
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    numbers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
