"""A note leaves the machine: the scheduler, the sender process and its sinks (a MIDI port, a recording, FluidSynth)."""
