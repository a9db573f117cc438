"""The pathway document as the hosted platform exports it, modelled without loss.

A pathway is ``{"nodes": [...], "edges": [...], ...}``. Real exports are messy (see
``shared/data/pathways/SOURCES.md``), so the models here follow three rules:

1. **Nothing is lost.** Every model keeps unknown keys (``extra="allow"``), validation is
   strict (a value is never coerced into another JSON type) and ``export`` dumps only the
   keys that were present, so ``export(parse_document(x))`` equals ``x`` for every real
   export.
2. **Only what makes a pathway unreadable is a format error**: not JSON, not an object,
   no ``nodes`` list, a node whose ``id``/``type``/``data`` has the wrong JSON type.
   Fields whose real-world shape varies (``extractVars``, ``responsePathways``,
   ``headers``, ``routes``, tools) are kept as raw JSON and read through the normalising
   accessors below, which skip what they cannot understand; the lint reports it.
3. **Entries without an ``id``** in ``nodes`` (the editor's ``{"globalConfig": ...}``
   pseudo-node) are kept in place as :class:`PseudoNode` and never run.

Node types the reference documents only by name (``SMS``, ``Press Button``, ``Transfer
Pathway``, ``Scheduling``/``Schedule Meeting``, ``Custom Tool``) have no published field
names; callwright reads the keys listed on :class:`NodeData` for them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

JSONValue = Any


class PathwayFormatError(ValueError):
    """The document cannot be read as a pathway; the message names the fault."""

    def __init__(self, code: str, message: str, node_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.node_id = node_id


class NodeType(StrEnum):
    """Node ``type`` strings of the reference (exact spelling)."""

    DEFAULT = "Default"
    END_CALL = "End Call"
    TRANSFER_CALL = "Transfer Call"
    # The reference's parameter list calls the transfer node this; same behaviour.
    TRANSFER_NODE = "Transfer Node"
    KNOWLEDGE_BASE = "Knowledge Base"
    VECTOR_DB_KNOWLEDGE_BASE = "Vector DB Knowledge Base"
    WEBHOOK = "Webhook"
    WAIT_FOR_RESPONSE = "Wait for Response"
    SMS = "SMS"
    CUSTOM_CODE = "Custom Code"
    PRESS_BUTTON = "Press Button"
    TRANSFER_PATHWAY = "Transfer Pathway"
    SCHEDULING = "Scheduling"
    SCHEDULE_MEETING = "Schedule Meeting"
    CUSTOM_TOOL = "Custom Tool"
    ROUTE = "Route"


KNOWN_NODE_TYPES = frozenset(t.value for t in NodeType)
TERMINAL_NODE_TYPES = frozenset(
    {NodeType.END_CALL, NodeType.TRANSFER_CALL, NodeType.TRANSFER_NODE, NodeType.TRANSFER_PATHWAY}
)


class PathwayModel(BaseModel):
    """Base: keep unknown keys, never coerce a JSON type into another, and dump keys in
    the order they were read (so an export diffs cleanly against its source)."""

    model_config = ConfigDict(extra="allow", strict=True)
    _key_order: tuple[str, ...] | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_key_order(cls, value: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        model = handler(value)
        if isinstance(value, dict) and isinstance(model, PathwayModel):
            model._key_order = tuple(value)
        return model

    @model_serializer(mode="wrap")
    def _dump_in_read_order(self, handler: SerializerFunctionWrapHandler) -> Any:
        out = handler(self)
        order = self._key_order
        if order is None or not isinstance(out, dict):
            return out
        ordered = {key: out[key] for key in order if key in out}
        ordered.update((key, value) for key, value in out.items() if key not in ordered)
        return ordered


class ModelOptions(PathwayModel):
    """Per-node model options (``data.modelOptions``)."""

    modelName: str | None = None
    modelType: str | None = None
    temperature: int | float | None = None
    newTemperature: int | float | None = None
    interruptionThreshold: int | float | None = None
    interruptibility: int | float | None = None
    skipUserResponse: bool | None = None
    block_interruptions: bool | None = None
    disableSilenceRepeat: bool | None = None
    resumption_speed: int | float | None = None
    isSMSReturnNode: bool | None = None
    disableEndCallTool: bool | None = None


class NodeData(PathwayModel):
    """``node.data``. Fields are grouped by the node types that read them."""

    # every node
    name: str | None = None
    isStart: bool | None = None
    text: str | None = None
    prompt: str | None = None
    condition: str | None = None
    globalPrompt: str | None = None
    extractVars: list[JSONValue] | None = None
    extractVarSettings: JSONValue = None
    modelOptions: ModelOptions | None = None
    pathwayExamples: list[JSONValue] | None = None
    conditionExamples: list[JSONValue] | None = None
    dialogueExamples: list[JSONValue] | None = None
    tag: JSONValue = None
    active: bool | None = None
    tools: list[JSONValue] | None = None
    # global nodes (any type with isGlobal)
    isGlobal: bool | None = None
    globalLabel: str | None = None
    globalDescription: str | None = None
    enableGlobalAutoReturn: bool | None = None
    prevNodePathwayLabel: str | None = None
    prevNodePathwayDescription: str | None = None
    # Transfer Call
    transferNumber: str | None = None
    warmTransferFields: dict[str, JSONValue] | None = None
    twilioAppTransferFields: dict[str, JSONValue] | None = None
    # Knowledge Base / Vector DB Knowledge Base
    kb: str | None = None
    kbTool: JSONValue = None
    queryExtractionPrompt: str | None = None
    useManualInput: bool | None = None
    # Webhook (also the slot request of Scheduling nodes)
    url: str | None = None
    method: str | None = None
    body: JSONValue = None
    headers: JSONValue = None
    timeoutValue: int | float | None = None
    max_retries: int | None = None
    responseData: list[JSONValue] | None = None
    responsePathways: list[JSONValue] | None = None
    tool: JSONValue = None
    is_staging: bool | None = None
    # Custom Code
    code: str | None = None
    snippet_id: str | None = None
    snippet_version: int | str | None = None
    snippet_variables: dict[str, JSONValue] | None = None
    # Route
    routes: list[JSONValue] | None = None
    fallbackNodeId: str | None = None
    # Keys callwright chose for types the reference documents by name only. They stay
    # untyped, so a platform export using the same key differently still imports; read
    # them through ``NodeData.text_field``.
    # SMS: message template, recipient (default: the other party of the call)
    message: JSONValue = None
    to: JSONValue = None
    # Press Button: DTMF digits to send
    digits: JSONValue = None
    # Transfer Pathway: target pathway, version, start node
    pathwayId: JSONValue = None
    pathwayVersion: JSONValue = None
    startNodeId: JSONValue = None

    def text_field(self, name: str) -> str | None:
        """A field as text: strings as-is, numbers spelled out, anything else absent."""
        value = getattr(self, name, None)
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return None


class Node(PathwayModel):
    id: str | int
    type: str | None = None
    data: NodeData | None = None
    position: JSONValue = None

    @property
    def key(self) -> str:
        """The id as a string (exports use strings; a numeric id is read the same)."""
        return str(self.id)

    @property
    def d(self) -> NodeData:
        return self.data if self.data is not None else _EMPTY_DATA

    @property
    def name(self) -> str:
        return self.d.name or self.key

    @property
    def is_start(self) -> bool:
        return self.d.isStart is True

    @property
    def is_global(self) -> bool:
        return self.d.isGlobal is True

    @property
    def is_terminal(self) -> bool:
        return self.type in TERMINAL_NODE_TYPES


_EMPTY_DATA = NodeData()


class PseudoNode(PathwayModel):
    """An entry of ``nodes`` without an ``id`` (the ``globalConfig`` pseudo-node)."""

    globalConfig: JSONValue = None

    @property
    def global_prompt(self) -> str | None:
        config = self.globalConfig
        if isinstance(config, dict):
            prompt = config.get("globalPrompt")
            return prompt if isinstance(prompt, str) else None
        return None


class EdgeData(PathwayModel):
    label: str | None = None
    description: str | None = None
    alwaysPick: bool | None = None
    isHighlighted: bool | None = None
    isVoicemailEdge: bool | None = None
    condition: JSONValue = None


class Edge(PathwayModel):
    id: str | int | None = None
    source: str | int | None = None
    target: str | int | None = None
    type: str | None = None
    label: str | None = None
    description: str | None = None
    data: EdgeData | None = None

    @property
    def source_key(self) -> str | None:
        return None if self.source is None else str(self.source)

    @property
    def target_key(self) -> str | None:
        return None if self.target is None else str(self.target)

    @property
    def edge_label(self) -> str:
        """Export nests the label under ``data``; save endpoints read it top-level."""
        if self.data is not None and self.data.label:
            return self.data.label
        return self.label or ""

    @property
    def edge_description(self) -> str:
        if self.data is not None and self.data.description:
            return self.data.description
        return self.description or ""

    @property
    def always_pick(self) -> bool:
        return self.data is not None and self.data.alwaysPick is True


class PathwayDocument(PathwayModel):
    name: str | None = None
    description: str | None = None
    nodes: list[Node | PseudoNode]
    edges: list[Edge] | None = None

    def real_nodes(self) -> Iterator[Node]:
        return (n for n in self.nodes if isinstance(n, Node))

    def edge_list(self) -> list[Edge]:
        return self.edges or []

    @property
    def global_prompt(self) -> str | None:
        for entry in self.nodes:
            if isinstance(entry, PseudoNode) and entry.global_prompt:
                return entry.global_prompt
        return None

    def index(self) -> GraphIndex:
        """Lookup tables for the engine and the lint, built once per document (a parsed
        document is treated as immutable)."""
        if self._index is None:
            self._index = GraphIndex(self)
        return self._index

    _index: GraphIndex | None = PrivateAttr(default=None)


class GraphIndex:
    """Nodes by id (the first of duplicates wins), outgoing edges, start and global nodes."""

    def __init__(self, doc: PathwayDocument) -> None:
        self.nodes: dict[str, Node] = {}
        for node in doc.real_nodes():
            self.nodes.setdefault(node.key, node)
        self.edges: list[tuple[str, Edge]] = []
        self.outgoing: dict[str, list[tuple[str, Edge]]] = {}
        for position, edge in enumerate(doc.edge_list()):
            edge_id = str(edge.id) if edge.id is not None else f"edge#{position}"
            self.edges.append((edge_id, edge))
            source = edge.source_key
            if source is not None:
                self.outgoing.setdefault(source, []).append((edge_id, edge))
        self.starts = [n for n in self.nodes.values() if n.is_start]
        self.globals = [n for n in self.nodes.values() if n.is_global]
        self.global_prompt = doc.global_prompt

    @property
    def start(self) -> Node | None:
        return self.starts[0] if self.starts else None

    def followable(self, node_id: str) -> list[tuple[str, Edge]]:
        """Outgoing edges whose target exists; dangling edges are skipped."""
        return [
            (edge_id, edge)
            for edge_id, edge in self.outgoing.get(node_id, [])
            if edge.target_key is not None and edge.target_key in self.nodes
        ]


def parse_document(raw: bytes | str | Mapping[str, Any] | PathwayDocument) -> PathwayDocument:
    """Read a pathway from JSON text or an already decoded object.

    Raises :class:`PathwayFormatError` naming the fault (``not_json``, ``not_object``,
    ``no_nodes``, ``invalid_field``)."""
    if isinstance(raw, PathwayDocument):
        return raw
    data: Any
    if isinstance(raw, bytes | str):
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise PathwayFormatError("not_json", f"pathway is not valid JSON: {exc}") from None
    else:
        data = raw
    if not isinstance(data, Mapping):
        raise PathwayFormatError("not_object", "pathway must be a JSON object")
    nodes = data.get("nodes")
    if not isinstance(nodes, list):
        raise PathwayFormatError("no_nodes", "pathway has no 'nodes' list")
    entries: list[Node | PseudoNode] = []
    for index, entry in enumerate(nodes):
        entries.append(_parse_node(index, entry))
    if not any(isinstance(e, Node) for e in entries):
        raise PathwayFormatError("no_nodes", "pathway has no nodes")
    edges = data.get("edges")
    if edges is not None and not isinstance(edges, list):
        raise PathwayFormatError("invalid_field", "'edges' must be a list")
    parsed_edges = None if edges is None else [_parse_edge(i, e) for i, e in enumerate(edges)]
    # Keep the source's key order: the wrap validator records it.
    fields = {
        key: entries if key == "nodes" else parsed_edges if key == "edges" else value
        for key, value in data.items()
    }
    try:
        return PathwayDocument.model_validate(fields)
    except ValidationError as exc:
        raise PathwayFormatError("invalid_field", _describe("pathway", exc)) from None


def _parse_node(index: int, entry: Any) -> Node | PseudoNode:
    if not isinstance(entry, dict):
        raise PathwayFormatError("invalid_field", f"nodes[{index}] is not an object")
    if "id" not in entry:
        try:
            return PseudoNode.model_validate(entry)
        except ValidationError as exc:
            raise PathwayFormatError("invalid_field", _describe(f"nodes[{index}]", exc)) from None
    node_id = entry.get("id")
    where = f"node {node_id}" if isinstance(node_id, str | int) else f"nodes[{index}]"
    try:
        return Node.model_validate(entry)
    except ValidationError as exc:
        raise PathwayFormatError(
            "invalid_field", _describe(where, exc), node_id=str(node_id)
        ) from None


def _parse_edge(index: int, entry: Any) -> Edge:
    if not isinstance(entry, dict):
        raise PathwayFormatError("invalid_field", f"edges[{index}] is not an object")
    try:
        return Edge.model_validate(entry)
    except ValidationError as exc:
        edge_id = entry.get("id")
        where = f"edge {edge_id}" if isinstance(edge_id, str | int) else f"edges[{index}]"
        raise PathwayFormatError("invalid_field", _describe(where, exc)) from None


def _describe(where: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    return f"{where}: {loc}: {first['msg']}"


def export(doc: PathwayDocument) -> dict[str, Any]:
    """The document as JSON-ready data: exactly the keys and values that were read."""
    out: dict[str, Any] = doc.model_dump(mode="json", exclude_unset=True)
    return out


def export_json(doc: PathwayDocument) -> str:
    return json.dumps(export(doc), ensure_ascii=False)


# ---------------------------------------------------------------------------
# Normalising accessors: one shape out of the several found in real exports.
# ---------------------------------------------------------------------------

EXTRACT_TYPES = frozenset({"string", "integer", "number", "boolean"})


@dataclass(frozen=True, slots=True)
class ExtractSpec:
    """One ``extractVars`` entry: ``[name, type, description, required?, ...]``.

    Entries have 3 to 6 elements in real exports; the 4th is "required" (not stated by
    the reference, but the editor writes it), the 5th and 6th are editor flags callwright
    does not interpret. They stay in the document untouched."""

    name: str
    type: str
    description: str
    required: bool


def extract_specs(node: Node) -> tuple[list[ExtractSpec], list[str]]:
    """The node's extract specs, and a message per entry that could not be read."""
    raw = node.d.extractVars
    specs: list[ExtractSpec] = []
    problems: list[str] = []
    if raw is None:
        return specs, problems
    for index, entry in enumerate(raw):
        if isinstance(entry, dict):
            # A few tools write objects instead of tuples; read them too.
            entry = [
                entry.get("name"),
                entry.get("type", "string"),
                entry.get("description", ""),
                entry.get("required", False),
            ]
        if not isinstance(entry, list) or not 3 <= len(entry) <= 6:
            problems.append(f"extractVars[{index}] must be a list of 3 to 6 elements")
            continue
        name, var_type, description = entry[0], entry[1], entry[2]
        if not isinstance(name, str) or not name.strip():
            problems.append(f"extractVars[{index}] has no variable name")
            continue
        if not isinstance(var_type, str) or var_type.lower() not in EXTRACT_TYPES:
            problems.append(f"extractVars[{index}] ({name}) has unknown type {var_type!r}")
            var_type = "string"
        if not isinstance(description, str):
            problems.append(f"extractVars[{index}] ({name}) description is not a string")
            description = ""
        required = len(entry) > 3 and entry[3] is True
        specs.append(ExtractSpec(name.strip(), var_type.lower(), description, required))
    return specs, problems


