"""Shared input helpers of odum_live/fields.py: the NUL-character check."""

import pytest

from odum_live.fields import NulCharacterError, refuse_nul


def test_refuse_nul_text_without_nul_is_returned_unchanged():
    assert refuse_nul(" alpha ", field="strategy") == " alpha "


def test_refuse_nul_text_with_nul_raises_naming_the_field():
    with pytest.raises(NulCharacterError) as exc:
        refuse_nul("alpha\x00", field="strategy")

    assert (exc.value.field, exc.value.reason) == ("strategy", "must not contain the NUL character (\\u0000)")
    assert str(exc.value) == "strategy: must not contain the NUL character (\\u0000)"
