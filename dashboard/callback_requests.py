"""The shape of a request to Dash's callback route, checked before Dash reads it.

Dash indexes the body as its own page sends it (``body["output"]``, ``item["id"]``) and answers
anything else with an HTML 500. A request that is not one of this app's callbacks gets a 400 in
the API's error shape instead.
"""

from __future__ import annotations

CALLBACK_PATH = "/_dash-update-component"
_LISTS = ("inputs", "state", "changedPropIds")


def _dependency_problems(name: str, items) -> list[str]:
    problems = []
    for i, item in enumerate(items):
        group = item if isinstance(item, list) else [item]
        for dep in group:
            if not (isinstance(dep, dict) and "id" in dep and isinstance(dep.get("property"), str)):
                problems.append(f"{name}[{i}] must be an object with an id and a property, or a list of them")
                break
    return problems


def callback_request_problems(body, callbacks) -> list[str]:
    """What keeps ``body`` from being a call of one of ``callbacks`` (Dash's callback map); [] if nothing."""
    if not isinstance(body, dict):
        return ["the body must be a JSON object as the page sends it"]
    output = body.get("output")
    if not isinstance(output, str):
        return ['"output" must be the text id of a callback\'s output']
    if output not in callbacks:
        return [f"no callback has the output {output[:200]!r}"]
    problems = []
    for name in _LISTS:
        if name in body and not isinstance(body[name], list):
            problems.append(f'"{name}" must be a list')
    if "outputs" in body and not isinstance(body["outputs"], (list, dict)):
        problems.append('"outputs" must be an object or a list')
    if problems:
        return problems
    if not all(isinstance(prop, str) for prop in body.get("changedPropIds", [])):
        problems.append('"changedPropIds" must be a list of text')
    for name in ("inputs", "state"):
        problems += _dependency_problems(name, body.get(name, []))
    return problems