@dataclass(frozen=True, slots=True)
class ResponseRoute:
    """One ``responsePathways`` entry, from either shape.

    Tuple shape ``[variable, operator, value, {id, name}]`` (Webhook nodes) and object
    shape ``{variable, condition, value, targetId, targetName}`` (inline tools). The
    object entry ``variable: "Default/Webhook Completion"`` is the no-route default."""

    variable: str
    operator: str
    value: str
    target_id: str | None
    target_name: str | None
    is_default: bool


DEFAULT_ROUTE_VARIABLES = frozenset({"Default/Webhook Completion", "API Request Completion"})


def response_routes(raw: Any) -> tuple[list[ResponseRoute], list[str]]:
    routes: list[ResponseRoute] = []
    problems: list[str] = []
    if not isinstance(raw, list):
        return routes, problems if raw is None else ["responsePathways is not a list"]
    for index, entry in enumerate(raw):
        if isinstance(entry, list) and len(entry) >= 3:
            variable, operator, value = entry[0], entry[1], entry[2]
            target = entry[3] if len(entry) > 3 else None
            target_id = target.get("id") if isinstance(target, dict) else None
            target_name = target.get("name") if isinstance(target, dict) else None
        elif isinstance(entry, dict):
            variable = entry.get("variable")
            operator = entry.get("condition", entry.get("operator"))
            value = entry.get("value")
            target_id, target_name = entry.get("targetId"), entry.get("targetName")
        else:
            problems.append(f"responsePathways[{index}] is neither a list nor an object")
            continue
        if not isinstance(variable, str):
            problems.append(f"responsePathways[{index}] has no variable")
            continue
        routes.append(
            ResponseRoute(
                variable=variable,
                operator=operator if isinstance(operator, str) else "",
                value="" if value is None else str(value),
                target_id=str(target_id)
                if isinstance(target_id, str | int) and target_id
                else None,
                target_name=target_name if isinstance(target_name, str) else None,
                is_default=variable in DEFAULT_ROUTE_VARIABLES,
            )
        )
    return routes, problems


