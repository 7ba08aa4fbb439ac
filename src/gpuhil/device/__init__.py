"""What this machine is and can do: the probe, capabilities, emulation, torch build facts, GPU pinning."""
