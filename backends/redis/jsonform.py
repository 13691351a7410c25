"""JsonPlus msgpack ↔ the RedisSaver JSON form (spec §5.1), without importing any stored class.

RedisSaver stores values as JSON: LangChain messages as lc:1 envelopes, sets and dataclasses as
lc:2 constructor envelopes, ``Send``/``Interrupt``/``_DeltaSnapshot`` as ``__send__``/
``__interrupt__``/``__delta_snapshot__`` markers and nested bytes as ``__bytes__``. Every other
store keeps JsonPlus msgpack with ext values. This module maps one onto the other as data.

The JSON form cannot say everything msgpack can (a datetime becomes an ISO string, a UUID a
string, an Enum its value, a tuple a list): each such loss is counted in ``Losses`` so that
``migrate`` reports it instead of hiding it. Nothing is lost in the other direction beyond what
RedisSaver itself already lost.
"""

from __future__ import annotations

import base64
import math
from collections import Counter
from typing import Any

import orjson
import ormsgpack

from ckpt.backends.core.msgpack_raw import RawExt, pack, unpack

MESSAGE_MODULES = {
    **{f"{n}{c}": f"langchain_core.messages.{m}" for n, m in (
        ("HumanMessage", "human"), ("AIMessage", "ai"), ("ToolMessage", "tool"), ("SystemMessage", "system"),
        ("FunctionMessage", "function"), ("ChatMessage", "chat"),
    ) for c in ("", "Chunk")},
    "RemoveMessage": "langchain_core.messages.modifier",
}  # fmt: skip
_LC_MESSAGES = ["langchain", "schema", "messages"]
_UNSET: dict[str, Any] = {
    "additional_kwargs": {},
    "response_metadata": {},
    "name": None,
    "id": None,
    "usage_metadata": None,
}
_INTERRUPT = ("langgraph.types", "Interrupt")
_SEND = ("langgraph.types", "Send")