def header_pairs(raw: Any) -> tuple[list[tuple[str, str]], list[str]]:
    """Webhook headers from ``[[k, v], ...]``, ``[{key, value}, ...]`` or ``{k: v}``."""
    pairs: list[tuple[str, str]] = []
    problems: list[str] = []
    if raw is None:
        return pairs, problems
    if isinstance(raw, dict):
        for key, value in raw.items():
            pairs.append((str(key), _scalar_text(value)))
        return pairs, problems
    if not isinstance(raw, list):
        return pairs, ["headers must be a list or an object"]
    for index, entry in enumerate(raw):
        if isinstance(entry, list) and len(entry) == 2:
            key, value = entry
        elif isinstance(entry, dict) and "key" in entry:
            key, value = entry.get("key"), entry.get("value")
        else:
            problems.append(f"headers[{index}] is not a [key, value] pair")
            continue
        if not isinstance(key, str) or not key.strip():
            problems.append(f"headers[{index}] has no name")
            continue
        pairs.append((key.strip(), _scalar_text(value)))
    return pairs, problems


def _scalar_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


@dataclass(frozen=True, slots=True)
class RouteCondition:
    field: str
    operator: str
    value: str


@dataclass(frozen=True, slots=True)
class RouteBranch:
    conditions: tuple[RouteCondition, ...]
    target_id: str | None


