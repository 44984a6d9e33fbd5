#!/usr/bin/env python3
"""Image-to-music installation: the one entry point.

    python run_installation.py                     # play: camera 0, else the bundled artworks, to MIDI
    python run_installation.py play --source FOLDER --port "FLUID"
    python run_installation.py render IMG... --out DIR --seconds 30 --seed 1
    python run_installation.py ports               # list MIDI ports
"""
import sys

from installation.cli import main

if __name__ == "__main__":
    sys.exit(main())
