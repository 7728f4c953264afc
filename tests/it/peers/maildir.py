"""Prints every message of a Maildir (as aiosmtpd's Mailbox handler writes
it) as one JSON list: recipients, subject, Message-ID, decoded text and HTML
parts. The mail tests read what arrived through this, so the decoding of
quoted-printable and base64 bodies is Python's own email package."""

import email
import email.policy
import json
import pathlib
import sys


def parts(message):
    text, html = "", ""
    for part in message.walk():
        if part.get_content_maintype() == "multipart":
            continue
        if part.get_content_type() == "text/plain":
            text += part.get_content()
        elif part.get_content_type() == "text/html":
            html += part.get_content()
    return text, html


def main(root):
    out = []
    for folder in ("new", "cur"):
        directory = pathlib.Path(root) / folder
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            text, html = parts(message)
            out.append({
                "to": str(message["To"]),
                "from": str(message["From"]),
                "subject": str(message["Subject"]),
                "message_id": str(message["Message-ID"]),
                "text": text,
                "html": html,
            })
    json.dump(out, sys.stdout)


main(sys.argv[1])