def route_conditions(raw: Any) -> tuple[tuple[RouteCondition, ...], list[str]]:
    """``[{field, value, operator}, ...]`` (Route branches and edge ``data.condition``)."""
    if raw is None:
        return (), []
    if not isinstance(raw, list):
        return (), ["condition is not a list"]
    out: list[RouteCondition] = []
    problems: list[str] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("field"), str):
            problems.append(f"condition[{index}] has no field")
            continue
        operator = entry.get("operator")
        value = entry.get("value")
        out.append(
            RouteCondition(
                field=entry["field"],
                operator=operator if isinstance(operator, str) else "is",
                value="" if value is None else str(value),
            )
        )
    return tuple(out), problems


def route_branches(node: Node) -> tuple[list[RouteBranch], list[str]]:
    raw = node.d.routes
    branches: list[RouteBranch] = []
    problems: list[str] = []
    for index, entry in enumerate(raw or []):
        if not isinstance(entry, dict):
            problems.append(f"routes[{index}] is not an object")
            continue
        conditions, bad = route_conditions(entry.get("conditions"))
        problems += [f"routes[{index}].{p}" for p in bad]
        target = entry.get("targetNodeId")
        branches.append(
            RouteBranch(conditions, str(target) if isinstance(target, str | int) else None)
        )
    return branches, problems


