"""Verifying CEB message signatures (spec §7.5; services/gateway/ceb/signatures.py).

Customs' sample messages are signed in the test with a fresh RSA key and self-signed certificate, by signxml,
in customs' shape (enveloped, C14N 1.0, a Reference naming only the enveloped-signature transform, KeyName +
X509Certificate), then changed in the ways a sender or an attacker could change them."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner

from services.gateway.ceb.messages import DS_NS, MalformedMessage, parse_message
from services.gateway.ceb.settings import CebSettings
from services.gateway.ceb.signatures import SM2_REFUSAL, load_certificates, verify

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ceb"
SIGNED_SAMPLES = sorted(p for p in FIXTURES.glob("*/*.xml") if b"ds:Signature" in p.read_bytes())
SENDER = "1101180326"  # BaseTransfer/copCode of customs' CEB311 sample


class CustomsStyleSigner(XMLSigner):
    """signxml refuses SHA-1 by default; customs' RSA clients sign with RSA-SHA1, so the test does too."""

    def check_deprecated_methods(self):
        pass


def make_identity(name: str, *, days: int = 365) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days)).sign(key, hashes.SHA256()))
    return key, cert


@pytest.fixture(scope="module")
def sender_identity():
    return make_identity("sender 1101180326")


@pytest.fixture(scope="module")
def other_identity():
    return make_identity("someone else")


def unsigned(name: str = "CEB311") -> etree._Element:
    """Customs' sample without its own signature."""
    root = etree.fromstring(next(FIXTURES.glob(f"*/{name}Message.xml")).read_bytes())
    for signature in root.findall(f"{{{DS_NS}}}Signature"):
        root.remove(signature)
    return root


def sign(root: etree._Element, key, cert, *, method: SignatureMethod = SignatureMethod.RSA_SHA1,
         digest: DigestAlgorithm = DigestAlgorithm.SHA1, customs_shape: bool = True) -> bytes:
    signer = CustomsStyleSigner(signature_algorithm=method, digest_algorithm=digest,
                                c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0)
    signed = signer.sign(root, key=key, cert=[cert], key_name="0001",
                         exclude_c14n_transform_element=customs_shape)
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


@pytest.fixture(scope="module")
def signed(sender_identity) -> bytes:
    key, cert = sender_identity
    return sign(unsigned(), key, cert)


@pytest.fixture(scope="module")
def trusted(sender_identity) -> dict:
    return {SENDER: [sender_identity[1]]}


def test_a_valid_signature_verifies(signed, trusted):
    assert b'<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/></ds:Transforms>' \
        in signed  # customs' shape: no C14N transform named in the Reference
    verdict = verify(signed, trusted)
    assert verdict.ok and verdict.reason == "verified", verdict
    assert verdict.sender == SENDER and verdict.key_name == "0001"
    assert verdict.signature_method == "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
    # The signed message is still what the parser reads, signature kept as received.
    message = parse_message(signed)
    assert message.signature is not None and b"SignatureValue" in message.signature
    assert all(r.ok for r in message.records)


@pytest.mark.parametrize("name", ["CEB411", "CEB511", "CEB621", "CEB303", "CEB505", "CEB603"])
def test_every_accepted_message_type_verifies(name, sender_identity):
    key, cert = sender_identity
    data = sign(unsigned(name), key, cert)
    code = re.search(rb"<ceb:copCode>(\w+)</ceb:copCode>", data).group(1).decode()
    assert verify(data, {code: cert}).ok


def test_rsa_sha256_and_an_explicit_c14n_transform_verify(sender_identity, trusted):
    key, cert = sender_identity
    data = sign(unsigned(), key, cert, method=SignatureMethod.RSA_SHA256, digest=DigestAlgorithm.SHA256,
                customs_shape=False)
    assert b"REC-xml-c14n-20010315\"/></ds:Transforms>" in data
    assert verify(data, trusted).ok


def test_one_changed_byte_in_a_record_is_a_digest_mismatch(signed, trusted):
    changed = signed.replace(b"<ceb:acturalPaid>19050</ceb:acturalPaid>",
                             b"<ceb:acturalPaid>19059</ceb:acturalPaid>", 1)
    assert changed != signed and len(changed) == len(signed)
    verdict = verify(changed, trusted)
    assert (verdict.ok, verdict.reason) == (False, "digest_mismatch"), verdict
    assert "changed after it was signed" in verdict.detail


def test_a_changed_signature_value_is_refused(signed, trusted):
    value = re.search(rb"<ds:SignatureValue>([^<]+)</ds:SignatureValue>", signed).group(1)
    flipped = value[:10] + (b"A" if value[10:11] != b"A" else b"B") + value[11:]
    verdict = verify(signed.replace(value, flipped), trusted)
    assert (verdict.ok, verdict.reason) == (False, "bad_signature"), verdict


