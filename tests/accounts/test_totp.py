import pyotp

from kiku.accounts import totp

NOW = 1_800_000_015.0


def test_current_code_is_accepted_and_names_its_step() -> None:
    secret = totp.new_secret()
    code = pyotp.TOTP(secret).at(int(NOW))
    assert totp.matching_step(secret, code, NOW, None) == int(NOW) // 30


def test_one_step_of_drift_either_way_is_accepted() -> None:
    secret = totp.new_secret()
    for offset in (-30, 30):
        code = pyotp.TOTP(secret).at(int(NOW + offset))
        assert totp.matching_step(secret, code, NOW, None) is not None


def test_code_two_steps_old_is_refused() -> None:
    secret = totp.new_secret()
    code = pyotp.TOTP(secret).at(int(NOW - 60))
    assert totp.matching_step(secret, code, NOW, None) is None


def test_a_code_cannot_be_replayed_once_its_step_was_used() -> None:
    secret = totp.new_secret()
    code = pyotp.TOTP(secret).at(int(NOW))
    step = totp.matching_step(secret, code, NOW, None)
    assert totp.matching_step(secret, code, NOW, step) is None


def test_garbage_is_refused() -> None:
    secret = totp.new_secret()
    assert totp.matching_step(secret, "abc123", NOW, None) is None
    assert totp.matching_step(secret, "", NOW, None) is None


def test_provisioning_uri_names_issuer_and_account() -> None:
    uri = totp.provisioning_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "dev@example.com")
    assert uri.startswith("otpauth://totp/kiku:dev%40example.com?")
    assert "secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" in uri
    assert "issuer=kiku" in uri
