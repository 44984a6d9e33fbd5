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
