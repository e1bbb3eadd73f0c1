"""The TLS lab's check types on real labs: seed-tls as shipped passes, and each new check
fails when what it guards against happens (a plain tunnel, a client that trusts anything, a
TUN made before the refusal, a redirect that never took).

```
  U    10.0.2.7 --+
  U2   10.0.2.9 --+-- 10.0.2.8 [gateway: TLS server] 192.168.60.1 -- V 192.168.60.101
  mitm 10.0.2.66 -+   (seed-tls.toml; the checks below are added to a copy of it)
```
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpnsim.scenario.loader import load
from vpnsim.scenario.runner import ScenarioRun, Verdict
from vpnsim.scenario.shipped import SHIPPED_DIR

pytestmark = pytest.mark.lab

ADVERSARIES = Path(__file__).parents[1] / "data" / "tls_adversaries"
INSECURE = str(ADVERSARIES / "insecure_client.py")
CLIENT_ARGS = (
    '"--tls", "--server", "vpnlabserver.com", "--ca", "{other_ca}", "--user", "seed", '
    '"--password-file", "{pki}/seed.password"'
)
# Each must fail; then the lab must still work (the last check).
ADVERSARIAL = f"""
[[checks]]
name = "refused-fails-for-a-client-that-trusts-any-ca"
type = "refused"
host = "U"
command = ["{{python}}", "{INSECURE}", "client", {CLIENT_ARGS}]
reason = "not signed by a trusted CA"
timeout = 3

[[checks]]
name = "refused-fails-for-a-tun-made-before-the-refusal"
type = "refused"
host = "U"
command = ["{{python}}", "{ADVERSARIES / "tun_then_refused.py"}"]
reason = "not signed by a trusted CA"

[[checks]]
name = "refused-fails-for-a-failure-that-does-not-say-why"
type = "refused"
host = "U"
command = ["false"]
reason = "not signed by a trusted CA"

[[checks]]
name = "mitm-fails-for-a-client-that-trusts-any-ca"
type = "mitm"
attacker = "mitm"
client = "U"
server_address = "10.0.2.8"
impostor = ["{{python}}", "-m", "vpnsim.tunnel", "server", "--tls", "--cert", "{{impostor_cert}}",
            "--key", "{{impostor_key}}", "--users", "{{users}}", "--tun-address", "10.99.0.1/24"]
command = ["{{python}}", "{INSECURE}", "client", {CLIENT_ARGS}]
reason = "not signed by a trusted CA"
timeout = 3

[[checks]]
name = "mitm-fails-when-the-client-never-reaches-the-attacker"
type = "mitm"
attacker = "mitm"
client = "U"
server_address = "10.0.2.8"
impostor = ["{{python}}", "-m", "vpnsim.tunnel", "server", "--tls", "--cert", "{{impostor_cert}}",
            "--key", "{{impostor_key}}", "--tun-address", "10.99.0.1/24"]
command = ["{{python}}", "-m", "vpnsim.tunnel", "client", {CLIENT_ARGS}, "--port", "4434"]
reason = "not signed by a trusted CA"

[[checks]]
name = "cleartext-absent-fails-on-a-link-off-the-path"
type = "cleartext_absent"
link = "U2:eth0"
from = "U"
to = "192.168.60.101"

