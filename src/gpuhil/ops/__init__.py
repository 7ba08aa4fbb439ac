"""Per-op packages: each op's formats, references and problem sets in one folder."""
