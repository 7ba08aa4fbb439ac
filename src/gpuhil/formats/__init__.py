"""Number formats gpuhil kernels and references share, with the sources of their facts."""
