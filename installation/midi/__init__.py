"""A note leaves the machine: the scheduler and the MIDI ports."""
