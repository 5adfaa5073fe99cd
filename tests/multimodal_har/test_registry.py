import pytest

from multimodal_har.registry import Registry


class Thing:
    def __init__(self, *, size: int = 1):
        self.size = size


def test_register_build_and_errors():
    reg = Registry("widget")
    reg.register("thing", Thing)
    assert reg.build("thing", size=3).size == 3
    with pytest.raises(ValueError, match="widget 'thing' is already registered"):
        reg.register("thing", Thing)
    with pytest.raises(ValueError, match=r"unknown widget 'thang'; valid choices: thing"):
        reg.get("thang")


def test_decorator_and_lazy_entries():
    reg = Registry("widget")

    @reg.register("deco")
    class Deco:
        pass

    reg.register("od", "collections:OrderedDict")  # imported only when asked for
    assert reg.get("deco") is Deco
    from collections import OrderedDict

    assert reg.get("od") is OrderedDict
    assert reg.names() == ["deco", "od"] and "od" in reg and len(reg) == 2
