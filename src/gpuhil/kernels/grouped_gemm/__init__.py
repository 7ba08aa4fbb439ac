"""Device and host code the warp-level grouped GEMMs share (the FP8 warp kernel, the NVFP4 kernel's
one build for both mainloops), one concern a module: the group scan (schedule), the cp.async ring
mainloop (ring), the register side of warp-level mma.sync (warp_mma), the bf16 epilogue (epilogue)
and the launch over the grouped grid (launcher). The wgmma kernel keeps its own TMA pipeline and
persistent schedule and takes only the group bounds, tile counts and warp prefix sum."""