class Losses(Counter[str]):
    """What a conversion into Redis JSON could not keep, by kind (e.g. ``"datetime → ISO string"``)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- msgpack → Redis JSON ----------------------------------------------------------------


class ToRedis:
    """One conversion pass; remembers whether bytes had to become ``__bytes__`` markers."""

    def __init__(self, losses: Losses) -> None:
        self.losses = losses
        self.had_bytes = False

    def value(self, obj: Any) -> Any:
        if isinstance(obj, RawExt):
            return self._ext(obj.code, obj.payload())
        if isinstance(obj, bytes):
            self.had_bytes = True
            return {"__bytes__": _b64(obj)}
        if isinstance(obj, float) and not math.isfinite(obj):
            self.losses["NaN/Infinity → null"] += 1
            return None
        if isinstance(obj, list):
            return [self.value(item) for item in obj]
        if isinstance(obj, dict):
            if not all(isinstance(k, str) for k in obj):
                self.losses["non-string map key → string"] += 1
            return {k if isinstance(k, str) else _key_text(k): self.value(v) for k, v in obj.items()}
        return obj

    def _ext(self, code: int, payload: Any) -> Any:
        if code == 7:
            return {"__delta_snapshot__": True, "value": self.value(payload)}
        if not (isinstance(payload, list) and len(payload) >= 3 and isinstance(payload[0], str)):
            self.losses[f"unrecognised ext {code} → null"] += 1
            return None
        module, name, arg = payload[0], payload[1], payload[2]
        if code in (4, 5):
            return self._model(module, name, arg)
        if code == 2:
            if (module, name) == _INTERRUPT and isinstance(arg, dict):
                return {"__interrupt__": True, "value": self.value(arg.get("value")), "id": arg.get("id")}
            return _envelope(module, name, kwargs=self.value(arg))
        if code == 1:
            return self._positional(module, name, arg)
        if code == 0:
            return self._single(module, name, arg)
        if code == 3 and isinstance(arg, str):
            self.losses["datetime → ISO string"] += 1
            return arg
        self.losses[f"{module}.{name} → null"] += 1
        return None

    def _model(self, module: str, name: str, fields: Any) -> Any:
        if module.startswith("langchain_core.messages") and isinstance(fields, dict):
            kwargs = self._message_kwargs(fields)
            return {"lc": 1, "type": "constructor", "id": [*_LC_MESSAGES, name], "kwargs": kwargs}
        self.losses["pydantic model → lc:2 envelope (RedisSaver revives it as a dict)"] += 1
        return _envelope(module, name, kwargs=self.value(fields))

    def _message_kwargs(self, fields: dict[str, Any]) -> dict[str, Any]:
        """A message's fields minus those at their default (LangChain's own dump leaves those out)."""
        return {k: self.value(v) for k, v in fields.items() if _UNSET.get(k, ...) != v}

    def _positional(self, module: str, name: str, args: Any) -> Any:
        if (module, name) == _SEND and isinstance(args, list) and len(args) >= 2:
            if len(args) > 2:
                self.losses["Send timeout dropped"] += 1
            return {"__send__": True, "node": args[0], "arg": self.value(args[1])}
        if (module, name) == ("datetime", "date") and isinstance(args, list) and len(args) == 3:
            self.losses["date → ISO string"] += 1
            return "%04d-%02d-%02d" % tuple(args)
        self.losses[f"{module}.{name} → lc:2 envelope"] += 1
        return _envelope(module, name, args=self.value(args))

    def _single(self, module: str, name: str, arg: Any) -> Any:
        if (module, name) in (("builtins", "set"), ("builtins", "frozenset")):
            if name == "frozenset":
                self.losses["frozenset → set"] += 1
            return _envelope("builtins", "set", args=[self.value(arg)])
        if (module, name) == ("uuid", "UUID") and isinstance(arg, str) and len(arg) == 32:
            self.losses["UUID → string"] += 1
            return f"{arg[:8]}-{arg[8:12]}-{arg[12:16]}-{arg[16:20]}-{arg[20:]}"
        kind = "Enum" if module not in ("decimal", "collections", "ipaddress", "zoneinfo", "pathlib") else name
        self.losses[f"{kind} → its plain value"] += 1
        return self.value(arg)


ExtCache = dict[tuple[int, bytes], tuple[Any, "Losses | None"]]
"""Ext values already converted, as encoded JSON (``orjson.Fragment``) with what their conversion
could not keep (``None``: nothing), by ``(code, packed payload)``."""
_CACHE_SIZE = 4096
_FRAGMENT: Any = getattr(orjson, "Fragment", None)  # orjson >= 3.10


class _Inexact(ValueError):
    """Raised inside the ext hook: this value must take the exact path."""


class _Decoded(ToRedis):
    """``ToRedis`` run inside ormsgpack's ext hook: plain values are decoded in C and reach it converted.

    A thread's checkpoints repeat its messages (each holds the whole list so far), so a converted
    ext value is kept, encoded, in ``cache`` with its losses: a repeat costs a hash and a lookup
    and counts the same losses again, as the exact path counts each occurrence. The conversion
    and its losses are a function of the packed bytes alone. Losses of nested ext values are
    counted once, in the value that holds them (each hook counts into its own ``Losses`` and
    hands it to the enclosing one).
    """

    def __init__(self, cache: ExtCache) -> None:
        super().__init__(Losses())
        self.cache = cache

    def value(self, obj: Any) -> Any:
        return obj

    def hook(self, code: int, data: bytes) -> Any:
        key = (code, data)
        known = self.cache.get(key)
        if known is not None:
            encoded, lost = known
            if lost:
                self.losses.update(lost)
            return encoded
        outer, self.losses = self.losses, Losses()
        try:
            converted = self._ext(code, ormsgpack.unpackb(data, ext_hook=self.hook))
        finally:
            lost, self.losses = self.losses, outer
        outer.update(lost)
        if _FRAGMENT is None:
            return converted
        try:
            encoded = _FRAGMENT(orjson.dumps(converted))
        except TypeError:  # bytes inside: only the exact path knows their form
            raise _Inexact from None
        if len(self.cache) >= _CACHE_SIZE:
            self.cache.clear()  # threads come one after another: old entries are rarely wanted again
        self.cache[key] = (encoded, lost or None)
        return encoded

    def _message_kwargs(self, fields: dict[str, Any]) -> dict[str, Any]:
        kwargs = dict(fields)  # the same keys in the same order as the comprehension above, in fewer steps
        for key, default in _UNSET.items():
            if key in kwargs and kwargs[key] == default:
                del kwargs[key]
        return kwargs


def _may_hold_non_finite(data: bytes) -> bool:
    """A float64/float32 marker followed by a byte whose exponent bits could all be ones (NaN, ±Infinity).

    A match anywhere else in the bytes only sends the value down the exact path. Single-byte
    ``in`` is a memchr: most checkpoints hold neither marker and cost a microsecond here.
    """
    for marker in (b"\xcb", b"\xca"):
        at = data.find(marker)
        while at >= 0:
            if data[at + 1 : at + 2] in (b"\x7f", b"\xff"):
                return True
            at = data.find(marker, at + 1)
    return False


def decoded_for_redis(data: bytes, cache: ExtCache, losses: Losses) -> Any:
    """``ToRedis(losses).value(unpack(data))``, decoded in C; ``None`` when that shortcut could differ.

    Ext values come out as ``orjson.Fragment`` (encode the result with ``orjson.dumps`` only).
    What the ext values' conversion cannot keep (datetimes, pydantic models, …) is counted into
    ``losses`` as ``ToRedis`` counts it; pass a fresh ``Losses`` and merge it only when the
    result is used (a caller that falls back to the exact path counts there instead). The
    shortcut could differ where ``ToRedis`` rewrites a plain value: non-finite floats
    (``_may_hold_non_finite``), map keys that are not strings (ormsgpack refuses them without
    ``OPT_NON_STR_KEYS``), and bytes in an ext value. Bytes outside ext values come out as
    ``bytes``, which ``orjson.dumps`` refuses: callers take the exact path on its ``TypeError``.
    (Lossy values were sent down the exact path too until issue #24: ~70% of a realistic store's
    checkpoints, with datetimes and pydantic models, were converted in Python there.)
    """
    if _may_hold_non_finite(data):
        return None
    decoder = _Decoded(cache)
    try:
        value = ormsgpack.unpackb(data, ext_hook=decoder.hook)
    except (ormsgpack.MsgpackDecodeError, TypeError, ValueError):  # ValueError: also _Inexact from the hook
        return None
    losses.update(decoder.losses)
    return value


def bytes_marker(value: Any) -> Any:
    """orjson's ``default``: bytes as ``ToRedis`` marks them; anything else stays refused."""
    if type(value) is bytes:
        return {"__bytes__": _b64(value)}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _key_text(key: Any) -> str:
    return orjson.dumps(key).decode() if not isinstance(key, bytes) else _b64(key)


