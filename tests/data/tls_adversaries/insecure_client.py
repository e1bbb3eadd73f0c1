"""A TLS client that checks nothing, as a careless student's does: the reference client with
certificate verification off (CERT_NONE, no host name check). It connects to any server,
impostors included, and sends its password there."""

import ssl
import sys

from vpnsim.tunnel import tls_main


def trust_anything(ca_file: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


tls_main.verify_hostname_context = trust_anything
sys.exit(tls_main.main())
