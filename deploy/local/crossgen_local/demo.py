"""``make demo``: start Kafka, PostgreSQL, an SMTP sink and the three services; walk the slice.

Prints what happened: participants, pairing, session, and the emails caught. With
``--keep-running`` the system stays up (with tokens to try the APIs) until Ctrl-C.
"""

import argparse
import tempfile
import time
from pathlib import Path

from crossgen_local import journey
from crossgen_local.infra import LocalInfra
from crossgen_local.interrupts import run_stoppable
from crossgen_local.stack import SERVICES, CrossgenStack
from crossgen_local.tokens import TokenIssuer

EXPECTED_EMAILS = 6  # proposed, accepted and follow-up, to each of the two


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep-running", action="store_true", help="stay up until Ctrl-C")
    args = parser.parse_args()
    tokens = TokenIssuer()
    log_dir = Path(tempfile.mkdtemp(prefix="crossgen-demo-"))
    up = False  # kept running after its walk: from then on a stop is its way to end
    try:
        with LocalInfra(SERVICES) as infra, CrossgenStack(infra, tokens, log_dir) as stack:
            print("\n== Crossgen demo ==")
            result = journey.run(stack.url, tokens, lambda line: print(f"  • {line}"))
            mails = infra.smtp.wait_for(EXPECTED_EMAILS, timeout=30)
            print(f"\n== {len(mails)} emails caught by the SMTP sink ==")
            for mail in mails:
                print(f"  to {', '.join(mail.rcpt_tos):<20} {mail.message['Subject']}")
            print(
                f"\npairing {result.pairing['id']}: {result.pairing['status']}; "
                f"session {result.session['id']}: {result.session['status']}"
            )
            print(f"service logs: {log_dir}")
            if args.keep_running:
                up = True
                print("\nThe system is up. Try it (tokens valid for an hour):")
                for service in SERVICES:
                    print(f"  {service:<14} {stack.url(service)}/docs")
                print(f"  admin token: {tokens.token(journey.ADMIN, 'admin')}")
                print("Ctrl-C stops everything.")
                while True:
                    time.sleep(1)
    except KeyboardInterrupt:  # (also one pressed again while everything stops)
        if not up:
            raise
        print("\nstopped")


if __name__ == "__main__":
    run_stoppable(main, said="stopped before the end")  # the walk's end not reached: a failure
