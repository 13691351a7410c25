"""The Redis driver: langgraph-checkpoint-redis's JSON documents, indexes and keys (spec section 5)."""
