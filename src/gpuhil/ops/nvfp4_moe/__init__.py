"""NVFP4 MoE: the NVFP4 format, its fp32 reference and the MoE layer reference built on it."""
