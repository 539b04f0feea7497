"""Web search: backends behind one port (Exa, Serper, Brave, SearXNG) and the chat web plugin."""
