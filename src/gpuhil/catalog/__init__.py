"""hardware_matrix.yaml: the SKU catalog, per-SKU selections, known issues and their predicates."""
