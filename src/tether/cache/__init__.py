"""Node caching (LangGraph's `langgraph.cache`): where the writes of a node with a
`CachePolicy` are kept by input, so a later task with the same input reuses them."""
