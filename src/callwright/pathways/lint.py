"""Checks run on every pathway save and by ``callwright pathways lint``.

Hard **errors** are only what makes a pathway impossible to run: not JSON (or not a
pathway object), no nodes, no start node, duplicate node ids. Everything a real export
may contain is a **warning**, because the engine skips what it cannot follow: edges to
missing nodes, unreachable nodes, dead ends, malformed ``extractVars``, unknown
``{{variables}}``, bad webhook URLs or methods, unlabelled global nodes, prompt nodes
with no LLM configured. Several start nodes are a warning too (the engine starts at the
first one), since nothing in the real exports rules them out.

Every message names the node (and edge) it is about.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from callwright.pathways.format import (
    KNOWN_NODE_TYPES,
    TERMINAL_NODE_TYPES,
    GraphIndex,
    Node,
    NodeType,
    PathwayDocument,
    PathwayFormatError,
    PseudoNode,
    extract_specs,
    header_pairs,
    http_spec,
    legacy_tool,
    parse_document,
    response_mappings,
    response_routes,
    route_branches,
    route_conditions,
)
from callwright.pathways.templating import PLACEHOLDER, is_builtin, placeholders
from callwright.pathways.values import KNOWN_OPERATORS

Severity = Literal["error", "warning"]
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class LintIssue:
    severity: Severity
    code: str
    node_id: str | None
    edge_id: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "node_id": self.node_id,
            "edge_id": self.edge_id,
            "message": self.message,
        }


@dataclass(slots=True)
class LintReport:
    issues: list[LintIssue] = field(default_factory=list)

    @property
    def errors(self) -> list[LintIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[LintIssue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        """No hard errors (warnings allowed)."""
        return not self.errors

    def codes(self) -> set[str]:
        return {i.code for i in self.issues}


def lint(
    doc: PathwayDocument | Mapping[str, Any] | str | bytes, *, llm_configured: bool
) -> LintReport:
    report = LintReport()
    try:
        parsed = parse_document(doc)
    except PathwayFormatError as exc:
        report.issues.append(LintIssue("error", exc.code, exc.node_id, None, exc.message))
        return report
    _Linter(parsed, report, llm_configured).run()
    return report


class _Linter:
    def __init__(self, doc: PathwayDocument, report: LintReport, llm_configured: bool) -> None:
        self.doc = doc
        self.report = report
        self.llm_configured = llm_configured
        self.index: GraphIndex = doc.index()

    def error(self, code: str, message: str, node_id: str | None = None) -> None:
        self.report.issues.append(LintIssue("error", code, node_id, None, message))

    def warn(
        self, code: str, message: str, node_id: str | None = None, edge_id: str | None = None
    ) -> None:
        self.report.issues.append(LintIssue("warning", code, node_id, edge_id, message))

    def run(self) -> None:
        self.check_ids_and_start()
        for node in self.index.nodes.values():
            self.check_node(node)
        self.check_edges()
        self.check_reachability()
        self.check_variables()

    # -- structure --------------------------------------------------------------

    def check_ids_and_start(self) -> None:
        seen: set[str] = set()
        for entry in self.doc.nodes:
            if isinstance(entry, PseudoNode):
                if entry.globalConfig is None:
                    self.warn("unknown_entry", "an entry of 'nodes' has no id and is ignored")
                continue
            if entry.key in seen:
                self.error("duplicate_id", f"duplicate node id {entry.key!r}", entry.key)
            seen.add(entry.key)
        starts = self.index.starts
        if not starts:
            self.error("no_start", "no start node (set data.isStart on one node)")
        elif len(starts) > 1:
            names = ", ".join(n.key for n in starts)
            self.warn(
                "several_starts",
                f"several start nodes ({names}); the call starts at {starts[0].key}",
                starts[1].key,
            )

    def check_edges(self) -> None:
        seen: set[str] = set()
        for edge_id, edge in self.index.edges:
            if edge.id is not None:
                if edge_id in seen:
                    self.warn("duplicate_edge_id", f"duplicate edge id {edge_id!r}", None, edge_id)
                seen.add(edge_id)
            source, target = edge.source_key, edge.target_key
            if source is None or target is None:
                self.warn(
                    "edge_incomplete", f"edge {edge_id} has no source or target", None, edge_id
                )
                continue
            if source not in self.index.nodes:
                self.warn(
                    "edge_missing_source",
                    f"edge {edge_id} starts at missing node {source}",
                    source,
                    edge_id,
                )
            if target not in self.index.nodes:
                self.warn(
                    "edge_missing_target",
                    f"edge {edge_id} ({edge.edge_label!r}) from node {source} goes to missing "
                    f"node {target}; it will be skipped",
                    source,
                    edge_id,
                )
            if not edge.edge_label and not edge.always_pick:
                self.warn(
                    "edge_no_label",
                    f"edge {edge_id} from node {source} has no label",
                    source,
                    edge_id,
                )
            if edge.data is not None and edge.data.condition is not None:
                conditions, problems = route_conditions(edge.data.condition)
                for problem in problems:
                    self.warn("edge_condition", f"edge {edge_id}: {problem}", source, edge_id)
                self.check_operators((c.operator for c in conditions), source, f"edge {edge_id}")

    def check_reachability(self) -> None:
        start = self.index.start
        if start is None:
            return
        reached = self.reachable_from([start.key])
        # Global nodes can be entered from any conversational node.
        if self.index.globals:
            reached |= self.reachable_from([g.key for g in self.index.globals])
        for node in self.index.nodes.values():
            if node.key not in reached:
                self.warn(
                    "unreachable",
                    f"node {node.key} ({node.name!r}) cannot be reached from the start node",
                    node.key,
                )

    def reachable_from(self, roots: Iterable[str]) -> set[str]:
        reached: set[str] = set()
        stack = list(roots)
        while stack:
            current = stack.pop()
            if current in reached or current not in self.index.nodes:
                continue
            reached.add(current)
            stack.extend(self.successors(self.index.nodes[current]))
        return reached

    def successors(self, node: Node) -> list[str]:
        out = [e.target_key for _, e in self.index.outgoing.get(node.key, []) if e.target_key]
        branches, _ = route_branches(node)
        out += [b.target_id for b in branches if b.target_id]
        if node.d.fallbackNodeId:
            out.append(node.d.fallbackNodeId)
        routes, _ = response_routes(node.d.responsePathways)
        out += [r.target_id for r in routes if r.target_id]
        return out

    # -- per node -----------------------------------------------------------------

    def check_node(self, node: Node) -> None:
        d = node.d
        where = f"node {node.key} ({node.name!r})"
        if node.type is None:
            self.warn("unknown_node_type", f"{where} has no type; it runs as Default", node.key)
        elif node.type not in KNOWN_NODE_TYPES:
            self.warn(
                "unknown_node_type",
                f"{where} has unknown type {node.type!r}; it runs as Default",
                node.key,
            )
        _, problems = extract_specs(node)
        for problem in problems:
            self.warn("extract_vars", f"{where}: {problem}", node.key)
        if node.is_global and not (d.globalLabel or "").strip():
            self.warn("global_no_label", f"global {where} has no globalLabel", node.key)
        if self.is_dead_end(node):
            self.warn(
                "dead_end",
                f"{where} has no way out and does not end the call",
                node.key,
            )
        if not self.llm_configured and self.needs_llm(node):
            self.warn(
                "llm_required",
                f"{where} generates its words from a prompt but no LLM is configured",
                node.key,
            )
        if node.type in (NodeType.TRANSFER_CALL, NodeType.TRANSFER_NODE) and not d.transferNumber:
            self.warn("transfer_no_number", f"{where} has no transferNumber", node.key)
        if node.type == NodeType.CUSTOM_CODE and not (d.code or "").strip():
            self.warn(
                "code_missing",
                f"{where} has no embedded code (snippet {d.snippet_id!r}); it will be skipped",
                node.key,
            )
        if node.type == NodeType.ROUTE:
            self.check_route(node, where)
        if node.type == NodeType.WEBHOOK or d.url is not None:
            self.check_http(node, where)
        elif node.type == NodeType.CUSTOM_TOOL:
            if legacy_tool(d.tool) is None:
                self.warn("tool_invalid", f"{where} has no tool with a url", node.key)
            else:
                self.check_http(node, where)
        for position, tool in enumerate(d.tools or []):
            self.check_inline_tool(node, where, position, tool)

    def is_dead_end(self, node: Node) -> bool:
        if node.type in TERMINAL_NODE_TYPES:
            return False
        if node.is_global and node.d.enableGlobalAutoReturn is not False:
            return False
        if self.index.followable(node.key):
            return False
        if node.type == NodeType.ROUTE:
            branches, _ = route_branches(node)
            fallback = node.d.fallbackNodeId
            return (fallback is None or fallback not in self.index.nodes) and not any(
                b.target_id in self.index.nodes for b in branches
            )
        routes, _ = response_routes(node.d.responsePathways)
        return not any(r.target_id in self.index.nodes for r in routes)

    @staticmethod
    def needs_llm(node: Node) -> bool:
        d = node.d
        if node.type in (NodeType.ROUTE, NodeType.CUSTOM_CODE, NodeType.WEBHOOK):
            return False
        return bool((d.prompt or "").strip()) and not (d.text or "").strip()

    def check_route(self, node: Node, where: str) -> None:
        branches, problems = route_branches(node)
        for problem in problems:
            self.warn("route_invalid", f"{where}: {problem}", node.key)
        for position, branch in enumerate(branches):
            if branch.target_id is None or branch.target_id not in self.index.nodes:
                self.warn(
                    "route_missing_target",
                    f"{where}: routes[{position}] goes to missing node {branch.target_id}",
                    node.key,
                )
            self.check_operators((c.operator for c in branch.conditions), node.key, where)
        fallback = node.d.fallbackNodeId
        if fallback is not None and fallback not in self.index.nodes:
            self.warn(
                "route_missing_target", f"{where}: fallback node {fallback} is missing", node.key
            )

    def check_operators(self, operators: Iterable[str], node_id: str | None, where: str) -> None:
        for operator in operators:
            if " ".join(operator.strip().lower().split()) not in KNOWN_OPERATORS:
                self.warn("unknown_operator", f"{where}: unknown operator {operator!r}", node_id)

    def check_http(self, node: Node, where: str) -> None:
        spec, problems = http_spec(node)
        for problem in problems:
            self.warn("webhook_invalid", f"{where}: {problem}", node.key)
        if spec is None:
            self.warn("webhook_no_url", f"{where} has no url", node.key)
            return
        self.check_url_method(node, where, spec.url, spec.method)
        for route in spec.routes:
            if route.is_default:
                continue
            if route.target_id is not None and route.target_id not in self.index.nodes:
                self.warn(
                    "response_route_missing_target",
                    f"{where}: responsePathways route {route.variable} {route.operator} "
                    f"{route.value!r} goes to missing node {route.target_id}",
                    node.key,
                )
            self.check_operators([route.operator], node.key, where)

    def check_url_method(self, node: Node, where: str, url: str, method: str) -> None:
        if method.upper() not in HTTP_METHODS:
            self.warn("webhook_method", f"{where}: invalid HTTP method {method!r}", node.key)
        # A placeholder may supply scheme and host at run time; check what is literal.
        probe = PLACEHOLDER.sub("x", url.strip())
        if not url.strip().startswith("{{") and not _URL.match(probe):
            self.warn("webhook_url", f"{where}: invalid URL {url!r}", node.key)

    def check_inline_tool(self, node: Node, where: str, position: int, tool: Any) -> None:
        label = f"{where} tools[{position}]"
        config = tool.get("config") if isinstance(tool, dict) else None
        inner = config.get("tool") if isinstance(config, dict) else None
        spec = inner.get("tool") if isinstance(inner, dict) else None
        if not isinstance(spec, dict):
            self.warn("tool_invalid", f"{label} has no tool definition", node.key)
            return
        if spec.get("integration") != "rest_api":
            return
        request = spec.get("body")
        if not isinstance(request, dict) or not isinstance(request.get("url"), str):
            self.warn("tool_invalid", f"{label} (REST) has no url", node.key)
            return
        method = request.get("method") or spec.get("action") or "GET"
        self.check_url_method(node, label, request["url"], str(method))
        _, problems = header_pairs(request.get("headers"))
        for problem in problems:
            self.warn("tool_invalid", f"{label}: {problem}", node.key)

    # -- variables ------------------------------------------------------------------

    def check_variables(self) -> None:
        defined = self.defined_variables()
        for node in self.index.nodes.values():
            reported: set[str] = set()
            for name in self.used_variables(node):
                root = name.split(".", 1)[0]
                folded = root.casefold()
                if is_builtin(name) or folded in defined or folded in reported:
                    continue
                reported.add(folded)
                self.warn(
                    "undefined_variable",
                    f"node {node.key} ({node.name!r}) uses {{{{{name}}}}}, which no node sets "
                    "and is not built in (it must come from request_data)",
                    node.key,
                )

    def defined_variables(self) -> set[str]:
        names: set[str] = set()
        for node in self.index.nodes.values():
            specs, _ = extract_specs(node)
            names.update(s.name for s in specs)
            mappings, _ = response_mappings(node.d.responseData)
            names.update(m.name for m in mappings)
            tool = legacy_tool(node.d.tool)
            if tool is not None:
                mapped, _ = response_mappings(tool.get("response"))
                names.update(m.name for m in mapped)
            for inline in node.d.tools or []:
                names.update(_inline_tool_outputs(inline))
            if node.d.code:
                # Keys the code may return: any `name:` in an object literal.
                names.update(re.findall(r"([A-Za-z_$][\w$]*)\s*:", node.d.code))
            if node.type in (NodeType.SCHEDULING, NodeType.SCHEDULE_MEETING):
                names.update({"available_slots", "chosen_datetime"})
        return {n.casefold() for n in names}

    @staticmethod
    def used_variables(node: Node) -> list[str]:
        d = node.d
        texts: list[str] = [
            t
            for t in (
                d.text,
                d.prompt,
                d.condition,
                d.url,
                d.transferNumber,
                d.kb,
                d.text_field("message"),
                d.text_field("to"),
                d.text_field("digits"),
            )
            if isinstance(t, str)
        ]
        if isinstance(d.body, str):
            texts.append(d.body)
        headers, _ = header_pairs(d.headers)
        texts += [value for _, value in headers]
        texts += [v for v in (d.snippet_variables or {}).values() if isinstance(v, str)]
        specs, _ = extract_specs(node)
        texts += [s.description for s in specs]
        out: list[str] = []
        for text in texts:
            out += placeholders(text)
        return out


def _inline_tool_outputs(tool: Any) -> list[str]:
    config = tool.get("config") if isinstance(tool, dict) else None
    inner = config.get("tool") if isinstance(config, dict) else None
    spec = inner.get("tool") if isinstance(inner, dict) else None
    if not isinstance(spec, dict):
        return []
    mappings, _ = response_mappings(spec.get("response_data"))
    return [m.name for m in mappings]
