"""Kiosk mode: the installation left running for weeks with nobody at the keyboard.

    supervisor (this process: state machines, opening hours, logs, status server)
      |-- sender  child: owns the MIDI port, the Scheduler and the open-note table (midi.sender;
      |               `play` sends through the same process)
      |-- thinker child: capture, encoder, generator; sends (due, message) pairs ahead (kiosk.thinker)

The thinker talks to the sender over a Unix socket (midi.link); both report to the
supervisor over a socketpair each (heartbeats with their figures). A thinker that dies
or stalls costs the sender nothing: it closes every sounding note at once and waits
for the next thinker. A sender that dies is replaced; the supervisor opens the named
port itself for a moment to send the panic.

Modules: config (TOML + options -> one frozen KioskConfig), hours (opening hours),
program (one child's state machine), supervisor, thinker, sources
(camera with attract-mode fallback), status (the HTTP server and its pages).
"""
