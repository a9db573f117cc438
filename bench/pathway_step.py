"""Pathway engine step time on a generated 200-node pathway, without any LLM.

Every ``step`` call of scripted conversations is timed: caller turns (the engine builds
the decision request) and decisions (the engine extracts, routes, enters the next node,
chains through Route nodes, renders templates). The brain is a table lookup and is not
timed. Target: p99 <= 1 ms.

    flock /tmp/cw-bench.lock .venv/bin/python bench/pathway_step.py
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from callwright.pathways import (
    CallContext,
    Decided,
    Decision,
    EngineState,
    UserSaid,
    parse_document,
    start,
    step,
)

NODES = 200
CONVERSATIONS = 200
MAX_TURNS = 120


def build(nodes: int) -> dict[str, Any]:
    """A chain of conversational nodes (static text, a typed variable, three edges each),
    a Route node every tenth position, a global node and an End Call at the end."""
    out: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for i in range(nodes - 2):
        node_id = f"n{i}"
        nxt, skip = f"n{i + 1}", f"n{min(i + 2, nodes - 3)}"
        if i % 10 == 9:
            out.append(
                {
                    "id": node_id,
                    "type": "Route",
                    "data": {
                        "name": f"Route {i}",
                        "routes": [
                            {
                                "conditions": [
                                    {"field": f"v{i - 1}", "operator": ">", "value": "50"}
                                ],
                                "targetNodeId": skip,
                            }
                        ],
                        "fallbackNodeId": nxt,
                    },
                }
            )
            continue
        out.append(
            {
                "id": node_id,
                "type": "Default",
                "data": {
                    "name": f"Step {i}",
                    "isStart": i == 0,
                    "text": f"Question {i} for {{{{caller_name}}}}, it is {{{{now}}}}.",
                    "extractVars": [[f"v{i}", "integer", f"answer {i}", True]],
                    "condition": "The caller answered" if i % 3 == 0 else "",
                },
            }
        )
        for target, label in ((nxt, "answered"), (skip, "wants to skip"), ("n0", "start over")):
            edges.append(
                {
                    "id": f"{node_id}-{label}",
                    "source": node_id,
                    "target": target,
                    "data": {"label": label, "description": f"Take when the caller {label}"},
                }
            )
    last = f"n{nodes - 2}"
    out.append({"id": last, "type": "End Call", "data": {"name": "Bye", "text": "Goodbye."}})
    edges.append(
        {"id": "to-end", "source": f"n{nodes - 3}", "target": last, "data": {"label": "done"}}
    )
    out.append(
        {
            "id": "help",
            "type": "Default",
            "data": {
                "name": "Help",
                "isGlobal": True,
                "globalLabel": "asks for help",
                "text": "Sure.",
            },
        }
    )
    out.append({"globalConfig": {"globalPrompt": "Be brief."}})
    return {"name": "bench", "nodes": out, "edges": edges}


def decide(request: Any, rng: random.Random) -> Decision:
    options = {o.label: o.option_id for o in request.options}
    roll = rng.random()
    label = "answered" if roll < 0.8 else "wants to skip" if roll < 0.97 else "asks for help"
    return Decision(
        option_id=options.get(label),
        variables={spec.name: str(rng.randint(0, 99)) for spec in request.extract},
        condition_met=rng.random() < 0.9,
        reason="bench",
    )


def main() -> None:
    doc = parse_document(build(NODES))
    rng = random.Random(7)
    context = CallContext(call_id="bench", from_number="+14155550100", timezone="America/New_York")
    now = datetime(2025, 6, 3, 14, 0, tzinfo=UTC)
    samples: list[int] = []
    turns = 0
    for _ in range(CONVERSATIONS):
        state: EngineState = start(doc, context, now=now, variables={"caller_name": "Ada"}).state
        for turn in range(MAX_TURNS):
            if state.ended:
                break
            at = now + timedelta(seconds=turn * 5)
            begin = time.perf_counter_ns()
            asked = step(doc, state, UserSaid("forty two", at=at))
            samples.append(time.perf_counter_ns() - begin)
            state = asked.state
            pending = asked.decide
            if pending is None:
                continue
            decision = decide(pending.request, rng)
            begin = time.perf_counter_ns()
            answered = step(doc, state, Decided(decision, at=at))
            samples.append(time.perf_counter_ns() - begin)
            state = answered.state
            turns += 1
    samples.sort()

    def pct(p: float) -> float:
        return samples[min(len(samples) - 1, int(p / 100 * len(samples)))] / 1e6

    print(f"pathway: {NODES} nodes, {len(doc.edge_list())} edges; {CONVERSATIONS} conversations")
    print(f"steps timed: {len(samples)} ({turns} caller turns)")
    print(
        f"step time ms: p50 {pct(50):.3f}  p90 {pct(90):.3f}  p99 {pct(99):.3f}  "
        f"max {samples[-1] / 1e6:.3f}  mean {statistics.fmean(samples) / 1e6:.3f}"
    )
    print(f"target p99 <= 1 ms: {'met' if pct(99) <= 1.0 else 'NOT met'}")
    print(f"python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
