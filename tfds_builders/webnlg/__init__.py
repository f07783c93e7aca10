"""WebNLG (CopyRE split) for joint entity and relation extraction."""
