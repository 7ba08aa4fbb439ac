"""Performance measurement: the timer every benchmark uses, device ceilings, clock/throttle watch."""
