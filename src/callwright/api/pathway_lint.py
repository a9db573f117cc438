"""The lint on every pathway save: hard errors refuse it (400 naming the node), warnings
go back to the client beside the saved pathway."""

from __future__ import annotations

from typing import Any

from callwright.api.errors import ApiError


def check_document(document: dict[str, Any], *, llm_configured: bool) -> list[dict[str, Any]]:
    """Warnings as JSON; raises a 400 ``ApiError`` on hard errors. An empty pathway (a new
    one, no nodes yet) is allowed."""
    if not document.get("nodes"):
        return []
    from callwright.pathways.lint import lint

    report = lint(document, llm_configured=llm_configured)
    errors = [i for i in report.issues if i.severity == "error"]
    if errors:
        first = errors[0]
        where = f" (node {first.node_id})" if first.node_id else ""
        raise ApiError(
            400, "INVALID_PATHWAY", f"{first.message}{where}", field=first.node_id or "nodes"
        )
    return [
        {"code": i.code, "node_id": i.node_id, "edge_id": i.edge_id, "message": i.message}
        for i in report.issues
    ]