@dataclass(frozen=True, slots=True)
class ResponseMapping:
    """``responseData`` entry (``{name, data: "$.path", context}``) or a legacy tool's
    ``response`` map entry (``{var: "$.path"}``)."""

    name: str
    path: str


def response_mappings(raw: Any) -> tuple[list[ResponseMapping], list[str]]:
    out: list[ResponseMapping] = []
    problems: list[str] = []
    if raw is None:
        return out, problems
    if isinstance(raw, dict):
        for name, path in raw.items():
            if isinstance(path, str):
                out.append(ResponseMapping(str(name), path))
            else:
                problems.append(f"response mapping {name!r} has no path")
        return out, problems
    if not isinstance(raw, list):
        return out, ["responseData is not a list"]
    for index, entry in enumerate(raw):
        if (
            isinstance(entry, dict)
            and isinstance(entry.get("name"), str)
            and isinstance(entry.get("data"), str)
        ):
            out.append(ResponseMapping(entry["name"], entry["data"]))
        else:
            problems.append(f"responseData[{index}] needs a name and a data path")
    return out, problems


@dataclass(frozen=True, slots=True)
class HttpSpec:
    """The request a Webhook node (or a Custom Tool / Scheduling node) describes."""

    url: str
    method: str
    headers: list[tuple[str, str]]
    body: JSONValue
    query: dict[str, str]
    timeout_s: float
    retries: int
    mappings: list[ResponseMapping]
    routes: list[ResponseRoute]


