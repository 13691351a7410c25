"""The MongoDB driver: langgraph-checkpoint-mongodb's documents (spec section 6)."""
