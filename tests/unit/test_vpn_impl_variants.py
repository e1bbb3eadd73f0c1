"""--vpn-impl's reference variants (reference-aead, reference-offload, reference-aead-offload):
one table of names and flags, shared with `vpnsim bench tunnels`, and a clear refusal of a
name that is not in it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from vpnsim.cli.common import IMPL_HELP
from vpnsim.impl import (
    ACCEPTED,
    REFERENCE,
    REFERENCE_VARIANTS,
    ImplementationError,
    TunnelImpl,
)
from vpnsim.seed import seed_tunnel
from vpnsim.tunnel.__main__ import parse_args
from vpnsim.tunnel.bench.contenders import CONTENDERS

PSK = Path("/run/vpnsim/labs/lab-x/tunnel-1.psk")
SPEC = seed_tunnel().tunnel
assert SPEC is not None


def test_the_table_names_exactly_the_six_reference_tunnels() -> None:
    assert REFERENCE_VARIANTS == {
        "reference": (),
        "reference-aead": ("--wire", "aead", "--psk-file", "{psk}"),
        "reference-offload": ("--offload",),
        "reference-aead-offload": ("--wire", "aead", "--psk-file", "{psk}", "--offload"),
        "reference-gso": ("--gso",),
        "reference-aead-gso": ("--wire", "aead", "--psk-file", "{psk}", "--gso"),
    }


@pytest.mark.parametrize("name", list(REFERENCE_VARIANTS))
def test_each_name_parses_to_the_reference_with_its_flags_on_both_ends(name: str) -> None:
    impl = TunnelImpl.parse([name])
    assert impl is TunnelImpl.parse([name])  # one object per name, as REFERENCE
    assert (impl.label, impl.is_reference, impl.cwd) == (name, True, None)
    flags = tuple(str(PSK) if f == "{psk}" else f for f in REFERENCE_VARIANTS[name])
    for side in ("client", "server"):
        assert impl.argv(side, SPEC, PSK) == (*REFERENCE.argv(side, SPEC), *flags)


@pytest.mark.parametrize("name", list(REFERENCE_VARIANTS))
def test_each_variants_argv_is_one_the_reference_tunnel_accepts(name: str) -> None:
    impl = TunnelImpl.parse([name])
    # parse_args reads an AEAD PSK file: give it a real one.
    for side in ("client", "server"):
        argv = impl.argv(side, SPEC, Path(__file__))
        args = parse_args(argv[3:])  # after `python -m vpnsim.tunnel`
        assert (args.side, args.wire, args.offload, args.gso) == (
            side,
            "aead" if "aead" in name else "plain",
            "offload" in name,
            "gso" in name,
        )


def test_only_the_aead_variants_need_a_psk_and_have_a_client_that_speaks_first() -> None:
    needs = {n: TunnelImpl.parse([n]).needs_psk for n in REFERENCE_VARIANTS}
    first = {n: TunnelImpl.parse([n]).client_speaks_first for n in REFERENCE_VARIANTS}
    expected = {
        "reference": False,
        "reference-aead": True,
        "reference-offload": False,
        "reference-aead-offload": True,
        "reference-gso": False,
        "reference-aead-gso": True,
    }
    assert needs == first == expected


def test_an_aead_variant_without_its_psk_file_is_not_started() -> None:
    with pytest.raises(ValueError, match="PSK file"):
        TunnelImpl.parse(["reference-aead"]).argv("server", SPEC)


def test_a_variant_on_a_tap_tunnel_is_refused_naming_the_mode() -> None:
    tap = replace(SPEC, mode="tap")
    with pytest.raises(ImplementationError, match=r"reference-offload: .*TUN only.*'tap'"):
        TunnelImpl.parse(["reference-offload"]).argv("client", tap)


@pytest.mark.parametrize(
    "value", ["reference-tls", "reference-gcm", "Reference-AEAD", "reference aead", "aead"]
)
def test_an_unknown_name_is_refused_listing_every_accepted_form(value: str) -> None:
    with pytest.raises(ImplementationError) as refused:
        TunnelImpl.parse([value])
    message = str(refused.value)
    assert message == (
        f"--vpn-impl {value}: expected reference, reference-aead, reference-offload, "
        "reference-aead-offload, reference-gso, reference-aead-gso, a folder with tun_client.py "
        "and tun_server.py, "
        "or client=CMD / server=CMD"
    )


def test_a_variant_beside_a_side_command_is_refused_listing_the_accepted_forms() -> None:
    with pytest.raises(ImplementationError, match=r"client=CMD or server=CMD; .*reference-aead"):
        TunnelImpl.parse(["reference-aead", "server=./my_server"])


def test_a_command_names_a_side_and_keeps_no_variant_flags() -> None:
    impl = TunnelImpl.parse(["client=./my client"])
    assert (impl.reference_flags, impl.needs_psk, impl.client_speaks_first) == ((), False, False)


def test_the_bench_runs_every_variant_and_the_helps_name_them() -> None:
    assert set(REFERENCE_VARIANTS) <= set(CONTENDERS)
    for name in REFERENCE_VARIANTS:
        assert name in IMPL_HELP
        assert name in ACCEPTED


INNER = """
def test_inner(request):
    from vpnsim.pytest.settings import settings_of

    impl = settings_of(request.config).impl
    print("IMPL", impl.label, impl.is_reference, " ".join(impl.reference_flags))
"""


@pytest.mark.parametrize(
    ("args", "env", "ini"),
    [
        (["--vpn-impl", "reference-aead"], "", ""),
        ([], "reference-aead", ""),
        ([], "", "vpn_impl = reference-aead"),
    ],
    ids=["option", "env", "ini"],
)
def test_pytest_takes_a_variant_from_each_of_its_sources(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: str,
    ini: str,
) -> None:
    monkeypatch.setenv("VPNSIM_VPN_IMPL", env)
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_inner=INNER)

    result = pytester.runpytest_subprocess("-s", *args)

    assert result.ret == pytest.ExitCode.OK
    assert any(
        line.endswith("IMPL reference-aead True --wire aead --psk-file {psk}")
        for line in result.outlines
    )
    assert "vpnsim: implementation under test: reference-aead" in result.outlines
