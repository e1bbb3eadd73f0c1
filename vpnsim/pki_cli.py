"""`vpnsim pki init|issue|user`: the TLS lab's CA, certificates and user file from the shell.

    vpnsim pki init --lab lab-3f9a2c                       # the lab's CA (kept if present)
    vpnsim pki issue vpnlabserver.com --ip 10.0.2.8 --lab lab-3f9a2c
    vpnsim pki issue seed --client --dir ./pki             # any folder instead of a lab's
    vpnsim pki user seed --shadow ./pki/shadow             # password asked without echo

Each prints the files it made or found. The same as library calls: `vpnsim.pki.init`,
`vpnsim.pki.issue`, `vpnsim.tunnel.shadow.shadow_line`. Also `python -m vpnsim.pki_cli ...`
(without the leading `pki`).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vpnsim.tunnel.shadow import shadow_line


def add_parser(sub: Any) -> None:
    pki = sub.add_parser("pki", help="the TLS lab's CA, certificates and user file")
    actions = pki.add_subparsers(metavar="ACTION", required=True)
    init = actions.add_parser("init", help="make the CA (kept if it exists)")
    _where(init)
    init.add_argument("--subject", default="vpnsim lab CA", help="the CA's common name")
    init.set_defaults(run=_init)
    issue = actions.add_parser("issue", help="a certificate signed by the CA")
    issue.add_argument("name", help="the server's host name (or a client's user name)")
    _where(issue)
    issue.add_argument("--dns", action="append", default=[], help="another DNS name")
    issue.add_argument("--ip", action="append", default=[], help="an IP address it is for")
    issue.add_argument("--client", action="store_true", help="for client authentication")
    issue.set_defaults(run=_issue)
    user = actions.add_parser("user", help="add or replace a user in a shadow-format file")
    user.add_argument("name", help="the user name to add (or whose password to change)")
    user.add_argument(
        "--shadow", type=Path, required=True, metavar="FILE",
        help="the user file, in /etc/shadow's format (made if missing)",
    )  # fmt: skip
    user.add_argument("--password-file", type=Path, help="else asked without echo")
    user.set_defaults(run=_user)


def _where(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--dir", type=Path, help="a folder for the material")
    where.add_argument("--lab", help="a running lab: its own folder, removed with it")


def _folder(args: argparse.Namespace) -> Path:
    from vpnsim import pki

    return Path(args.dir) if args.dir else pki.lab_folder(args.lab)


def _init(args: argparse.Namespace) -> int:
    from vpnsim import pki

    material = pki.init(_folder(args), args.subject)
    print(f"CA: {material.cert} (key {material.key})")
    return 0


def _issue(args: argparse.Namespace) -> int:
    from vpnsim import pki

    material = pki.issue(_folder(args), args.name, dns=args.dns, ips=args.ip, client=args.client)
    print(f"{args.name}: {material.cert} (key {material.key})")
    return 0


def _user(args: argparse.Namespace) -> int:
    if args.password_file:
        password = args.password_file.read_text().splitlines()[0]
    else:
        password = getpass.getpass(f"password for {args.name}: ")
    lines = args.shadow.read_text().splitlines() if args.shadow.exists() else []
    kept = [line for line in lines if line.split(":", 1)[0] != args.name]
    args.shadow.write_text("\n".join([*kept, shadow_line(args.name, password)]) + "\n")
    args.shadow.chmod(0o600)
    print(f"{args.name}: in {args.shadow}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vpnsim.pki_cli")
    add_parser(parser.add_subparsers(required=True))
    args = parser.parse_args(["pki", *(sys.argv[1:] if argv is None else argv)])
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
