"""gpuhil's own kernels. Each is a package: `spec` (configs, Requirements, selection; pure Python)
beside the CuTe DSL implementation, which is imported only when a kernel is compiled or launched."""
