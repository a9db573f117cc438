"""RFC 4475 torture messages: every file gets the treatment the RFC expects of a UA.

The outcome of one file is what our UA would do with it as a UDP datagram: a request
that fails to parse is answered with the parser's status hint, a response that fails is
dropped, a request that parses goes through ``check_request`` (its rejection status, or
"process"), a response through ``check_response`` ("accept" or "drop").
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from tests.unit.telephony.sipdata import TORTURE

from callwright.telephony.sip import (
    NameAddr,
    Request,
    Response,
    SipParseError,
    SipUri,
    error_response,
    parse,
)
from callwright.telephony.sip.validate import check_request, check_response

ROWS = list(csv.DictReader((TORTURE / "expectations.tsv").open(), delimiter="\t"))

# Our UA serves INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REFER and NOTIFY; it is not a
# registrar, so REGISTER gets 405 where the table allows it ("405 if not a registrar").
EXPECTED = {
    "wsinv.dat": "process",
    "intmeth.dat": "501",
    "esc01.dat": "process",
    "escnull.dat": "405",
    "esc02.dat": "501",
    "lwsdisp.dat": "process",
    "longreq.dat": "process",
    "dblreq.dat": "405",
    "semiuri.dat": "process",
    "transports.dat": "process",
    "mpart01.dat": "405",  # MESSAGE is not served; the body framing is checked below
    "unreason.dat": "accept",
    "noreason.dat": "accept",
    "badinv01.dat": "400",
    "clerr.dat": "400",
    "ncl.dat": "400",
    "scalar02.dat": "400",
    "scalarlg.dat": "drop",
    "quotbal.dat": "400",
    "ltgtruri.dat": "400",
    "lwsruri.dat": "400",
    "lwsstart.dat": "400",
    "trws.dat": "400",
    "escruri.dat": "400",
    "baddate.dat": "process",
    "regbadct.dat": "400",
    "badaspec.dat": "400",
    "baddn.dat": "400",
    "badvers.dat": "505",
    "mismatch01.dat": "400",
    "mismatch02.dat": "400",
    "bigcode.dat": "drop",
    "badbranch.dat": "400",
    "insuf.dat": "400",
    "unkscm.dat": "416",
    "novelsc.dat": "416",
    "unksm2.dat": "405",
    "bext01.dat": "420",
    "invut.dat": "415",
    "regaut01.dat": "405",
    "multi01.dat": "400",
    "mcl01.dat": "400",
    "bcast.dat": "drop",
    "zeromf.dat": "process",
    "cparam01.dat": "405",
    "cparam02.dat": "405",
    "regescrt.dat": "405",
    "sdp01.dat": "406",
    "inv2543.dat": "process",
    "test.dat": "400",
}


def outcome(data: bytes) -> tuple[str, bool]:
    """(what the UA does, whether the message parsed)."""
    try:
        msg = parse(data)
    except SipParseError as exc:
        is_response = data[:4].upper() == b"SIP/"
        return ("drop" if is_response else str(exc.status)), False
    if isinstance(msg, Response):
        return ("accept" if check_response(msg) is None else "drop"), True
    rejection = check_request(msg)
    return ("process" if rejection is None else str(rejection.status)), True


def test_table_covers_every_file() -> None:
    files = {p.name for p in TORTURE.glob("*.dat")}
    assert files == {row["file"] for row in ROWS} == set(EXPECTED)
    assert len(files) == 50


@pytest.mark.parametrize("row", ROWS, ids=[row["file"] for row in ROWS])
def test_torture_message(row: dict[str, str]) -> None:
    data = (TORTURE / row["file"]).read_bytes()
    result, parsed = outcome(data)
    assert result == EXPECTED[row["file"]]
    if row["must_parse"].startswith("yes"):
        assert parsed
    if row["class"] == "invalid":
        assert not parsed
    if not parsed and result not in ("drop", "process"):
        # A request we cannot parse still gets its error answer when it has a Via.
        answer = error_response(data, int(result))
        if answer is not None:
            reply = parse(answer)
            assert isinstance(reply, Response) and reply.status == int(result)


def test_torture_summary(capsys: pytest.CaptureFixture[str]) -> None:
    counts: Counter[str] = Counter()
    for path in sorted(TORTURE.glob("*.dat")):
        result, parsed = outcome(path.read_bytes())
        counts["parsed" if parsed else "refused"] += 1
        counts[result] += 1
    with capsys.disabled():
        detail = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        print(f"\nRFC 4475 torture: {sum(1 for _ in TORTURE.glob('*.dat'))} files: {detail}")
    assert counts["parsed"] + counts["refused"] == 50


def load(name: str) -> Request | Response:
    return parse((TORTURE / name).read_bytes())


def test_wsinv_fields() -> None:
    msg = load("wsinv.dat")
    assert isinstance(msg, Request)
    assert msg.to.tag == "1918181833n"
    assert msg.from_.display == 'J Rosenberg \\"' and msg.from_.tag == "98asjd8"
    assert msg.max_forwards == 68
    assert (msg.cseq.number, msg.cseq.method) == (9, "INVITE")
    assert [v.branch for v in msg.vias] == ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"]
    assert [v.transport for v in msg.vias] == ["UDP", "TCP", "UDP"]
    assert msg.headers.get("Subject") == ""
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    contact = msg.contacts[0].address
    assert contact is not None and contact.display == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert len(msg.body) == 150


def test_intmeth_fields() -> None:
    msg = load("intmeth.dat")
    assert isinstance(msg, Request) and msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert isinstance(msg.uri, SipUri)
    assert msg.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert msg.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert msg.to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"


def test_escapes_are_kept_once() -> None:
    msg = load("esc01.dat")
    contact = msg.contacts[0].address
    assert contact is not None and isinstance(contact.uri, SipUri)
    assert contact.uri.params == {"%6c%72": None, "n%61me": "v%61lue%25%34%31"}
    null = load("escnull.dat")
    assert [str(c) for c in null.contacts] == [
        "<sip:%00@host5.example.com>",
        "<sip:%00%00@host5.example.com>",
    ]


def test_esc02_has_exactly_two_contacts() -> None:
    msg = load("esc02.dat")
    assert isinstance(msg, Request) and msg.method == "RE%47IST%45R"
    assert len(msg.contacts) == 2
    assert msg.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_semiuri_user_part() -> None:
    msg = load("semiuri.dat")
    assert isinstance(msg, Request) and isinstance(msg.uri, SipUri)
    assert msg.uri.user == "user;par=u%40example.net"


def test_framing_cases() -> None:
    dbl = load("dblreq.dat")
    assert isinstance(dbl, Request) and dbl.method == "REGISTER" and dbl.body == b""
    mpart = load("mpart01.dat")
    assert len(mpart.body) == 553 and b"\x00" in mpart.body
    old = load("inv2543.dat")
    assert old.body.startswith(b"v=0") and old.body.endswith(b"m=audio 49217 RTP/AVP 0\r\n")


def test_contact_parameter_placement() -> None:
    bare = load("cparam01.dat").contacts[0].address
    bracketed = load("cparam02.dat").contacts[0].address
    assert isinstance(bare, NameAddr) and isinstance(bracketed, NameAddr)
    assert isinstance(bare.uri, SipUri) and "unknownparam" not in bare.uri.params
    assert "unknownparam" in bare.params
    assert isinstance(bracketed.uri, SipUri) and "unknownparam" in bracketed.uri.params
    escrt = load("regescrt.dat").contacts[0].address
    assert escrt is not None and isinstance(escrt.uri, SipUri)
    assert escrt.uri.headers == (("Route", "%3Csip:sip.example.com%3E"),)


def test_bext01_lists_the_unsupported_options_as_written() -> None:
    msg = load("bext01.dat")
    assert isinstance(msg, Request)
    rejection = check_request(msg)
    assert rejection is not None
    assert rejection.headers == (("Unsupported", "nothingSupportsThis, nothingSupportsThisEither"),)


def test_baddn_is_refused_for_its_display_name_too() -> None:
    data = (TORTURE / "baddn.dat").read_bytes() + b"\r\n"
    with pytest.raises(SipParseError, match="URI"):
        parse(data)


@pytest.mark.parametrize(
    ("header", "value"),
    [("Max-Forwards", b"300"), ("Expires", b"1" + b"0" * 40)],
)
def test_scalar02_each_field_alone(header: str, value: bytes) -> None:
    data = (TORTURE / "scalar02.dat").read_bytes()
    data = data.replace(b"36893488147419103232 REGISTER", b"1 REGISTER")
    data = data.replace(b"expires=280297596632815", b"expires=60")
    lines = [
        (line.split(b":")[0] + b": " + value if line.startswith(header.encode()) else line)
        for line in data.split(b"\r\n")
    ]
    with pytest.raises(SipParseError):
        parse(b"\r\n".join(lines))


def test_round_trip_of_every_parsable_file() -> None:
    for path in sorted(Path(TORTURE).glob("*.dat")):
        try:
            msg = parse(path.read_bytes())
        except SipParseError:
            continue
        again = parse(msg.serialize())
        assert again.body == msg.body
        msg.headers.remove("Content-Length")
        again.headers.remove("Content-Length")
        assert again == msg, path.name
