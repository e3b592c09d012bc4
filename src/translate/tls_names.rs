//! The TLS parameter names a ClientTrafficPolicy may give, so that a name Envoy
//! would refuse (which would NACK the whole listener) is caught at translation,
//! naming the value.
//!
//! Ciphers are Envoy Gateway v1.9.0's list (OpenSSL and IANA spellings). Curves and
//! signature algorithms are the names BoringSSL in Envoy 1.40 accepts, found by
//! trying them on it; the golden case `26-ctp-tls-every-name.yaml` gives every
//! name here to real Envoy, and a unit test keeps the two in step.

/// TLS 1.2-and-below cipher suites.
pub const CIPHERS: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "AES128-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "AES256-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
];

/// ECDH groups (key exchange) by the name Envoy reports, with the OpenSSL aliases
/// BoringSSL also takes. Two names of one group in a list make Envoy refuse it.
const ECDH_CURVES: &[(&str, &[&str])] = &[
    ("X25519", &["x25519"]),
    ("P-256", &["prime256v1"]),
    ("P-384", &["secp384r1"]),
    ("P-521", &["secp521r1"]),
    ("X25519MLKEM768", &[]),
    ("MLKEM1024", &[]),
];

/// The group an ECDH curve name stands for, if Envoy knows it.
pub fn ecdh_curve(name: &str) -> Option<&'static str> {
    ECDH_CURVES
        .iter()
        .find(|(canonical, aliases)| *canonical == name || aliases.contains(&name))
        .map(|(canonical, _)| *canonical)
}

/// Every ECDH curve name [`ecdh_curve`] accepts.
pub fn ecdh_curve_names() -> Vec<&'static str> {
    ECDH_CURVES
        .iter()
        .flat_map(|(canonical, aliases)| std::iter::once(*canonical).chain(aliases.iter().copied()))
        .collect()
}

/// Signature algorithms by TLS 1.3 name.
const SIGNATURE_ALGORITHMS: &[&str] = &[
    "rsa_pkcs1_sha1",
    "rsa_pkcs1_sha256",
    "rsa_pkcs1_sha384",
    "rsa_pkcs1_sha512",
    "ecdsa_sha1",
    "ecdsa_secp256r1_sha256",
    "ecdsa_secp384r1_sha384",
    "ecdsa_secp521r1_sha512",
    "rsa_pss_rsae_sha256",
    "rsa_pss_rsae_sha384",
    "rsa_pss_rsae_sha512",
    "ed25519",
];

/// The TLS 1.3 name of a signature algorithm given by that name or in OpenSSL's
/// `KEY+HASH` form, if Envoy knows it. Two names of one algorithm in a list make
/// Envoy refuse it.
pub fn signature_algorithm(name: &str) -> Option<String> {
    if SIGNATURE_ALGORITHMS.contains(&name) {
        return Some(name.to_string());
    }
    let (key, hash) = name.split_once('+')?;
    let bits = match hash {
        "SHA1" => "1",
        "SHA256" => "256",
        "SHA384" => "384",
        "SHA512" => "512",
        _ => return None,
    };
    match (key, bits) {
        ("RSA", _) => Some(format!("rsa_pkcs1_sha{bits}")),
        ("ECDSA", "1") => Some("ecdsa_sha1".to_string()),
        ("ECDSA", "256") => Some("ecdsa_secp256r1_sha256".to_string()),
        ("ECDSA", "384") => Some("ecdsa_secp384r1_sha384".to_string()),
        ("ECDSA", "512") => Some("ecdsa_secp521r1_sha512".to_string()),
        ("RSA-PSS" | "PSS", "1") => None,
        ("RSA-PSS" | "PSS", _) => Some(format!("rsa_pss_rsae_sha{bits}")),
        _ => None,
    }
}

/// Every signature algorithm name in OpenSSL's `KEY+HASH` form that
/// [`signature_algorithm`] accepts (the TLS 1.3 names are the other half).
pub fn openssl_signature_algorithm_names() -> Vec<String> {
    let mut out = Vec::new();
    for key in ["RSA", "ECDSA", "RSA-PSS", "PSS"] {
        for hash in ["SHA1", "SHA256", "SHA384", "SHA512"] {
            let name = format!("{key}+{hash}");
            if signature_algorithm(&name).is_some() {
                out.push(name);
            }
        }
    }
    out
}

/// The TLS 1.3 signature algorithm names.
pub fn tls13_signature_algorithm_names() -> &'static [&'static str] {
    SIGNATURE_ALGORITHMS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases() {
        let sig = |n: &str| signature_algorithm(n);
        assert_eq!(
            sig("ecdsa_secp256r1_sha256").as_deref(),
            Some("ecdsa_secp256r1_sha256")
        );
        assert_eq!(sig("RSA+SHA256").as_deref(), Some("rsa_pkcs1_sha256"));
        assert_eq!(sig("PSS+SHA384").as_deref(), Some("rsa_pss_rsae_sha384"));
        assert_eq!(sig("RSA-PSS+SHA1"), None);
        assert_eq!(sig("rsa_pss_pss_sha256"), None);
        assert_eq!(sig("Ed25519"), None);
        assert_eq!(openssl_signature_algorithm_names().len(), 14);
        assert_eq!(ecdh_curve("prime256v1"), Some("P-256"));
        assert_eq!(ecdh_curve("P-224"), None);
    }

    /// The golden case that feeds every name to real Envoy names exactly these.
    #[test]
    fn the_every_name_golden_case_lists_every_name() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/in/26-ctp-tls-every-name.yaml"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let quoted: std::collections::BTreeSet<&str> = text
            .lines()
            // The TLS lists' items; the route's hostnames sit less deep.
            .filter_map(|l| l.strip_prefix("      - \""))
            .filter_map(|l| l.strip_suffix('"'))
            .collect();
        let expected: std::collections::BTreeSet<String> = CIPHERS
            .iter()
            .map(|s| s.to_string())
            .chain(ecdh_curve_names().into_iter().map(String::from))
            .chain(
                tls13_signature_algorithm_names()
                    .iter()
                    .map(|s| s.to_string()),
            )
            .chain(openssl_signature_algorithm_names())
            .collect();
        let quoted: std::collections::BTreeSet<String> =
            quoted.into_iter().map(String::from).collect();
        assert_eq!(quoted, expected);
    }
}
