"""Every Block: described fields, a `.load("default")` example, secrets kept secret."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from blocks import ALL_BLOCKS

SECRET_WORDS = ("password", "token", "secret", "api_key", "service_account", "private_key")

EVERY_BLOCK = ALL_BLOCKS


@pytest.mark.parametrize("block_type", EVERY_BLOCK, ids=lambda b: b.__name__)
def test_block_is_documented_for_the_ui(block_type):
    assert block_type._block_type_name and block_type._description
    assert f'{block_type.__name__}.load("default")' in (block_type.__doc__ or "")
    for name, field in block_type.model_fields.items():
        assert field.description, f"{block_type.__name__}.{name} has no description"
        assert field.title, f"{block_type.__name__}.{name} has no title (the UI would show {name!r})"


@pytest.mark.parametrize("block_type", EVERY_BLOCK, ids=lambda b: b.__name__)
def test_secret_fields_are_secret_str(block_type):
    for name, field in block_type.model_fields.items():
        if any(word in name for word in SECRET_WORDS):
            assert SecretStr in (getattr(field.annotation, "__args__", None) or (field.annotation,)), (
                f"{block_type.__name__}.{name} must be a SecretStr"
            )


def test_one_list_of_block_types_serves_the_stack_and_the_sandbox(tmp_path):
    """`make up` and `doctor` (block_types) and the sandbox's blocks cover the same types: blocks/ owns the list."""
    from cli.bootstrap import block_types
    from sandbox.blocks import sandbox_blocks

    required, optional = block_types()
    assert [*required, *optional] == ALL_BLOCKS
    assert set(sandbox_blocks(tmp_path / "sandbox")) == set(ALL_BLOCKS)
