"""Long-term stores: LangGraph's `BaseStore` API (memory, SQLite, Postgres) for what outlives a
thread — user profiles, memories, documents — with filters, TTLs and semantic search."""
