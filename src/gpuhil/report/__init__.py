"""What gpuhil tells people: the gate decision table (and, per run, the report)."""
