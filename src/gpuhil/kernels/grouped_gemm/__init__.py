"""Device and host code the grouped GEMMs share, one concern a module. The warp-level kernels (the
FP8 warp kernel, the NVFP4 kernel's one build for both mainloops): the group scan (schedule), the
cp.async ring mainloop (ring), the register side of warp-level mma.sync (warp_mma), the bf16
epilogue (epilogue) and the launch over the grouped grid (launcher). The warpgroup-MMA kernels (FP8
and NVFP4 on sm_90a) keep their own pipelines and share the persistent schedule over per-group tile
starts (persistent) and the predicated 16-byte stores from the accumulator layout (quad_store)."""
