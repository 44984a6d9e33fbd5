"""Image-to-music installation engine: a picture's mood, played live as piano MIDI.

Where things happen (one idea per module):
    capture.py    frames come in (camera, video, image, folder)
    encoder.py    a frame becomes a number (ONNX image encoder)
    scene.py      numbers are smoothed; scene changes are found; conditioning crossfades
    decoder.py    a number becomes events (ONNX step decoder + sampler)
    events.py     events become notes (the vocabulary, MIDI <-> events)
    generator.py  events become timed MIDI messages, ahead of playback
    scheduler.py  timed messages are sent on time; every note-on gets its note-off
    midi_io.py    a note leaves the machine (rtmidi ports, virtual ports, recording)
    engine.py     the threads, wired together; render.py the offline path
"""
