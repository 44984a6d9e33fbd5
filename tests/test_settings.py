"""The generation options are declared once (installation/settings.py): every configuration that carries one
takes its default, help and range from that declaration, and the command line refuses what it refuses."""
import dataclasses

import pytest

from installation import settings
from installation.collection.job import Settings
from installation.engine import EngineConfig
from installation.kiosk.config import ConfigError, KioskConfig, check_values
from installation.music.render import RenderSettings


ALL = tuple(settings.GENERATION)


@pytest.mark.parametrize("cls, shared", [(KioskConfig, ALL), (EngineConfig, ALL),
                                         (RenderSettings, ("temperature", "top_p")),
                                         (Settings, ("temperature", "top_p"))])
def test_each_configuration_takes_the_one_declaration(cls, shared):
    mine = {f.name: f for f in dataclasses.fields(cls)}
    for name in shared:
        spec, f = settings.GENERATION[name], mine[name]
        assert f.default == spec["default"], (cls.__name__, name)
        assert f.metadata["help"] == spec["help"], (cls.__name__, name)
        assert f.metadata["range"] == settings.generation(name).metadata["range"], (cls.__name__, name)


def test_the_declared_range_is_what_the_checks_refuse():
    lo, hi, lo_open = settings.generation("top_p").metadata["range"]
    assert (lo, hi, lo_open) == (0.0, 1.0, True)
    with pytest.raises(ConfigError, match="top_p"):
        KioskConfig(top_p=lo)
    with pytest.raises(ConfigError, match="temperature"):
        KioskConfig(temperature=settings.generation("temperature").metadata["range"][1] * 1.01)
    check_values(dataclasses.replace(EngineConfig(), top_p=hi))      # the edge itself is allowed


def test_the_older_camera_name_is_read_as_source_with_one_warning(tmp_path, caplog):
    from installation.kiosk import config as C
    C._warned.clear()
    for i in range(2):
        f = tmp_path / f"kiosk{i}.toml"
        f.write_text(f'camera = "{tmp_path}"\n')
        assert C.read_toml(f) == {"source": str(tmp_path)}
        assert C.build(f).picture_source == str(tmp_path)
    warnings = [r.getMessage() for r in caplog.records if "older name" in r.getMessage()]
    assert len(warnings) == 1 and "use source" in warnings[0]
    assert "camera" not in C.field_names()            # no option of that name any more: --help does not list it


def test_the_kiosk_command_line_takes_camera_as_source(caplog):
    import re
    from installation.cli import build_parser
    from installation.kiosk import config as C
    from installation.kiosk.cli_options import overrides_of
    C._warned.clear()
    parser = build_parser()
    assert overrides_of(parser.parse_args(["kiosk", "--camera", "3"]))["source"] == "3"
    assert overrides_of(parser.parse_args(["kiosk", "--camera", "3", "--source", "x.avi"]))["source"] == "x.avi"
    assert [r.getMessage() for r in caplog.records if "older name" in r.getMessage()] == [
        "--camera is the older name of --source; use --source"]
    kiosk_help = parser._subparsers._group_actions[0].choices["kiosk"].format_help()
    assert not re.search(r"--camera\b(?!-)", kiosk_help)      # not offered any more (--camera-timeout-s is)


def test_the_live_voice_samples_with_the_declared_defaults():
    import inspect
    from installation.music.decoder import Performer
    params = inspect.signature(Performer.__init__).parameters
    for name in ("temperature", "top_p"):
        assert params[name].default == settings.GENERATION[name]["default"], name
