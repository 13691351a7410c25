"""The SQLite driver: langgraph-checkpoint-sqlite's layouts (spec section 3)."""