def timeout_seconds(value: Any, default: float = 10.0) -> float:
    """``timeoutValue`` is ``10`` in one export and ``20000`` in another: values above
    1000 are read as milliseconds, smaller ones as seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return default
    return float(value) / 1000.0 if value > 1000 else float(value)


def http_spec(node: Node) -> tuple[HttpSpec | None, list[str]]:
    """The node's request: its own ``url``/``method``/... or, failing that, an embedded
    legacy tool (``data.tool.tool``)."""
    d = node.d
    problems: list[str] = []
    if d.url:
        headers, bad = header_pairs(d.headers)
        mappings, bad_map = response_mappings(d.responseData)
        routes, bad_routes = response_routes(d.responsePathways)
        problems += bad + bad_map + bad_routes
        return (
            HttpSpec(
                url=d.url,
                method=(d.method or "GET").upper(),
                headers=headers,
                body=d.body,
                query={},
                timeout_s=timeout_seconds(d.timeoutValue),
                retries=d.max_retries if isinstance(d.max_retries, int) else 0,
                mappings=mappings,
                routes=routes,
            ),
            problems,
        )
    tool = legacy_tool(d.tool)
    if tool is None:
        return None, problems
    url = tool.get("url")
    if not isinstance(url, str):
        return None, ["embedded tool has no url"]
    headers, bad = header_pairs(tool.get("headers"))
    mappings, bad_map = response_mappings(tool.get("response"))
    query = tool.get("query")
    timeout = tool.get("timeout")
    return (
        HttpSpec(
            url=url,
            method=str(tool.get("method") or "GET").upper(),
            headers=headers,
            body=tool.get("body"),
            query={str(k): _scalar_text(v) for k, v in query.items()}
            if isinstance(query, dict)
            else {},
            timeout_s=timeout_seconds(timeout, 10.0) if timeout is not None else 10.0,
            retries=0,
            mappings=mappings,
            routes=[],
        ),
        problems + bad + bad_map,
    )


def legacy_tool(raw: Any) -> dict[str, Any] | None:
    """An embedded legacy tool: ``{tool: {name, url, method, ...}, label, ...}``."""
    if isinstance(raw, dict):
        inner = raw.get("tool")
        if isinstance(inner, dict) and "url" in inner:
            return inner
        if "url" in raw:
            return raw
    return None
