"""``ckpt list`` on MongoDB answers from one ``$group`` over the key fields: it reads no payload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pymongo

from tests.conftest import Cli, sqlite_url
from tests.servers import mongo_database


def test_mongodb_list_reads_no_payload(cli: Cli, official_db: Path) -> None:
    with mongo_database() as url:
        assert cli("migrate", sqlite_url(official_db), url).exit_code == 0
        expected = [
            json.loads(line) for line in cli("list", sqlite_url(official_db), "-o", "jsonl").stdout.splitlines()
        ]
        client: pymongo.MongoClient[Any] = pymongo.MongoClient(url)
        # Payloads gone: a list that read them would skip every document as malformed.
        client.get_default_database()["checkpoints"].update_many({}, {"$unset": {"checkpoint": "", "metadata": ""}})
        client.close()
        result = cli("list", url, "-o", "jsonl")
        assert result.exit_code == 0, result.output
        assert [json.loads(line) for line in result.stdout.splitlines()] == expected
        narrowed = cli("list", url, "--thread", "thread-[12]", "-o", "jsonl").stdout.splitlines()
        assert [json.loads(line)["thread_id"] for line in narrowed] == ["thread-1", "thread-2"]
