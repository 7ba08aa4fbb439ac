"""Device and host code the warp-level grouped GEMMs share (the FP8 warp kernel, the NVFP4 kernel),
one concern a module: the group scan (schedule), the cp.async ring mainloop (ring), the bf16
epilogue (epilogue) and the launch over the grouped grid (launcher). The wgmma kernel keeps its own
TMA pipeline and persistent schedule and takes only the group bounds and the warp prefix sum."""
