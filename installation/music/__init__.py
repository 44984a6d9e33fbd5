"""Instructions become events and events timed notes: decoders, sampling, the generator, offline render."""
