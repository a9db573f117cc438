"""Telephony transports: turn a phone call into a bidirectional audio and event stream.

``telephony.sip`` is callwright's own SIP user agent core and ``telephony.rtp`` its RTP
packet layer. They are hand-written on purpose: no maintained asyncio SIP library fits
(pjsua2 does not build here, pyVoIP is unmaintained and thread-based), and the part of
the product that faces the open network must be small, strict and never crash. Both are
sans-I/O: bytes and time go in as arguments, messages and effects come out; the asyncio
sockets live in a thin layer on top.
"""
