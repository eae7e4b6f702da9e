"""Tools for developing the project on one machine, shared by scripts/, bench/ and tests/ (not shipped)."""
