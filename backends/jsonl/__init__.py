"""The JSONL export file as a store (docs/format.md)."""
