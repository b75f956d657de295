"""minidl.config: one field per setting of the table, written out, with the table's default."""

import ast
import typing
from dataclasses import fields
from pathlib import Path

import pytest

from minidl import Config, hparams

TYPES = {"float": float, "int": int, "choice": str, "bool": bool, "widths": tuple[int, ...],
         "set": tuple[str, ...]}


def test_config_has_one_field_per_setting_of_the_table_in_its_order():
    assert [f.name for f in fields(Config)] == hparams.names("config")


def test_each_field_has_the_tables_type_and_default():
    hints = typing.get_type_hints(Config)
    for f in fields(Config):
        setting = hparams.TABLE[f.name]
        assert hints[f.name] == TYPES[setting.kind], f.name
        assert f.default == setting.default, f.name


def test_the_fields_are_written_out_for_editors_and_type_checkers():
    source = (Path(__file__).resolve().parent.parent / "minidl" / "config.py").read_text()
    [cls] = [n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)]
    declared = [n.target.id for n in cls.body if isinstance(n, ast.AnnAssign)]
    assert declared == hparams.names("config")


@pytest.mark.parametrize("name, value, message", [
    ("lr", -1.0, r"Invalid learning rate \(lr\): -1.0"),
    ("hidden", [25, 0], "hidden layer widths"),
    ("activation", "gelu", "Invalid activation"),
])
def test_a_bad_value_is_refused_by_the_table_on_construction(name, value, message):
    with pytest.raises(ValueError, match=message):
        Config(**{name: value})


def test_values_are_brought_to_their_type():
    config = Config(hidden=[8, 8], batch_size=20.0)
    assert config.hidden == (8, 8) and config.batch_size == 20 and type(config.batch_size) is int
    assert config.replace(lr=0.5).lr == 0.5 and config.lr == hparams.TABLE["lr"].default