def test_a_signature_by_another_key_is_refused(other_identity, sender_identity, trusted):
    other_key, other_cert = other_identity
    # Signed and carrying another certificate: not the sender's.
    verdict = verify(sign(unsigned(), other_key, other_cert), trusted)
    assert (verdict.ok, verdict.reason) == (False, "untrusted_certificate"), verdict
    # Signed by another key while carrying the sender's own certificate (copied from any of its messages).
    verdict = verify(sign(unsigned(), other_key, sender_identity[1]), trusted)
    assert (verdict.ok, verdict.reason) == (False, "bad_signature"), verdict


def test_an_unknown_sender_is_refused(signed, other_identity):
    verdict = verify(signed, {"9999999999": [other_identity[1]]})
    assert (verdict.ok, verdict.reason, verdict.sender) == (False, "unknown_sender", SENDER)
    assert SENDER in verdict.detail


def test_a_changed_sender_is_refused(signed, trusted, other_identity):
    """copCode is signed: naming another sender that happens to have our certificate changes the digest,
    and naming one without it is an unknown sender."""
    data = signed.replace(b"<ceb:copCode>1101180326<", b"<ceb:copCode>1101180327<")
    assert verify(data, {**trusted, "1101180327": trusted[SENDER]}).reason == "digest_mismatch"
    assert verify(data, trusted).reason == "unknown_sender"


def test_no_signature_is_refused(trusted):
    data = etree.tostring(unsigned(), xml_declaration=True, encoding="UTF-8")
    verdict = verify(data, trusted)
    assert (verdict.ok, verdict.reason) == (False, "unsigned")


@pytest.mark.parametrize("method, digest", [
    ("http://www.chinaport.gov.cn/2022/04/xmldsig#sm2-sm3", "http://www.chinaport.gov.cn/2022/04/xmldsig#sm3"),
    ("http://www.w3.org/2000/09/xmldsig#sm2-sm3", "http://www.w3.org/2000/09/xmldsig#sha1"),
])
def test_an_sm2_signature_is_the_clear_refusal(signed, trusted, method, digest):
    data = (signed.replace(b"http://www.w3.org/2000/09/xmldsig#rsa-sha1", method.encode())
            .replace(b'DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"',
                     b'DigestMethod Algorithm="' + digest.encode() + b'"'))
    verdict = verify(data, trusted)
    assert (verdict.ok, verdict.reason, verdict.signature_method) == (False, "sm2_unsupported", method)
    assert verdict.detail == SM2_REFUSAL
    assert verdict.detail.startswith("SM2-SM3 signatures cannot be verified here: ")


@pytest.mark.parametrize("path", SIGNED_SAMPLES, ids=lambda p: p.stem)
def test_customs_own_signatures_are_untrusted_never_a_crash(path, trusted, sender_identity):
    """Customs' samples carry customs' test certificate (not ours) under SM2-SM3: refused as untrusted with
    our certificate configured for their sender, as an unknown sender without."""
    data = path.read_bytes()
    code = re.search(rb"<ceb:copCode>(\w+)</ceb:copCode>", data).group(1).decode()
    verdict = verify(data, {code: [sender_identity[1]]})
    assert (verdict.ok, verdict.reason) == (False, "untrusted_certificate"), verdict
    assert verdict.key_name == "0001" and len(verdict.certificate_sha256) == 64
    assert verify(data, {}).reason == "unknown_sender"


@pytest.mark.parametrize("uri", ["http://127.0.0.1:9/evil.xml", "file:///etc/passwd", "#xpointer(/)", "#x"])
def test_a_reference_to_anything_but_the_whole_message_is_refused(signed, trusted, uri):
    data = signed.replace(b'<ds:Reference URI="">', b'<ds:Reference URI="' + uri.encode() + b'">')
    verdict = verify(data, trusted)
    assert (verdict.ok, verdict.reason) == (False, "forbidden_reference"), verdict


@pytest.mark.parametrize("transform", [
    b'<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"><xsl:stylesheet '
    b'xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0"/></ds:Transform>',
    b'<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>1</ds:XPath></ds:Transform>',
    b'<ds:Transform Algorithm="http://www.w3.org/2002/06/xmldsig-filter2"/>',
    b'<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#base64"/>',
])
def test_xslt_xpath_and_other_transforms_are_refused(signed, trusted, transform):
    data = signed.replace(b"</ds:Transforms>", transform + b"</ds:Transforms>")
    verdict = verify(data, trusted)
    assert (verdict.ok, verdict.reason) == (False, "forbidden_transform"), verdict


def test_a_reference_without_the_enveloped_transform_is_refused(signed, trusted):
    data = re.sub(rb"<ds:Transforms>.*?</ds:Transforms>", b"", signed, flags=re.S)
    assert verify(data, trusted).reason == "forbidden_transform"


def test_other_algorithms_are_refused(signed, trusted):
    hmac = signed.replace(b"http://www.w3.org/2000/09/xmldsig#rsa-sha1", b"http://www.w3.org/2000/09/xmldsig#hmac-sha1")
    assert verify(hmac, trusted).reason == "unsupported_algorithm"
    exc = signed.replace(b'CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"',
                         b'CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"')
    assert verify(exc, trusted).reason == "unsupported_algorithm"
    md5 = signed.replace(b'DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"',
                         b'DigestMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#md5"')
    assert verify(md5, trusted).reason == "unsupported_algorithm"


