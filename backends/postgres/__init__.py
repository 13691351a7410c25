"""The PostgreSQL driver: langgraph-checkpoint-postgres's layouts (spec section 4), and its server-side prune."""