[[checks]]
name = "u-still-reaches-v-at-the-end"
type = "reach"
from = "U"
to = "192.168.60.101"
proto = "tcp"
sizes = [1000]
"""


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Verdict]:
    folder = tmp_path_factory.mktemp("tls-checks")
    path = folder / "seed-tls-adversarial.toml"
    path.write_text((SHIPPED_DIR / "seed-tls.toml").read_text() + ADVERSARIAL)
    loaded = load(path)
    run = ScenarioRun(loaded, folder / "artifacts", owner_pid=os.getpid())
    try:
        return {check.name: run.check(check) for check in loaded.checks}
    finally:
        run.close()


def test_the_shipped_checks_pass_and_the_lab_works_after_the_adversaries(
    verdicts: dict[str, Verdict],
) -> None:
    shipped = [c.name for c in load(SHIPPED_DIR / "seed-tls.toml").checks]
    failed = {n: v.seen for n, v in verdicts.items() if n in shipped and not v.passed}
    assert failed == {}
    assert verdicts["u-still-reaches-v-at-the-end"].passed, verdicts["u-still-reaches-v-at-the-end"]


def test_the_shipped_refusals_and_the_mitm_say_what_they_saw(verdicts: dict[str, Verdict]) -> None:
    assert verdicts["a-wrong-host-name-is-refused"].seen == (
        "exited with status 2: client: refused: the server's certificate is not valid for the "
        "name 'wrongname.lab' (Hostname mismatch, certificate is not valid for 'wrongname.lab'.)"
    )
    assert verdicts["a-wrong-password-is-refused"].seen == (
        "exited with status 2: client: refused: the server refused the login: wrong user name "
        "or password"
    )
    mitm = verdicts["a-man-in-the-middle-gets-no-tunnel"].seen
    assert re.fullmatch(
        r"[1-9]\d* TCP segments reached mitm's impostor; exited with status 2: client: refused: "
        r"the server's certificate is not signed by a trusted CA \(self-signed certificate\)",
        mitm,
    ), mitm
    clear = verdicts["the-outer-link-carries-no-payload-in-clear"].seen
    assert re.fullmatch(r"\d+ frames, \d+ bytes on gateway:eth0; none holds it", clear), clear


def test_refused_fails_when_the_client_trusts_any_ca(verdicts: dict[str, Verdict]) -> None:
    verdict = verdicts["refused-fails-for-a-client-that-trusts-any-ca"]
    assert not verdict.passed
    assert (
        verdict.seen == "still running after 3 s: not refused; a TUN appeared on U meanwhile: tun1"
    )


def test_refused_fails_when_a_tun_appeared_even_if_the_refusal_is_said(
    verdicts: dict[str, Verdict],
) -> None:
    verdict = verdicts["refused-fails-for-a-tun-made-before-the-refusal"]
    assert not verdict.passed
    assert verdict.seen == "exited with status 2, but a TUN appeared on U meanwhile: tun1"


def test_refused_fails_when_the_client_does_not_say_why(verdicts: dict[str, Verdict]) -> None:
    verdict = verdicts["refused-fails-for-a-failure-that-does-not-say-why"]
    assert not verdict.passed
    assert verdict.seen == "exited with status 1 without saying it: no output"


def test_mitm_fails_when_the_client_logs_in_to_the_impostor(verdicts: dict[str, Verdict]) -> None:
    verdict = verdicts["mitm-fails-for-a-client-that-trusts-any-ca"]
    assert not verdict.passed
    assert verdict.seen == "the client logged in to the impostor: its password went to mitm"


def test_mitm_proves_nothing_when_the_redirect_did_not_take(verdicts: dict[str, Verdict]) -> None:
    verdict = verdicts["mitm-fails-when-the-client-never-reaches-the-attacker"]
    assert not verdict.passed
    assert verdict.seen.startswith(
        "the client never reached mitm: the redirect did not take, so this proves nothing ("
    ), verdict.seen


def test_cleartext_absent_fails_on_a_link_the_probe_did_not_cross(
    verdicts: dict[str, Verdict],
) -> None:
    verdict = verdicts["cleartext-absent-fails-on-a-link-off-the-path"]
    assert not verdict.passed
    assert re.fullmatch(
        r"U2:eth0 carried \d+ bytes in \d+ frames, less than the probe's 2000 there and back: "
        r"the probe took another path",
        verdict.seen,
    ), verdict.seen


PLAIN_CHECK = """
[[checks]]
name = "a-plain-tunnel-shows-the-payload"
type = "cleartext_absent"
link = "server:eth0"
from = "U"
to = "192.168.60.5"
"""


@pytest.fixture
def plain_run(tmp_path: Path) -> Iterator[ScenarioRun]:
    """seed-tunnel (the plain UDP tunnel) with only a cleartext_absent check."""
    topology = (SHIPPED_DIR / "seed-tunnel.toml").read_text().split("[[checks]]")[0]
    path = tmp_path / "plain.toml"
    path.write_text(topology + PLAIN_CHECK)
    run = ScenarioRun(load(path), tmp_path / "artifacts", owner_pid=os.getpid())
    yield run
    run.close()


def test_cleartext_absent_fails_on_the_plain_tunnel(plain_run: ScenarioRun) -> None:
    (check,) = plain_run.loaded.checks
    verdict = plain_run.check(check)
    assert not verdict.passed
    assert re.fullmatch(
        r"[1-9]\d* of \d+ frames on server:eth0 hold the marker in clear "
        r"\(the first: frame \d+, \d+ bytes\)",
        verdict.seen,
    ), verdict.seen
    assert verdict.evidence is not None and (verdict.evidence / "outer.pcap").is_file()
