"""RFC 6238 Appendix B test vectors, through the package's own code path.

Each vector is checked on a real ``TOTPDevice`` row (8 digits, the vector's algorithm, its secret
stored base32 and encrypted) with ``verification.check`` at the vector's instant, the clock
frozen there, and a window of 0 so that only the vector's own step can match; the step it
accepted is the one recorded on the row.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest
import time_machine
from django.test import override_settings

from drf_totp import exceptions, otp
from drf_totp.models import TOTPDevice
from drf_totp.verification import check

# RFC 6238, Appendix B: the seeds are ASCII digits repeated to the hash's block length.
SEEDS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}

# (Unix time, TOTP, mode), copied from the RFC's table.
VECTORS = [
    (59, "94287082", "SHA1"),
    (59, "46119246", "SHA256"),
    (59, "90693936", "SHA512"),
    (1111111109, "07081804", "SHA1"),
    (1111111109, "68084774", "SHA256"),
    (1111111109, "25091201", "SHA512"),
    (1111111111, "14050471", "SHA1"),
    (1111111111, "67062674", "SHA256"),
    (1111111111, "99943326", "SHA512"),
    (1234567890, "89005924", "SHA1"),
    (1234567890, "91819424", "SHA256"),
    (1234567890, "93441116", "SHA512"),
    (2000000000, "69279037", "SHA1"),
    (2000000000, "90698825", "SHA256"),
    (2000000000, "38618901", "SHA512"),
    (20000000000, "65353130", "SHA1"),
    (20000000000, "77737706", "SHA256"),
    (20000000000, "47863826", "SHA512"),
]

# 1111111109 and 1111111111 fall in consecutive steps (37037036 and 37037037): the RFC's own
# codes for one are the neighbouring step's codes for the other.
NEIGHBOURS = [
    (1111111109, "14050471", "SHA1"),
    (1111111109, "67062674", "SHA256"),
    (1111111109, "99943326", "SHA512"),
    (1111111111, "07081804", "SHA1"),
    (1111111111, "68084774", "SHA256"),
    (1111111111, "25091201", "SHA512"),
]


def vector_id(vector: tuple[int, str, str]) -> str:
    return f"{vector[2]}-{vector[0]}"


@pytest.fixture
def rfc_device(user, make_device):
    """``rfc_device(algorithm)``: alice's confirmed 8-digit device with the RFC seed."""

    def make(algorithm: str) -> TOTPDevice:
        secret = base64.b32encode(SEEDS[algorithm]).decode("ascii")
        epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
        return make_device(user, secret=secret, digits=8, algorithm=algorithm, created_at=epoch)

    return make


def at(unix_time: int) -> datetime:
    return datetime.fromtimestamp(unix_time, tz=timezone.utc)


@override_settings(TOTP_VALID_WINDOW=0)
@pytest.mark.parametrize("unix_time,code,algorithm", VECTORS, ids=map(vector_id, VECTORS))
def test_rfc_code_is_accepted_at_its_instant_for_its_step(rfc_device, unix_time, code, algorithm):
    device = rfc_device(algorithm)

    with time_machine.travel(at(unix_time), tick=False):
        accepted = check(device, code)

    assert accepted.at == at(unix_time)
    device.refresh_from_db()
    assert device.last_used_step == unix_time // 30
    assert device.last_used_at == at(unix_time)


@override_settings(TOTP_VALID_WINDOW=0)
@pytest.mark.parametrize("unix_time,code,algorithm", VECTORS, ids=map(vector_id, VECTORS))
def test_rfc_code_is_found_by_matching_step_at_its_step_only(
    rfc_device, unix_time, code, algorithm
):
    totp = rfc_device(algorithm).totp()
    step = unix_time // 30

    assert otp.matching_step(totp, code, totp.timecode(at(unix_time)), 0) == step
    assert otp.matching_step(totp, code, step - 1, 0) is None
    assert otp.matching_step(totp, code, step + 1, 0) is None
    # From the next step, a window of one reaches back to the vector's step.
    assert otp.matching_step(totp, code, step + 1, 1) == step


@override_settings(TOTP_VALID_WINDOW=0)
@pytest.mark.parametrize("unix_time,code,algorithm", NEIGHBOURS, ids=map(vector_id, NEIGHBOURS))
def test_code_of_the_neighbouring_step_is_refused_with_window_zero(
    rfc_device, unix_time, code, algorithm
):
    device = rfc_device(algorithm)

    with time_machine.travel(at(unix_time), tick=False), pytest.raises(exceptions.InvalidToken):
        check(device, code)

    device.refresh_from_db()
    assert device.last_used_step == 0
    assert device.failure_count == 1


@override_settings(TOTP_VALID_WINDOW=1)
@pytest.mark.parametrize("unix_time,code,algorithm", NEIGHBOURS, ids=map(vector_id, NEIGHBOURS))
def test_code_of_the_neighbouring_step_matches_that_step_with_window_one(
    rfc_device, unix_time, code, algorithm
):
    device = rfc_device(algorithm)

    with time_machine.travel(at(unix_time), tick=False):
        check(device, code)

    # The other instant of the pair is in the step before or after this one.
    other = 1111111111 if unix_time == 1111111109 else 1111111109
    device.refresh_from_db()
    assert device.last_used_step == other // 30 != unix_time // 30