def _envelope(module: str, name: str, *, args: Any = None, kwargs: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"lc": 2, "type": "constructor", "id": [*module.split("."), name]}
    if args is not None:
        out["args"] = args
    if kwargs is not None:
        out["kwargs"] = kwargs
    return out


def write_value_to_redis(
    type_tag: str, data: bytes, losses: Losses, cache: ExtCache | None = None
) -> tuple[str, bytes]:
    """A pending-write payload as RedisSaver would store it (before its base64 step)."""
    if type_tag != "msgpack":
        return type_tag, data  # null, bytes, bytearray, json, pickle, encrypted: stored as they are
    found = Losses()
    fast = decoded_for_redis(data, {} if cache is None else cache, found)
    if fast is not None:
        try:
            encoded = orjson.dumps(fast)
        except TypeError:  # bytes inside (or anything orjson refuses)
            try:
                orjson.dumps(fast, default=bytes_marker)
            except TypeError:  # not bytes alone: the exact path decides
                pass
            else:  # bytes, and nothing else orjson refuses: the exact path's answer, without its walk
                return "msgpack", data
        else:
            losses.update(found)
            return "json", encoded
    converter = ToRedis(Losses())
    converted = converter.value(unpack(data))
    if converter.had_bytes:
        return "msgpack", data  # RedisSaver falls back to msgpack for nested bytes: so do we, exactly
    losses.update(converter.losses)
    return "json", orjson.dumps(converted)


# -- Redis JSON → msgpack ----------------------------------------------------------------


def from_redis(value: Any) -> Any:
    """Redis JSON → objects that ``pack`` turns into JsonPlus msgpack (ext values as ``RawExt``)."""
    if isinstance(value, list):
        return [from_redis(item) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and isinstance(value.get("__bytes__"), str):
        return base64.b64decode(value["__bytes__"])
    if value.get("__send__") is True and "node" in value:
        return _ext(1, ["langgraph.types", "Send", [value["node"], from_redis(value.get("arg"))]])
    if value.get("__interrupt__") is True and "value" in value:
        return _ext(2, ["langgraph.types", "Interrupt", {"value": from_redis(value["value"]), "id": value.get("id")}])
    if value.get("__delta_snapshot__") is True:
        return RawExt(7, pack(from_redis(value.get("value"))))
    if value.get("type") == "constructor" and value.get("lc") in (1, 2) and _ident(value.get("id")):
        return _constructor(value)
    return {k: from_redis(v) for k, v in value.items()}


_LC_SEND = ["langgraph", "types", "Send"]


def _ident(ident: Any) -> bool:
    return isinstance(ident, list) and len(ident) >= 2 and all(isinstance(p, str) for p in ident)


def _constructor(value: dict[str, Any]) -> Any:
    ident: list[str] = value["id"]
    kwargs = from_redis(value.get("kwargs") or {})
    if value["lc"] == 1 and ident[:-1] == _LC_MESSAGES and ident[-1] in MESSAGE_MODULES:
        return _ext(5, [MESSAGE_MODULES[ident[-1]], ident[-1], kwargs, "model_validate_json"])
    if ident == ["builtins", "set"]:
        args = value.get("args") or [[]]
        items = args[0] if args else []
        legacy = (value.get("kwargs") or {}).get("__set_items__")
        return _ext(0, ["builtins", "set", from_redis(legacy if legacy is not None else items)])
    module, name = ".".join(ident[:-1]), ident[-1]
    if ident == _LC_SEND and isinstance(kwargs, dict) and "node" in kwargs:
        # RedisSaver < 0.2 wrote Sends as lc:2 envelopes; JsonPlus packs a Send as [node, arg]
        return _ext(1, ["langgraph.types", "Send", [kwargs["node"], kwargs.get("arg")]])
    if "args" in value and not value.get("kwargs"):
        return _ext(1, [module, name, from_redis(value["args"])])
    return _ext(2, [module, name, kwargs])


def _ext(code: int, payload: list[Any]) -> RawExt:
    return RawExt(code, pack(payload))


def write_value_from_redis(type_tag: str, data: bytes) -> tuple[str, bytes]:
    """A stored Redis write payload (already base64-decoded) as JsonPlus ``(type, bytes)``."""
    if type_tag != "json":
        return type_tag, data
    return "msgpack", pack(from_redis(orjson.loads(data)))
