"""Reference implementations the suites compare against (torch, in higher precision where it matters)."""
