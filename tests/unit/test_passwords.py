"""Password hashing: argon2id with the library's recommended parameters, never the password."""

import pytest

from swarmsync.auth.passwords import dummy_hash, hash_password, verify_password


def test_passwords_are_stored_as_salted_argon2id_hashes():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first.startswith("$argon2id$") and "m=65536,t=3" in first
    assert first != second and "correct horse" not in first
    assert verify_password(first, "correct horse")
    assert not verify_password(first, "correct horsf")
    assert not verify_password("not a hash", "correct horse")
    assert not verify_password(dummy_hash(), "")


def test_too_short_and_too_long_passwords_are_refused():
    with pytest.raises(ValueError, match="at least 8"):
        hash_password("short")
    with pytest.raises(ValueError, match="at most 1024"):
        hash_password("x" * 1025)
    assert not verify_password(hash_password("long enough"), "x" * 5000)