def test_signature_wrapping_is_refused(signed, trusted):
    """A second signature, or the signature moved into a record, is never accepted."""
    signature = re.search(rb"<ds:Signature.*</ds:Signature>", signed, re.S).group(0)
    twice = signed.replace(b"</ceb:BaseTransfer>", b"</ceb:BaseTransfer>" + signature)
    assert verify(twice, trusted).reason == "malformed_signature"
    moved = signed.replace(signature, b"").replace(b"</ceb:OrderHead>", signature + b"</ceb:OrderHead>", 1)
    verdict = verify(moved, trusted)
    assert verdict.reason == "malformed_signature" and "child of the message root" in verdict.detail


def test_key_info_without_a_certificate_is_refused(signed, trusted):
    data = re.sub(rb"<ds:X509Data>.*?</ds:X509Data>", b"", signed, flags=re.S)
    assert verify(data, trusted).reason == "no_certificate"


def test_an_expired_certificate_is_refused(sender_identity):
    key, cert = make_identity("short-lived", days=1)
    data = sign(unsigned(), key, cert)
    assert verify(data, {SENDER: cert}).ok
    later = datetime.now(timezone.utc) + timedelta(days=30)
    assert verify(data, {SENDER: cert}, at=later).reason == "certificate_not_valid"


def test_several_certificates_per_sender_while_one_is_replaced(signed, sender_identity, other_identity):
    assert verify(signed, {SENDER: [other_identity[1], sender_identity[1]]}).ok


def test_garbage_never_raises(trusted):
    for data in [b"", b"not xml", b"<a/>", b"<ceb:CEB311Message xmlns:ceb='http://www.chinaport.gov.cn/ceb'/>",
                 "<é/>".encode("utf-16")]:
        verdict = verify(data, trusted)
        assert not verdict.ok and verdict.reason in {"malformed", "unsigned"}
    with pytest.raises(TypeError):
        verify("<a/>", trusted)  # type: ignore[arg-type]


BOMB = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">'
        b'<!ENTITY xxe SYSTEM "file:///etc/passwd">]>')


def test_dtds_and_entities_stay_refused(signed, trusted):
    """The parser's protections hold for signed messages too: a DOCTYPE (entity expansion, external entity)
    is refused by the parser and by verify, before anything is resolved."""
    body = signed.split(b"?>", 1)[1].replace(b"<ceb:note>test</ceb:note>", b"<ceb:note>&xxe;&lol2;</ceb:note>", 1)
    data = BOMB + body
    with pytest.raises(MalformedMessage):
        parse_message(data)
    verdict = verify(data, trusted)
    assert (verdict.ok, verdict.reason) == (False, "malformed")
    assert "root:" not in verdict.detail


def test_load_certificates_reads_one_pem_per_sender(tmp_path, sender_identity, other_identity):
    (tmp_path / f"{SENDER}.pem").write_bytes(sender_identity[1].public_bytes(Encoding.PEM)
                                             + other_identity[1].public_bytes(Encoding.PEM))
    (tmp_path / "README.txt").write_text("ignored")
    loaded = load_certificates(tmp_path)
    assert list(loaded) == [SENDER] and loaded[SENDER] == (sender_identity[1], other_identity[1])
    (tmp_path / "broken.pem").write_text("not a certificate")
    with pytest.raises(ValueError, match="broken.pem"):
        load_certificates(tmp_path)
    with pytest.raises(ValueError, match="not a directory"):
        load_certificates(tmp_path / "missing")


def test_verification_is_off_by_default_and_needs_certificates_when_on(monkeypatch, tmp_path):
    monkeypatch.delenv("SW_CEB_VERIFY_SIGNATURES", raising=False)
    monkeypatch.delenv("SW_CEB_CERTIFICATES", raising=False)
    assert CebSettings().verify_signatures is False
    monkeypatch.setenv("SW_CEB_VERIFY_SIGNATURES", "true")
    with pytest.raises(ValueError, match="SW_CEB_CERTIFICATES"):
        CebSettings()
    monkeypatch.setenv("SW_CEB_CERTIFICATES", str(tmp_path))
    settings = CebSettings()
    assert settings.verify_signatures and settings.certificates == tmp_path


XMLSEC1 = Path(__file__).resolve().parents[1] / "fixtures" / "ceb-signatures"


def test_a_signature_made_by_another_implementation_verifies():
    """libxmlsec1 signed this message in customs' layout (tests/fixtures/ceb-signatures/README.md): the
    verifier agrees with an independent XML-DSig implementation, not only with the library it is built on."""
    data = (XMLSEC1 / "CEB311Message-rsa-sha1-xmlsec1.xml").read_bytes()
    trusted = load_certificates(XMLSEC1)
    assert verify(data, trusted).ok
    changed = data.replace(b"<ceb:buyerName>", b"<ceb:buyerName>X", 1)
    assert verify(changed, trusted).reason == "digest_mismatch"
