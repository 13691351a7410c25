"""Typed payloads ``(type, bytes)`` → tagged JSON, dispatching on the serializer's tag.

Never executes stored data: ``pickle`` is never unpickled, msgpack ext values are never
imported (``tagged``), and anything unknown is carried as opaque base64 with its tag,
never dropped and never shown as ``null``.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from ckpt.backends.core.base import Payload
from ckpt.backends.core.errors import BackendUnavailableError, DataError, UsageError
from ckpt.formats import tagged

AES_KEY_ENV = "LANGGRAPH_AES_KEY"


class PayloadError(DataError):
    """A payload that claims a format but cannot be read in it (corrupt, wrong key)."""


def opaque(type_tag: str, data: bytes, reason: str) -> dict[str, Any]:
    """The tagged form of a payload ckpt must not or cannot decode."""
    return {"$opaque": type_tag, "data": tagged.b64(data), "reason": reason}


def aes_key_from(option: str | None) -> bytes | None:
    """The AES key from ``--aes-key`` or ``LANGGRAPH_AES_KEY`` (same rules as LangGraph)."""
    text = option if option is not None else os.environ.get(AES_KEY_ENV)
    if not text:
        return None
    key = text.encode("utf-8")
    if len(key) not in (16, 24, 32):
        raise UsageError(f"the AES key must be 16, 24 or 32 bytes long, got {len(key)}")
    return key


class PayloadDecoder:
    """Decodes payloads into tagged JSON; holds the optional AES key."""

    def __init__(self, aes_key: bytes | None = None) -> None:
        self.aes_key = aes_key

    def decode(self, payload: Payload) -> Any:
        """Tagged JSON for ``payload``; raises ``PayloadError`` when it is corrupt."""
        type_tag, data = payload.type, payload.data
        if "+" in type_tag:
            return self._decrypted(type_tag, data)
        if type_tag == "msgpack":
            try:
                return tagged.decode_exact(data)
            except ValueError as exc:
                raise PayloadError(str(exc)) from exc
        if type_tag == "null":
            return None
        if type_tag == "bytes":
            return {"$bin": tagged.b64(data)}
        if type_tag == "bytearray":
            return {"$bytearray": tagged.b64(data)}
        if type_tag == "json":
            try:
                return orjson.loads(data) if data else None
            except orjson.JSONDecodeError as exc:
                raise PayloadError(f"malformed JSON: {exc}") from exc
        if type_tag == "pickle":
            return opaque(type_tag, data, "pickle is never unpickled: loading it can run arbitrary code")
        return opaque(type_tag, data, f"unknown serialization type {type_tag!r}")

    def check(self, payload: Payload) -> None:
        """Raise ``PayloadError`` when ``decode(payload)`` would, without building the tagged JSON.

        Opaque payloads (pickle, unknown tags, encrypted without a key) are never looked into,
        as in ``decode``. ``doctor`` only needs the verdict, and this is C work per payload.
        """
        type_tag, data = payload.type, payload.data
        if "+" in type_tag:
            inner, _, cipher = type_tag.partition("+")
            if cipher == "aes" and self.aes_key is not None:
                self.check(Payload(inner, decrypt_aes(self.aes_key, data)))
            return
        try:
            if type_tag == "msgpack":
                tagged.check(data)
            elif type_tag == "json" and data:
                orjson.loads(data)
        except orjson.JSONDecodeError as exc:  # a ValueError too: caught first
            raise PayloadError(f"malformed JSON: {exc}") from exc
        except ValueError as exc:
            raise PayloadError(str(exc)) from exc

    def _decrypted(self, type_tag: str, data: bytes) -> Any:
        inner, _, cipher = type_tag.partition("+")
        if cipher != "aes":
            return opaque(type_tag, data, f"unknown cipher {cipher!r}")
        if self.aes_key is None:
            return opaque(type_tag, data, f"encrypted; pass --aes-key or set {AES_KEY_ENV} to read it")
        return self.decode(Payload(inner, decrypt_aes(self.aes_key, data)))


def decrypt_aes(key: bytes, data: bytes) -> bytes:
    """Decrypt EncryptedSerializer's AES-EAX output: ``nonce(16) ‖ tag(16) ‖ ciphertext``."""
    try:
        from Crypto.Cipher import AES
    except ImportError as exc:
        raise BackendUnavailableError(
            "reading encrypted payloads needs the 'pycryptodome' package: pip install 'langgraph-ckpt[aes]'"
        ) from exc
    if len(data) < 32:
        raise PayloadError("encrypted payload is shorter than its nonce and tag")
    nonce, tag, ciphertext = data[:16], data[16:32], data[32:]
    try:
        plain: bytes = AES.new(key, AES.MODE_EAX, nonce=nonce).decrypt_and_verify(ciphertext, tag)
    except ValueError as exc:
        raise PayloadError(f"cannot decrypt payload ({exc}; wrong AES key?)") from exc
    return plain
