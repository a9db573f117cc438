"""Conversational pathways: the document format, its lint, templating and the pure step
engine (state + event -> state + actions), plus the Custom Code sandbox.

Pure: no network, no database, no clock reads (time comes in as arguments). The sandbox
is the one blocking call (it runs JavaScript in a child process); drivers run it in a
worker thread.
"""

from callwright.pathways.actions import (
    Action,
    Brain,
    CodeResult,
    Decide,
    Decided,
    Decision,
    DecisionRequest,
    Dtmf,
    EdgeOption,
    EndCall,
    Event,
    Generate,
    HttpRequest,
    HttpResult,
    RunCode,
    Say,
    SendDtmf,
    SendSms,
    Silence,
    Transfer,
    TransferPathway,
    UserSaid,
    Wait,
)
from callwright.pathways.engine import (
    EngineState,
    LogEntry,
    Step,
    run_turn,
    start,
    step,
    variables_view,
)
from callwright.pathways.format import (
    ExtractSpec,
    NodeType,
    PathwayDocument,
    PathwayFormatError,
    export,
    export_json,
    parse_document,
)
from callwright.pathways.lint import LintIssue, LintReport, lint
from callwright.pathways.sandbox import SandboxLimits, SandboxResult, run_code
from callwright.pathways.templating import CallContext, builtin_variables, render

__all__ = [
    "Action",
    "Brain",
    "CallContext",
    "CodeResult",
    "Decide",
    "Decided",
    "Decision",
    "DecisionRequest",
    "Dtmf",
    "EdgeOption",
    "EndCall",
    "EngineState",
    "Event",
    "ExtractSpec",
    "Generate",
    "HttpRequest",
    "HttpResult",
    "LintIssue",
    "LintReport",
    "LogEntry",
    "NodeType",
    "PathwayDocument",
    "PathwayFormatError",
    "RunCode",
    "SandboxLimits",
    "SandboxResult",
    "Say",
    "SendDtmf",
    "SendSms",
    "Silence",
    "Step",
    "Transfer",
    "TransferPathway",
    "UserSaid",
    "Wait",
    "builtin_variables",
    "export",
    "export_json",
    "lint",
    "parse_document",
    "render",
    "run_code",
    "run_turn",
    "start",
    "step",
    "variables_view",
]
