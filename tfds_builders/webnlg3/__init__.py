"""WebNLG 3.0 (the 2020 challenge's English release) for joint entity and relation extraction."""
