"""Verifying the XML signature of a CEB message (spec §7.5: "verifying it is a setting, off by default").

Customs' messages carry an enveloped XML-DSig signature: one `ds:Signature` as a child of the message root,
`SignedInfo` canonicalized with C14N 1.0, one `Reference URI=""` (the whole message) with the
enveloped-signature transform, and `KeyInfo` naming the sender's certificate (`KeyName`, customs' certificate
number) and carrying it (`X509Data/X509Certificate`). Customs' 2022 edition signs with SM2-SM3
(`http://www.chinaport.gov.cn/2022/04/xmldsig#sm2-sm3`, digest `…#sm3`); older clients with RSA-SHA1.

`verify(message, trusted)` is pure (no file, network or database access; it reads the clock only when `at` is
not given) and never raises on what a sender can put in a message: every outcome is a `Verdict`.
`load_certificates(directory)` reads the trusted certificates (`SW_CEB_CERTIFICATES`, settings.py) once, at
start.

What is trusted (our choice; docs/ceb.md "Signatures"): a sender's signing certificate is configured out of
band, per sender code (`<copCode>.pem`), as customs registers each enterprise's certificate; the certificate
a message carries in `KeyInfo` is accepted only if it is byte for byte one of the certificates configured for
the message's `BaseTransfer/copCode`. No certificate chain, no CA store, no fetching of anything named in the
message (no external references, no XSLT/XPath transforms, no RetrievalMethod): only the enveloped-signature
transform and C14N 1.0 are accepted. The configured certificate's validity period is checked at `at`.

The XML-DSig processing (canonicalization, reference digest, signature check) is signxml's
(`signxml.XMLVerifier`, on lxml and pyca/cryptography); RSA-SHA1 and SHA-1 digests, which signxml refuses by
default, are allowed explicitly because customs' RSA clients use them; RSA-SHA256/SHA-256 are accepted too.
SM2-SM3 is recognised and refused with the reason: no well-kept Python library verifies SM2 inside XML-DSig
(docs/ceb.md, "Signatures", says which were looked at).
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Union

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureConfiguration, SignatureMethod, XMLVerifier
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature, SignXMLException

from services.gateway.ceb.messages import _DOCTYPE, _PARSER_OPTIONS, DS_NS, NS

C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_10_WITH_COMMENTS = C14N_10 + "#WithComments"
ENVELOPED_SIGNATURE = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
# Customs' SM2-SM3 identifiers: the 2022 edition's, and the w3.org-namespaced ones older clients wrote
# (customs' SDKs and the public signing bridges use both).
SM2_SM3 = frozenset({"http://www.chinaport.gov.cn/2022/04/xmldsig#sm2-sm3",
                     "http://www.w3.org/2000/09/xmldsig#sm2-sm3"})
SM3 = frozenset({"http://www.chinaport.gov.cn/2022/04/xmldsig#sm3", "http://www.w3.org/2000/09/xmldsig#sm3"})

CANONICALIZATIONS = frozenset({C14N_10, C14N_10_WITH_COMMENTS})
SIGNATURE_METHODS = frozenset({RSA_SHA1, RSA_SHA256})
DIGEST_METHODS = frozenset({SHA1, SHA256})
REFERENCE_TRANSFORMS = frozenset({ENVELOPED_SIGNATURE, C14N_10, C14N_10_WITH_COMMENTS})

SM2_REFUSAL = ("SM2-SM3 signatures cannot be verified here: no well-kept Python library verifies SM2 inside "
               "XML-DSig (signxml and pyca/cryptography have no SM2, libxmlsec1 has no SM2 transform; the SM2 "
               "libraries for Python sign raw bytes only), so SM2-SM3 messages are accepted only while "
               "SW_CEB_VERIFY_SIGNATURES is off (docs/ceb.md, Signatures)")

_DS = {"ds": DS_NS}
_CONFIG = SignatureConfiguration(
    require_x509=True,
    location="./",  # the Signature is a child of the message root, nowhere else
    expect_references=1,
    signature_methods=frozenset({SignatureMethod.RSA_SHA1, SignatureMethod.RSA_SHA256}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA1, DigestAlgorithm.SHA256}),
    # XML-DSig 1.0 §4.3.3.2: a reference whose transforms end in a node-set is canonicalized with C14N 1.0;
    # customs' clients name no C14N transform in the Reference, so this default is what they signed.
    default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0,
)

Certificates = Union[x509.Certificate, Iterable[x509.Certificate]]


@dataclass(frozen=True)
class Verdict:
    """The outcome of `verify`.

    - `ok`: True only when the signature verified against a certificate configured for the sender.
    - `reason`: a stable code — `verified`; refusals: `malformed` (not readable XML, or a DOCTYPE),
      `unsigned` (no `ds:Signature`), `malformed_signature` (not a well-formed XML-DSig signature: several
      signatures, one not a child of the root, a missing element, bad base64, …), `no_sender` (no
      `BaseTransfer/copCode`, or BaseTransfers naming different senders), `forbidden_reference` (a Reference
      other than `URI=""`, or more than one), `forbidden_transform` (anything but enveloped-signature and
      C14N 1.0, e.g. XSLT or XPath), `unsupported_algorithm` (a canonicalization, signature or digest method
      other than C14N 1.0, RSA-SHA1/RSA-SHA256, SHA-1/SHA-256 and SM2-SM3), `unknown_sender` (no certificate
      configured for the sender), `no_certificate` (KeyInfo carries no X509Certificate, or several),
      `untrusted_certificate` (KeyInfo's certificate is not one configured for the sender), `sm2_unsupported`
      (SM2-SM3: `detail` is `SM2_REFUSAL`), `certificate_not_valid` (outside its validity period at `at`),
      `digest_mismatch` (the message was changed after it was signed), `bad_signature` (SignatureValue not
      made by the certificate's key over SignedInfo).
    - `detail`: one sentence for the sender (English), naming the element or algorithm at fault.
    - `sender`: `BaseTransfer/copCode` when read; `signature_method`: the SignatureMethod URI when read;
      `key_name`: `KeyInfo/KeyName` (customs' certificate number) when present; `certificate_sha256`: hex
      SHA-256 of the DER certificate KeyInfo carries, when present.
    """

    ok: bool
    reason: str
    detail: str
    sender: str | None = None
    signature_method: str | None = None
    key_name: str | None = None
    certificate_sha256: str | None = None


class _Refused(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def verify(message: bytes, trusted: Mapping[str, Certificates], *, at: datetime | None = None) -> Verdict:
    """Verify the enveloped XML-DSig signature of one CEB message.

    `message`: the request body as received (bytes; the same bytes `messages.parse_message` reads).
    `trusted`: sender code (as in `BaseTransfer/copCode`) → that sender's signing certificate, or several
    (`cryptography.x509.Certificate`; `load_certificates` builds this mapping from `SW_CEB_CERTIFICATES`).
    `at`: the time at which the certificate must be valid (aware datetime); default now.

    Returns a `Verdict` (see its docstring for every `reason`); raises only `TypeError` when `message` is not
    bytes (a programming error, as `parse_message` does). The checks run in this order, so the first failure
    is the one reported: readable XML; one Signature, a child of the root; the sender; the Reference and its
    transforms; the algorithms; the sender's certificate; SM2; then signxml's verification.
    """
    if not isinstance(message, (bytes, bytearray)):
        raise TypeError("verify takes the message as received, in bytes")
    facts: dict[str, Any] = {}
    try:
        certificate = _check(bytes(message), trusted, facts)
        _verify_with_signxml(bytes(message), certificate, at)
    except _Refused as refused:
        return Verdict(False, refused.reason, refused.detail, **facts)
    return Verdict(True, "verified",
                   f"signature verified with the certificate configured for sender {facts['sender']}", **facts)


def _check(data: bytes, trusted: Mapping[str, Certificates], facts: dict[str, Any]) -> x509.Certificate:
    """Everything but the cryptography: returns the configured certificate to verify with, or raises
    `_Refused`. Fills `facts` (the Verdict's descriptive fields) as it reads them."""
    # Same hardened reading as messages.parse_message: no DTD, no entity, no network.
    if _DOCTYPE.search(data):
        raise _Refused("malformed", "a DOCTYPE or ENTITY declaration is not accepted in a CEB message")
    try:
        root = etree.fromstring(data, parser=etree.XMLParser(**_PARSER_OPTIONS))
    except (etree.XMLSyntaxError, ValueError) as e:
        raise _Refused("malformed", f"not well-formed XML: {e}") from None
    if root.getroottree().docinfo.doctype:
        raise _Refused("malformed", "a DOCTYPE is not accepted in a CEB message")

    signatures = root.findall(".//ds:Signature", _DS)
    if not signatures:
        raise _Refused("unsigned", "the message carries no ds:Signature, and signatures are verified here")
    if len(signatures) > 1:
        raise _Refused("malformed_signature", f"the message carries {len(signatures)} ds:Signature elements; "
                       "exactly one, a child of the message root, is expected")
    signature = signatures[0]
    if signature.getparent() is not root:
        raise _Refused("malformed_signature", "ds:Signature must be a child of the message root "
                       f"({etree.QName(root).localname})")

    copcodes = {(el.text or "").strip() for el in root.findall("ceb:BaseTransfer/ceb:copCode", {"ceb": NS})}
    copcodes.discard("")
    if len(copcodes) != 1:
        raise _Refused("no_sender", "BaseTransfer/copCode names no sender" if not copcodes else
                       f"the BaseTransfer elements name different senders ({', '.join(sorted(copcodes))})")
    sender = facts["sender"] = copcodes.pop()

    signed_info = _one(signature, "ds:SignedInfo")
    canonicalization = _algorithm(_one(signed_info, "ds:CanonicalizationMethod"))
    method = facts["signature_method"] = _algorithm(_one(signed_info, "ds:SignatureMethod"))
    references = signed_info.findall("ds:Reference", _DS)
    if len(references) != 1:
        raise _Refused("forbidden_reference", f"SignedInfo holds {len(references)} Reference elements; exactly "
                       "one, URI=\"\" (the whole message), is accepted")
    reference = references[0]
    uri = reference.get("URI")
    if uri != "":
        raise _Refused("forbidden_reference", f"Reference URI={uri!r} is not accepted: only URI=\"\" (the whole "
                       "message, enveloped) is; nothing outside the message is ever fetched")
    transforms = [_algorithm(t) for t in reference.findall("ds:Transforms/ds:Transform", _DS)]
    for transform in transforms:
        if transform not in REFERENCE_TRANSFORMS:
            raise _Refused("forbidden_transform", f"Transform {transform!r} is not accepted: only the "
                           "enveloped-signature transform and C14N 1.0 are")
    if ENVELOPED_SIGNATURE not in transforms:
        raise _Refused("forbidden_transform", "the Reference lacks the enveloped-signature transform "
                       f"({ENVELOPED_SIGNATURE}) an enveloped signature needs")
    digest = _algorithm(_one(reference, "ds:DigestMethod"))

    sm2 = method in SM2_SM3 or digest in SM3
    if canonicalization not in CANONICALIZATIONS:
        raise _Refused("unsupported_algorithm", f"CanonicalizationMethod {canonicalization!r} is not accepted: "
                       f"C14N 1.0 ({C14N_10}) is")
    if not sm2 and method not in SIGNATURE_METHODS:
        raise _Refused("unsupported_algorithm", f"SignatureMethod {method!r} is not supported: RSA-SHA1, "
                       "RSA-SHA256 (and SM2-SM3, recognised but not verifiable here) are")
    if not sm2 and digest not in DIGEST_METHODS:
        raise _Refused("unsupported_algorithm", f"DigestMethod {digest!r} is not supported: SHA-1 and SHA-256 "
                       "are")

    key_info = signature.find("ds:KeyInfo", _DS)
    if key_info is not None:
        key_name = key_info.find("ds:KeyName", _DS)
        if key_name is not None and (key_name.text or "").strip():
            facts["key_name"] = key_name.text.strip()
    configured = _as_list(trusted.get(sender))
    if not configured:
        raise _Refused("unknown_sender", f"no signing certificate is configured for sender {sender} "
                       "(BaseTransfer/copCode), so its signature cannot be trusted")
    carried = [] if key_info is None else key_info.findall("ds:X509Data/ds:X509Certificate", _DS)
    if len(carried) != 1:
        raise _Refused("no_certificate", f"KeyInfo/X509Data carries {len(carried)} X509Certificate elements; "
                       "exactly one, the sender's signing certificate, is expected")
    try:
        der = base64.b64decode("".join((carried[0].text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise _Refused("malformed_signature", "KeyInfo/X509Data/X509Certificate is not base64") from None
    facts["certificate_sha256"] = hashlib.sha256(der).hexdigest()
    certificate = next((c for c in configured if c.public_bytes(Encoding.DER) == der), None)
    if certificate is None:
        raise _Refused("untrusted_certificate", f"the certificate in KeyInfo (SHA-256 "
                       f"{facts['certificate_sha256']}) is not the one configured for sender {sender}")
    if sm2:
        raise _Refused("sm2_unsupported", SM2_REFUSAL)
    return certificate


def _verify_with_signxml(data: bytes, certificate: x509.Certificate, at: datetime | None) -> None:
    """signxml's verification with the configured certificate (never the one in the message): canonicalizes
    SignedInfo, checks SignatureValue with the certificate's key, then the Reference's digest over the
    message without its Signature; checks the certificate's validity period at `at`."""
    config = _CONFIG if at is None else dataclasses.replace(_CONFIG, verification_time=at)
    try:
        XMLVerifier().verify(data, x509_cert=certificate, parser=etree.XMLParser(**_PARSER_OPTIONS),
                             expect_config=config)
    except InvalidDigest:
        raise _Refused("digest_mismatch", "the message was changed after it was signed: the digest of the "
                       "message does not match Reference/DigestValue") from None
    except InvalidCertificate as e:
        raise _Refused("certificate_not_valid", f"the sender's certificate is not valid now: {e}") from None
    except InvalidSignature:
        raise _Refused("bad_signature", "SignatureValue was not made over SignedInfo by the key of the sender's "
                       "configured certificate") from None
    except etree.DocumentInvalid as e:
        raise _Refused("malformed_signature", f"ds:Signature does not follow the XML-DSig schema: {e}") from None
    except (InvalidInput, SignXMLException, etree.LxmlError, ValueError, TypeError) as e:
        # InvalidInput is signxml's "not a signature it can process" (e.g. a key that is not RSA under an RSA
        # SignatureMethod); ValueError covers bad base64 in SignatureValue/DigestValue.
        raise _Refused("malformed_signature", f"the signature cannot be processed: {e}") from None


def _one(parent: Any, path: str) -> Any:
    found = parent.findall(path, _DS)
    if len(found) != 1:
        raise _Refused("malformed_signature", f"{etree.QName(parent).localname} holds {len(found)} "
                       f"{path.split(':')[-1]} elements; exactly one is expected")
    return found[0]


def _algorithm(el: Any) -> str:
    value = el.get("Algorithm")
    if not value:
        raise _Refused("malformed_signature", f"{etree.QName(el).localname} has no Algorithm")
    return value.strip()


def _as_list(value: Certificates | None) -> list[x509.Certificate]:
    if value is None:
        return []
    if isinstance(value, x509.Certificate):
        return [value]
    return list(value)


def load_certificates(directory: Path | str) -> dict[str, tuple[x509.Certificate, ...]]:
    """Read `SW_CEB_CERTIFICATES`: every `<code>.pem` file of `directory` (not its subdirectories) → the
    certificates it holds, keyed by `<code>` (the file name without `.pem`: the sender's code as it appears in
    `BaseTransfer/copCode`). A file may hold several certificates (a sender replacing its certificate).
    Raises `ValueError` for a missing directory, or a `.pem` file holding no readable certificate: a
    misconfiguration should stop the gateway at start, not refuse senders one by one."""
    path = Path(directory)
    if not path.is_dir():
        raise ValueError(f"SW_CEB_CERTIFICATES: {path} is not a directory")
    out: dict[str, tuple[x509.Certificate, ...]] = {}
    for file in sorted(path.glob("*.pem")):
        try:
            certificates = tuple(x509.load_pem_x509_certificates(file.read_bytes()))
        except ValueError as e:
            raise ValueError(f"SW_CEB_CERTIFICATES: {file} holds no readable PEM certificate ({e})") from None
        out[file.stem] = certificates
    return out


__all__ = ["Verdict", "verify", "load_certificates", "SM2_REFUSAL", "SM2_SM3", "SM3", "RSA_SHA1", "RSA_SHA256",
           "C14N_10", "ENVELOPED_SIGNATURE"]
