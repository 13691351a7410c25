"""Tagged JSON → a readable view for people: classes named, messages as role/content.

The view is for display only (``show``, tables); it is not meant to be re-encoded. Ext
payloads are read as data (``[module, name, args...]``), never imported.
"""

from __future__ import annotations

from typing import Any

_MESSAGE_MODULE = "langchain_core.messages"
_ROLE_BY_TYPE = {"human": "human", "ai": "ai", "tool": "tool", "system": "system", "function": "function"}


def readable(value: Any) -> Any:
    """Readable form of a tagged JSON value."""
    if isinstance(value, list):
        return [readable(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "$ext" in value:
        return _ext(int(value["$ext"]), value["v"])
    if "$map" in value:
        return {"$map": [[readable(k), readable(v)] for k, v in value["$map"]]}
    if "$raw" in value:
        return readable(value["view"]) if "view" in value else value
    if "$bin" in value or "$bytearray" in value or "$float" in value or "$opaque" in value:
        return value
    return {k: readable(v) for k, v in value.items()}


def _ext(code: int, payload: Any) -> Any:
    if code == 7:
        return {"$delta_snapshot": readable(payload)}
    if code == 6 and isinstance(payload, list) and len(payload) >= 3:
        return {"$ndarray": {"dtype": payload[0], "shape": payload[1], "order": payload[2]}}
    if not (isinstance(payload, list) and len(payload) >= 3 and all(isinstance(p, str) for p in payload[:2])):
        return {"$ext": code, "v": readable(payload)}
    module, name, arg = payload[0], payload[1], payload[2]
    qualified = f"{module}.{name}"
    if code == 5 and module.startswith(_MESSAGE_MODULE) and isinstance(arg, dict):
        return message(arg, name)
    if code == 3 and qualified == "datetime.datetime":
        return {"$datetime": arg}
    if code == 0:
        return _single_arg(qualified, arg)
    if code == 1:
        return _pos_args(qualified, arg)
    return {"$type": qualified, **_fields(arg)}


def _single_arg(qualified: str, arg: Any) -> Any:
    if qualified in ("builtins.set", "builtins.frozenset"):
        return {f"${qualified.split('.')[1]}": readable(arg)}
    if qualified == "uuid.UUID" and isinstance(arg, str) and len(arg) == 32:
        return {"$uuid": f"{arg[:8]}-{arg[8:12]}-{arg[12:16]}-{arg[16:20]}-{arg[20:]}"}
    return {"$type": qualified, "value": readable(arg)}


def _pos_args(qualified: str, args: Any) -> Any:
    if qualified == "langgraph.types.Send" and isinstance(args, list) and len(args) >= 2:
        return {"$send": args[0], "arg": readable(args[1])}
    if qualified == "datetime.date" and isinstance(args, list) and len(args) == 3:
        return {"$date": "%04d-%02d-%02d" % tuple(args)}
    return {"$type": qualified, "args": readable(args)}


def _fields(arg: Any) -> dict[str, Any]:
    if isinstance(arg, dict) and all(isinstance(k, str) for k in arg):
        return {k: readable(v) for k, v in arg.items()}
    return {"value": readable(arg)}


def message(fields: dict[str, Any], class_name: str = "") -> dict[str, Any]:
    """A LangChain message as ``{"$message": role, content, tool_calls?, ...}``."""
    role = _ROLE_BY_TYPE.get(str(fields.get("type", "")), class_name or "message")
    out: dict[str, Any] = {"$message": role, "content": readable(fields.get("content"))}
    for key in ("name", "id", "tool_call_id", "status"):
        if fields.get(key) not in (None, "", "success"):
            out[key] = fields[key]
    calls = fields.get("tool_calls")
    if calls:
        out["tool_calls"] = [
            {"name": c.get("name"), "args": readable(c.get("args")), "id": c.get("id")}
            for c in calls
            if isinstance(c, dict)
        ]
    return out


def is_message(value: Any) -> bool:
    return isinstance(value, dict) and "$message" in value


def message_line(msg: dict[str, Any], width: int = 100) -> str:
    """One line for a readable message: ``[ai] text  → lookup(query='x')``."""
    content = msg.get("content")
    text = content if isinstance(content, str) else str(content)
    label = msg["$message"]
    if msg.get("tool_call_id"):
        label += f" {msg['tool_call_id']}"
    line = f"[{label}] {text}"
    for call in msg.get("tool_calls", []):
        args = call.get("args") or {}
        rendered = ", ".join(f"{k}={v!r}" for k, v in args.items()) if isinstance(args, dict) else repr(args)
        line += f"  → {call.get('name')}({rendered})"
    return line if len(line) <= width else line[: width - 1] + "…"
