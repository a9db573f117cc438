"""Sandbox transport: completes calls to the fictional numbers NXX-555-0100..0199 without
dialing, so a team can try its integration (statuses, events, webhooks) with no phone line.

Opt-in (``CALLWRIGHT_SANDBOX_NUMBERS=true``); every event it writes says it is a sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import re

from callwright.dispatch.transport import CallHandle, CallInfo, Outcome

FICTIONAL = re.compile(r"^\+1\d{3}55501\d{2}$")


class SandboxTransport:
    name = "sandbox"

    def __init__(self, call_seconds: float) -> None:
        self.call_seconds = call_seconds

    def serves(self, call: CallInfo) -> bool:
        return bool(FICTIONAL.match(call.to_number))

    async def run(self, call: CallHandle) -> Outcome:
        await call.log("sandbox.dial", "Sandbox number: no real call is placed.")
        if call.stop.is_set():
            return Outcome("canceled", message="Stopped before dialing.")
        await call.set_status("ringing", "Ringing (sandbox)")
        await call.set_status("in-progress", "Call connected (sandbox)")
        limit = float(call.info.params.get("max_duration") or 30) * 60
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.stop.wait(), timeout=min(self.call_seconds, limit))
        if call.stop.is_set():
            return Outcome(
                "completed",
                call_ended_by="ASSISTANT",
                answered_by="human",
                message="Call ended by API request.",
            )
        return Outcome(
            "completed",
            call_ended_by="USER",
            answered_by="human",
            message="Callee hung up (sandbox).",
        )
