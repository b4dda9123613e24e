"""A pipeline's DAG as Graphviz DOT for `st.graphviz_chart`: a box per step, coloured by its state,
an arrow per `needs` (dashed to a `when: failure`/`always` step, labelled with a handed-over folder)."""

from __future__ import annotations

import json
from typing import Any

COLOURS = {  # fill per state: what a glance at the graph must tell
    "Completed": "#c8e6c9", "Failed": "#ffcdd2", "Crashed": "#ffcdd2", "TimedOut": "#ffcdd2",
    "Running": "#bbdefb", "Pending": "#e1f5fe", "Scheduled": "#e1f5fe", "Cancelling": "#ffe0b2",
    "Cancelled": "#ffe0b2", "Skipped": "#eeeeee", "Waiting": "#ffffff",
}


def _quoted(text: str) -> str:
    return json.dumps(text)  # a DOT string literal: quotes and backslashes escaped


def pipeline_dot(view: dict[str, Any]) -> str:
    """DOT of `view` (the shape of `GET /pipelines/{id}`)."""
    lines = ["digraph pipeline {", "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fontname="sans-serif"];', '  edge [color="#607d8b"];']
    for step in view.get("steps", []):
        state = step.get("state") or "Waiting"
        tries = f" (x{step['attempts']})" if (step.get("attempts") or 0) > 1 else ""
        label = _quoted(step["name"])[:-1] + "\\n" + _quoted(state + tries)[1:]  # two lines: name, state
        lines.append(f"  {_quoted(step['name'])} [label={label}, "
                     f"fillcolor={_quoted(COLOURS.get(state, '#ffffff'))}];")
    for step in view.get("steps", []):
        for need in step.get("needs", []):
            attributes = []
            if step.get("when") in ("failure", "always"):
                attributes.append(f"style=dashed, label={_quoted(step['when'])}")
            group = next((s.get("group") for s in view["steps"] if s["name"] == need), need)
            if group in (step.get("inputs_from") or {}):
                attributes.append(f"label={_quoted(step['inputs_from'][group])}, penwidth=2")
            lines.append(f"  {_quoted(need)} -> {_quoted(step['name'])}"
                         + (f" [{', '.join(attributes)}]" if attributes else "") + ";")
    lines.append("}")
    return "\n".join(lines)
