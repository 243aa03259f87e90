//! Why a TLS handshake failed, in words: what a `refused` entry says. rustls' own texts are
//! partly Rust debug strings (`client certificate invalid:
//! Other(OtherError(UnsupportedCertVersion))`, `peer is incompatible:
//! NoCipherSuitesInCommon`); here each error a client can cause is said as what it means and,
//! where the sender can do something, what. The certificate errors rustls does not name
//! itself come from its verifier, webpki, inside `CertificateError::Other`: they are read
//! back from there (the `rustls-webpki` dependency is the version rustls uses, so the type is
//! the same one). Anything not named here is still written as words, never as a debug string
//! ([`words`]).

use rustls::{CertificateError, Error, PeerIncompatible};

/// An X.509 v1 certificate: what `openssl x509 -req` makes without `-extfile`, the most
/// common recipe. webpki refuses it; this says how to issue a v3 one.
pub const V1_CERTIFICATE: &str = "client certificate is an X.509 v1 certificate (what `openssl \
     x509 -req` makes without -extfile), and only v3 certificates are accepted: issue it again \
     with `openssl x509 -req … -extfile client.ext`, where client.ext holds \
     `extendedKeyUsage=clientAuth` (and, for its names, `subjectAltName=DNS:…`)";

/// Why the handshake failed with `e` (after "TLS handshake failed: ").
pub fn handshake_error(e: &Error) -> String {
    match e {
        Error::NoCertificatesPresented => "no client certificate".into(),
        Error::InvalidCertificate(c) => certificate(c),
        Error::PeerIncompatible(p) => incompatible(p),
        Error::PeerMisbehaved(m) => format!(
            "the client broke the TLS protocol ({})",
            words(&format!("{m:?}"))
        ),
        Error::AlertReceived(alert) => format!(
            "the client ended the handshake with the alert \"{}\" (it did not accept the \
             server's certificate, or gave up)",
            words(&format!("{alert:?}"))
        ),
        Error::InvalidMessage(m) => format!(
            "the client sent a malformed TLS message ({})",
            words(&format!("{m:?}"))
        ),
        Error::InappropriateMessage { .. } | Error::InappropriateHandshakeMessage { .. } => {
            "the client sent a TLS message out of order".into()
        }
        Error::DecryptError => "a message from the client could not be decrypted".into(),
        Error::PeerSentOversizedRecord => "the client sent a TLS record over the size limit".into(),
        other => words(&format!("{other:?}")),
    }
}

/// A client certificate that failed verification.
fn certificate(e: &CertificateError) -> String {
    use CertificateError as C;
    match e {
        C::UnknownIssuer => {
            "client certificate not signed by tls.client_ca (unknown issuer)".into()
        }
        C::Expired | C::ExpiredContext { .. } => "client certificate expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "client certificate not valid yet".into(),
        C::Revoked => "client certificate revoked".into(),
        C::BadEncoding => "client certificate is not a well-formed certificate (bad DER)".into(),
        C::BadSignature => "client certificate's signature does not match its issuer's key".into(),
        #[allow(deprecated)]
        C::UnsupportedSignatureAlgorithm
        | C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "client certificate is signed with an algorithm that is not supported (use ECDSA \
             P-256/P-384, Ed25519 or RSA with SHA-256 or better)"
                .into()
        }
        C::UnhandledCriticalExtension => {
            "client certificate has a critical extension that is not understood".into()
        }
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "client certificate is not for client authentication (its extendedKeyUsage lacks \
             clientAuth: issue it with `extendedKeyUsage=clientAuth`)"
                .into()
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "client certificate not valid for the name it was checked against".into()
        }
        C::UnknownRevocationStatus => "client certificate's revocation status is unknown".into(),
        C::ApplicationVerificationFailure => "client certificate refused".into(),
        C::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
            Some(e) => webpki_error(e),
            None => format!(
                "client certificate invalid: {}",
                words(&other.0.to_string())
            ),
        },
        other => format!(
            "client certificate invalid: {}",
            words(&format!("{other:?}"))
        ),
    }
}

/// The verifier's errors rustls passes on as they are.
fn webpki_error(e: &webpki::Error) -> String {
    use webpki::Error as W;
    let why = match e {
        W::UnsupportedCertVersion => return V1_CERTIFICATE.into(),
        W::CaUsedAsEndEntity => {
            "client certificate is a CA certificate (basicConstraints CA:TRUE), not a client's: \
             present a certificate that CA signed"
        }
        W::EndEntityUsedAsCa => {
            "a certificate in the client's chain signed another but is not a CA (no \
             basicConstraints CA:TRUE)"
        }
        W::CertDistrusted => "client certificate's key is distrusted",
        W::EmptyEkuExtension => "client certificate has an empty extendedKeyUsage",
        W::ExtensionValueInvalid | W::MalformedExtensions => {
            "client certificate has a malformed extension"
        }
        W::UnsupportedCriticalExtension => {
            "client certificate has a critical extension that is not understood"
        }
        W::InvalidSerialNumber => "client certificate has an invalid serial number",
        W::MalformedDnsIdentifier => "client certificate has a malformed DNS name",
        W::NameConstraintViolation => "client certificate violates its CA's name constraints",
        W::PathLenConstraintViolated => {
            "the client's chain is longer than a CA's pathLenConstraint allows"
        }
        W::SignatureAlgorithmMismatch => {
            "client certificate names two different signature algorithms"
        }
        W::MaximumPathBuildCallsExceeded
        | W::MaximumSignatureChecksExceeded
        | W::MaximumPathDepthExceeded
        | W::MaximumNameConstraintComparisonsExceeded => {
            "the client's certificate chain is too complex to verify"
        }
        W::TrailingData(_) => "client certificate has data after its end",
        other => {
            return format!(
                "client certificate invalid: {}",
                words(&format!("{other:?}"))
            )
        }
    };
    why.into()
}

