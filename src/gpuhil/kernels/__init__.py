"""gpuhil's own kernels. Each is a package: `spec` (configs, choose, requirements, unsupported: the
contract.KernelSpec vocabulary; pure Python), `plan` and `prepare` in its `__init__`, beside the CuTe
DSL implementation, which is imported only when a kernel is compiled or launched."""
