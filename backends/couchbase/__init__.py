"""The Couchbase driver: langgraph-checkpointer-couchbase's documents (spec section 7)."""