/// A client whose TLS cannot meet the server's.
fn incompatible(p: &PeerIncompatible) -> String {
    use PeerIncompatible as P;
    match p {
        P::NoCipherSuitesInCommon => "the client offers no cipher suite the server accepts".into(),
        P::NoKxGroupsInCommon => {
            "the client offers no key exchange group the server accepts".into()
        }
        P::NoSignatureSchemesInCommon => {
            "the client offers no signature scheme the server's certificate can use".into()
        }
        P::SupportedVersionsExtensionRequired
        | P::Tls12NotOffered
        | P::Tls12NotOfferedOrEnabled
        | P::ServerDoesNotSupportTls12Or13 => {
            "the client offers no TLS version the server accepts (TLS 1.2 or 1.3, see \
             tls.min_version)"
                .into()
        }
        other => format!(
            "the client's TLS is incompatible ({})",
            words(&format!("{other:?}"))
        ),
    }
}

/// A debug string as words: `Other(OtherError(UnsupportedCertVersion))` → `other, other
/// error, unsupported cert version`; CamelCase split and lowercased (acronyms kept: `UnknownCA`
/// → `unknown CA`), brackets and quotes dropped, `_` as a space.
pub fn words(debug: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = debug.chars().collect();
    let mut pending_sep = false;
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphanumeric() || c == '.' || c == '-' {
            if pending_sep && !out.is_empty() {
                out.push_str(", ");
            }
            pending_sep = false;
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            let starts_word = c.is_uppercase()
                && prev.is_some_and(|p| {
                    p.is_lowercase()
                        || p.is_ascii_digit()
                        || (p.is_uppercase() && next.is_some_and(char::is_lowercase))
                });
            if starts_word && !out.ends_with(' ') && !out.ends_with(", ") && !out.is_empty() {
                out.push(' ');
            }
            // An acronym (two capitals in a row, or a capital before a digit) stays.
            let in_acronym = c.is_uppercase()
                && (prev.is_some_and(char::is_uppercase) || next.is_some_and(char::is_uppercase));
            if in_acronym {
                out.push(c);
            } else {
                out.extend(c.to_lowercase());
            }
        } else if c == ' ' || c == '_' {
            if !out.is_empty() && !out.ends_with(' ') && !pending_sep {
                out.push(' ');
            }
        } else {
            // Brackets, braces, quotes, colons, commas: a break between words.
            let trimmed = out.trim_end().len();
            out.truncate(trimmed);
            pending_sep = true;
        }
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_strings_become_words() {
        assert_eq!(
            words("Other(OtherError(UnsupportedCertVersion))"),
            "other, other error, unsupported cert version"
        );
        assert_eq!(words("UnknownCA"), "unknown CA");
        assert_eq!(words("NoKxGroupsInCommon"), "no kx groups in common");
        assert_eq!(words("BadCertificate"), "bad certificate");
        assert_eq!(
            words("General(\"x y\")"),
            "general, x y",
            "a text inside stays as it is"
        );
    }

    #[test]
    fn webpki_errors_passed_on_by_rustls_are_named() {
        let other = |e: webpki::Error| {
            Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
                std::sync::Arc::new(e),
            )))
        };
        assert_eq!(
            handshake_error(&other(webpki::Error::UnsupportedCertVersion)),
            V1_CERTIFICATE
        );
        let ca = handshake_error(&other(webpki::Error::CaUsedAsEndEntity));
        assert!(
            ca.starts_with("client certificate is a CA certificate"),
            "{ca}"
        );
        let unnamed = handshake_error(&other(webpki::Error::UnsupportedDeltaCrl));
        assert_eq!(unnamed, "client certificate invalid: unsupported delta crl");
        let alert = handshake_error(&Error::AlertReceived(rustls::AlertDescription::UnknownCA));
        assert!(alert.contains("\"unknown CA\""), "{alert}");
        assert_eq!(
            handshake_error(&Error::PeerIncompatible(
                PeerIncompatible::NoCipherSuitesInCommon
            )),
            "the client offers no cipher suite the server accepts"
        );
    }
}
