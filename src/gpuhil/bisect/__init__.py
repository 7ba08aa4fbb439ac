"""`gpuhil bisect`: the first commit at which a test fails or a perf series slows down (search.py: the
search and its rules; step.py: one step's run and verdict; git.py: the repository and the bisect's
worktree; state.py: the resumable state file; target.py: the CASE argument)."""
