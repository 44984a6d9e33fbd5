"""Patches: how the generated performance reaches the instruments (see docs/PATCHES.md).

    from installation.patches import load_patch
    patch = load_patch("gm-piano")          # a name in patches/, or a path to a .toml
    patch = load_patch(None)                # the default (General MIDI piano)

``load_patch`` raises ``UserError`` (one line: file, key, what is wrong) for a bad patch.
The pieces: patch (loading, checking), shaping and routing (notes), cc (emotion as
MIDI CC), clock (MIDI clock out/in), osc, inputs (knobs steer valence/arousal),
live (all of it next to the engine), audio (render to WAV/FLAC), link (Ableton Link, optional).
FluidSynth as a live sink is with the other sinks, in installation/midi/synth.py.
"""
from installation.patches.patch import DEFAULT_PATCH, Patch, available_patches, load_patch, parse_patch

__all__ = ["DEFAULT_PATCH", "Patch", "available_patches", "load_patch", "parse_patch"]
