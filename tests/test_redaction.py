"""Secrets never reach a log or the console, in any form an agent may print them (rule 8)."""

from __future__ import annotations

import json

from tandem.agents.relay import LineJoiner
from tandem.redaction import Redactor

PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "-----END PRIVATE KEY-----\n"
)
TOKEN = 'ghp_a/b+c\\d"e😀f-0123'  # noqa: S105 - made up
REDACTOR = Redactor({"DEPLOY_KEY": PEM, "GH_TOKEN": TOKEN, "HOME": "/root"})


def relayed(chunks: list[bytes]) -> bytes:
    """What the relay passes on when the agent writes ``chunks``."""
    out: list[bytes] = []
    joiner = LineJoiner(REDACTOR, lambda block: out.append(bytes(block)))
    for chunk in chunks:
        joiner.feed(chunk)
    joiner.flush()
    return b"".join(out)


def test_the_value_and_its_plain_json_encodings_are_masked() -> None:
    for form in (TOKEN, json.dumps(TOKEN), json.dumps(TOKEN, ensure_ascii=False)):
        masked = REDACTOR.text(f"before {form} after")
        assert masked in ("before *** after", 'before "***" after'), form


def test_any_character_escaped_as_uxxxx_or_a_short_escape_is_masked() -> None:
    encoded = [json.dumps(char, ensure_ascii=False)[1:-1] for char in TOKEN]
    for i, char in enumerate(TOKEN):
        escaped = json.dumps(char)[1:-1]
        forms = {escaped, json.dumps(char)[1:-1]}
        if ord(char) < 0x10000:
            forms |= {f"\\u{ord(char):04x}", f"\\u{ord(char):04X}"}
        if char == "/":
            forms.add("\\/")
        for form in forms:
            printed = "".join(encoded[:i]) + form + "".join(encoded[i + 1 :])
            assert REDACTOR.text(f"<{printed}>") == "<***>", printed
            assert REDACTOR.data(f"<{printed}>".encode()) == b"<***>", printed


def test_a_pem_key_printed_line_by_line_never_shows_a_key_line() -> None:
    text = relayed([line.encode() for line in PEM.splitlines(keepends=True)]).decode()
    assert "MIIEvQ" not in text
    assert "MzEfYy" not in text
    assert text.count("***") == 2
    assert "-----BEGIN PRIVATE KEY-----" in text  # the armour is not secret


def test_a_pem_key_inside_json_with_escaped_newlines_is_masked() -> None:
    event = json.dumps({"type": "tool_result", "content": f"cat key.pem\n{PEM}"})
    masked = REDACTOR.text(event)
    assert "MIIEvQ" not in masked
    assert "MzEfYy" not in masked
    assert json.loads(masked)["content"].startswith("cat key.pem\n***")


def test_a_secret_split_across_writes_is_masked() -> None:
    printed = json.dumps({"token": TOKEN}).encode() + b"\n"
    for cut in range(1, len(printed)):
        assert relayed([printed[:cut], printed[cut:]]) == b'{"token": "***"}\n', cut


def test_values_of_other_variables_and_short_values_are_left_alone() -> None:
    redactor = Redactor({"HOME": "/root", "SHORT_KEY": "abc", "EMPTY_TOKEN": ""})
    assert not redactor
    assert redactor.text("/root abc") == "/root abc"
    assert redactor.safe_end(b"abc") == 3
