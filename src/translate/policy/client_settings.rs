//! ClientTrafficPolicy fields -> [`ir::ClientSettings`]: every value checked,
//! the first problem naming its field.

use crate::api::client_traffic_policy as api;
use crate::api::shared as shared_api;
use crate::ir;
use crate::translate::conditions::Problem;
use crate::translate::index::{CrossRef, Index};

use super::fields::{bytes_u32, duration, http2, invalid, parse_cidr, regex, tcp_keepalive};

/// Validates a policy's values into IR settings; the first problem names its field.
pub fn convert(
    spec: &api::ClientTrafficPolicySpec,
    namespace: &str,
    index: &Index<'_>,
) -> Result<ir::ClientSettings, Problem> {
    let mut s = ir::ClientSettings::default();

    if let Some(k) = &spec.tcp_keepalive {
        s.tcp_keepalive = Some(tcp_keepalive(k)?);
    }

    s.proxy_protocol = match (&spec.proxy_protocol, spec.enable_proxy_protocol) {
        (Some(p), _) => Some(ir::ProxyProtocol {
            optional: p.optional.unwrap_or(false),
        }),
        (None, Some(true)) => Some(ir::ProxyProtocol { optional: false }),
        _ => None,
    };

    if let Some(ip) = &spec.client_ip_detection {
        s.client_ip = client_ip(ip)?;
    }
    if let Some(tls) = &spec.tls {
        s.tls = Some(client_tls(tls, namespace, index)?);
    }
    if let Some(path) = &spec.path {
        s.path = Some(ir::PathNormalization {
            escaped_slashes: match path
                .escaped_slashes_action
                .unwrap_or(api::PathEscapedSlashAction::UnescapeAndRedirect)
            {
                api::PathEscapedSlashAction::KeepUnchanged => ir::EscapedSlashes::KeepUnchanged,
                api::PathEscapedSlashAction::RejectRequest => ir::EscapedSlashes::RejectRequest,
                api::PathEscapedSlashAction::UnescapeAndForward => {
                    ir::EscapedSlashes::UnescapeAndForward
                }
                api::PathEscapedSlashAction::UnescapeAndRedirect => {
                    ir::EscapedSlashes::UnescapeAndRedirect
                }
            },
            merge_slashes: !path.disable_merge_slashes.unwrap_or(false),
        });
    }
    if let Some(h) = &spec.headers {
        s.headers = headers(h)?;
    }
    if let Some(t) = &spec.timeout {
        if let Some(tcp) = &t.tcp {
            s.timeouts.tcp_idle = duration("spec.timeout.tcp.idleTimeout", &tcp.idle_timeout)?;
            s.timeouts.tls_handshake = duration(
                "spec.timeout.tcp.tlsHandshakeTimeout",
                &tcp.tls_handshake_timeout,
            )?;
            s.timeouts.connection_inspection = duration(
                "spec.timeout.tcp.connectionInspectionTimeout",
                &tcp.connection_inspection_timeout,
            )?;
        }
        if let Some(http) = &t.http {
            s.timeouts.request_received = duration(
                "spec.timeout.http.requestReceivedTimeout",
                &http.request_received_timeout,
            )?;
            s.timeouts.request_headers_received = duration(
                "spec.timeout.http.requestHeadersReceivedTimeout",
                &http.request_headers_received_timeout,
            )?;
            s.timeouts.http_idle = duration("spec.timeout.http.idleTimeout", &http.idle_timeout)?;
            s.timeouts.stream_idle = duration(
                "spec.timeout.http.streamIdleTimeout",
                &http.stream_idle_timeout,
            )?;
        }
    }
    if let Some(c) = &spec.connection {
        s.connection = connection(c)?;
    }
    if let Some(h1) = &spec.http1 {
        s.http1 = ir::Http1Settings {
            enable_trailers: h1.enable_trailers.unwrap_or(false),
            preserve_header_case: h1.preserve_header_case.unwrap_or(false),
            // The default host (useDefaultHost) depends on the listener; it is
            // filled in when the listener is assembled.
            http10: h1.http10.as_ref().map(|h| ir::Http10 {
                use_default_host: h.use_default_host.unwrap_or(false),
                default_host: None,
            }),
            disable_safe_max_connection_duration: h1
                .disable_safe_max_connection_duration
                .unwrap_or(false),
            ignored_upgrade_types: h1
                .ignored_upgrade_types
                .iter()
                .flatten()
                .map(string_matcher)
                .collect(),
        };
    }
    if let Some(h2) = &spec.http2 {
        s.http2 = http2(h2)?;
    }
    s.http3 = spec.http3.as_ref().map(|_| ir::Http3::default());
    s.grpc_web = spec
        .grpc
        .as_ref()
        .and_then(|g| g.enable_web)
        .unwrap_or(false);
    if let Some(hc) = &spec.health_check {
        if !hc.path.starts_with('/') {
            return Err(invalid("spec.healthCheck.path", "must start with '/'"));
        }
        s.health_check_path = Some(hc.path.clone());
    }
    s.scheme_match_backend = spec.scheme == Some(api::SchemeHeaderTransform::MatchBackend);
    Ok(s)
}

fn client_ip(ip: &api::ClientIpDetectionSettings) -> Result<ir::ClientIpDetection, Problem> {
    const FIELD: &str = "spec.clientIPDetection";
    let chosen = [
        ip.x_forwarded_for.is_some(),
        ip.custom_header.is_some(),
        ip.direct_source_ip.is_some(),
    ];
    if chosen.iter().filter(|set| **set).count() != 1 {
        return Err(invalid(
            FIELD,
            "set exactly one of xForwardedFor, customHeader and directSourceIP",
        ));
    }
    if let Some(xff) = &ip.x_forwarded_for {
        let trust = match (xff.num_trusted_hops, &xff.trusted_cidrs) {
            (Some(hops), None) => ir::XffTrust::Hops(hops),
            (None, Some(cidrs)) if !cidrs.is_empty() => ir::XffTrust::Cidrs(
                cidrs
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        parse_cidr(c).map_err(|e| {
                            invalid(&format!("{FIELD}.xForwardedFor.trustedCIDRs[{i}]"), e)
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            _ => {
                return Err(invalid(
                    &format!("{FIELD}.xForwardedFor"),
                    "set exactly one of numTrustedHops and trustedCIDRs",
                ));
            }
        };
        return Ok(ir::ClientIpDetection::XForwardedFor {
            trust,
            append: !xff.disable_x_forwarded_for_append.unwrap_or(false),
        });
    }
    if let Some(h) = &ip.custom_header {
        let ok = !h.name.is_empty()
            && h.name.len() <= 255
            && h.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(invalid(
                &format!("{FIELD}.customHeader.name"),
                format!(
                    "{:?} is not a header name (letters, digits and '-', up to 255)",
                    h.name
                ),
            ));
        }
        return Ok(ir::ClientIpDetection::CustomHeader {
            name: h.name.clone(),
            fail_closed: h.fail_closed.unwrap_or(false),
        });
    }
    // directSourceIP: the connection's peer, which is Envoy's own default.
    Ok(ir::ClientIpDetection::Peer)
}

fn string_matcher(m: &shared_api::StringMatch) -> ir::StringMatcher {
    let value = m.value.clone();
    match m.type_.unwrap_or_default() {
        shared_api::StringMatchType::Exact => ir::StringMatcher::Exact(value),
        shared_api::StringMatchType::Prefix => ir::StringMatcher::Prefix(value),
        shared_api::StringMatchType::Suffix => ir::StringMatcher::Suffix(value),
        shared_api::StringMatchType::RegularExpression => ir::StringMatcher::Regex(value),
    }
}

pub(super) fn checked_matcher(
    field: &str,
    m: &shared_api::StringMatch,
) -> Result<ir::StringMatcher, Problem> {
    let matcher = string_matcher(m);
    if let ir::StringMatcher::Regex(r) = &matcher {
        regex(field, r)?;
    }
    Ok(matcher)
}

fn tls_version(v: api::TlsVersion) -> ir::TlsVersion {
    match v {
        api::TlsVersion::Auto => ir::TlsVersion::Auto,
        api::TlsVersion::V1_0 => ir::TlsVersion::V1_0,
        api::TlsVersion::V1_1 => ir::TlsVersion::V1_1,
        api::TlsVersion::V1_2 => ir::TlsVersion::V1_2,
        api::TlsVersion::V1_3 => ir::TlsVersion::V1_3,
    }
}

fn client_tls(
    tls: &api::ClientTlsSettings,
    namespace: &str,
    index: &Index<'_>,
) -> Result<ir::ClientTls, Problem> {
    let params = tls_parameters(
        "spec.tls",
        &TlsParameterFields {
            min_version: tls.min_version,
            max_version: tls.max_version,
            ciphers: tls.ciphers.as_deref(),
            ecdh_curves: tls.ecdh_curves.as_deref(),
            signature_algorithms: tls.signature_algorithms.as_deref(),
        },
    )?;
    let client_validation = tls
        .client_validation
        .as_ref()
        .map(|v| client_validation(v, namespace, index))
        .transpose()?;
    let resumption = tls.session.as_ref().and_then(|s| s.resumption.as_ref());
    Ok(ir::ClientTls {
        params,
        alpn: tls.alpn_protocols.clone(),
        client_validation,
        stateless_resumption: resumption.is_some_and(|r| r.stateless.is_some()),
        stateful_resumption: resumption.is_some_and(|r| r.stateful.is_some()),
        fingerprints: tls
            .fingerprints
            .iter()
            .flatten()
            .map(|f| match f {
                api::TlsFingerprintType::Ja3 => ir::TlsFingerprint::Ja3,
                api::TlsFingerprintType::Ja4 => ir::TlsFingerprint::Ja4,
            })
            .collect(),
    })
}

/// The TLS version and algorithm fields a ClientTrafficPolicy's `tls` and a
/// Backend's `tls` share.
pub(crate) struct TlsParameterFields<'a> {
    pub min_version: Option<api::TlsVersion>,
    pub max_version: Option<api::TlsVersion>,
    pub ciphers: Option<&'a [String]>,
    pub ecdh_curves: Option<&'a [String]>,
    pub signature_algorithms: Option<&'a [String]>,
}

/// TLS versions and algorithms, checked so that Envoy takes them (`field`: where
/// they are written, for messages).
pub(crate) fn tls_parameters(
    field: &str,
    tls: &TlsParameterFields<'_>,
) -> Result<ir::TlsParameters, Problem> {
    // Auto is the lowest minimum and the highest maximum.
    let min_rank = |v: api::TlsVersion| match v {
        api::TlsVersion::Auto => 0,
        other => other as u8,
    };
    let max_rank = |v: api::TlsVersion| match v {
        api::TlsVersion::Auto => 5,
        other => other as u8,
    };
    let min = tls.min_version.map_or(3, min_rank);
    if let Some(max) = tls.max_version
        && min > max_rank(max)
    {
        return Err(invalid(field, "minVersion must not be above maxVersion"));
    }
    if tls.min_version == Some(api::TlsVersion::V1_3) && tls.ciphers.is_some() {
        return Err(invalid(
            &format!("{field}.ciphers"),
            "ciphers have no effect when minVersion is 1.3",
        ));
    }
    use crate::translate::tls_names;
    for (i, name) in tls.ciphers.unwrap_or_default().iter().enumerate() {
        if !tls_names::CIPHERS.contains(&name.as_str()) {
            return Err(invalid(
                &format!("{field}.ciphers[{i}]"),
                format!("{name:?} is not a cipher suite Envoy supports"),
            ));
        }
    }
    distinct_names(
        &format!("{field}.ecdhCurves"),
        tls.ecdh_curves,
        "ECDH curve",
        |n| tls_names::ecdh_curve(n).map(String::from),
    )?;
    distinct_names(
        &format!("{field}.signatureAlgorithms"),
        tls.signature_algorithms,
        "signature algorithm",
        tls_names::signature_algorithm,
    )?;
    let list = |l: Option<&[String]>| l.unwrap_or_default().to_vec();
    Ok(ir::TlsParameters {
        min_version: tls.min_version.map(tls_version),
        max_version: tls.max_version.map(tls_version),
        ciphers: list(tls.ciphers),
        ecdh_curves: list(tls.ecdh_curves),
        signature_algorithms: list(tls.signature_algorithms),
    })
}

/// Each name of the list is one Envoy knows (`canonical` gives what it stands for)
/// and no two stand for the same thing: Envoy refuses a list with both.
fn distinct_names(
    field: &str,
    names: Option<&[String]>,
    what: &str,
    canonical: impl Fn(&str) -> Option<String>,
) -> Result<(), Problem> {
    let mut seen: Vec<(String, &str)> = Vec::new();
    for (i, name) in names.unwrap_or_default().iter().enumerate() {
        let at = format!("{field}[{i}]");
        let Some(meaning) = canonical(name) else {
            return Err(invalid(
                &at,
                format!("{name:?} is not a {what} Envoy supports"),
            ));
        };
        if let Some((_, earlier)) = seen.iter().find(|(m, _)| *m == meaning) {
            return Err(invalid(
                &at,
                format!(
                    "{name:?} names the same {what} as {earlier:?}; Envoy refuses a list with both"
                ),
            ));
        }
        seen.push((meaning, name));
    }
    Ok(())
}

/// The PEM texts under `key` of list field `field`'s ConfigMaps and Secrets, one
/// bundle (empty for an empty list).
pub(crate) fn pem_bundle(
    field: &str,
    refs: impl IntoIterator<Item = impl std::borrow::Borrow<shared_api::SecretObjectReference>>,
    key: &str,
    from: (&str, &str),
    index: &Index<'_>,
) -> Result<String, Problem> {
    let mut bundle = String::new();
    for (i, r) in refs.into_iter().enumerate() {
        let pem = referenced_text(&format!("{field}[{i}]"), r.borrow(), key, from, index)?;
        bundle.push_str(pem.trim_end());
        bundle.push('\n');
    }
    Ok(bundle)
}

/// The text under `key` of a ConfigMap or Secret that an Envoy Gateway object
/// of `from_kind` in `namespace` (a policy, a Backend) refers to.
pub(crate) fn referenced_text(
    field: &str,
    r: &shared_api::SecretObjectReference,
    key: &str,
    (from_kind, namespace): (&str, &str),
    index: &Index<'_>,
) -> Result<String, Problem> {
    let group = r.group.as_deref().unwrap_or("");
    let kind = r.kind.as_deref().unwrap_or("Secret");
    let ns = r.namespace.as_deref().unwrap_or(namespace);
    if !group.is_empty() || !(kind == "Secret" || kind == "ConfigMap") {
        return Err(invalid(
            field,
            format!("{group}/{kind} is not supported; refer to a ConfigMap or Secret"),
        ));
    }
    let permitted = index.reference_permitted(&CrossRef {
        from_group: crate::translate::ENVOY_GATEWAY_GROUP,
        from_kind,
        from_namespace: namespace,
        to_group: "",
        to_kind: kind,
        to_namespace: ns,
        to_name: &r.name,
    });
    if !permitted {
        return Err(invalid(
            field,
            format!(
                "{kind} {ns}/{} is in another namespace and no ReferenceGrant allows it",
                r.name
            ),
        ));
    }
    let text = if kind == "Secret" {
        let secret = index
            .secret(ns, &r.name)
            .ok_or_else(|| invalid(field, format!("Secret {ns}/{} not found", r.name)))?;
        crate::translate::index::secret_value(secret, key)
    } else {
        index
            .config_map(ns, &r.name)
            .ok_or_else(|| invalid(field, format!("ConfigMap {ns}/{} not found", r.name)))?
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .cloned()
    };
    let text =
        text.ok_or_else(|| invalid(field, format!("{kind} {ns}/{} has no {key}", r.name)))?;
    if !text.contains("-----BEGIN ") {
        return Err(invalid(
            field,
            format!("{kind} {ns}/{}: {key} is not PEM", r.name),
        ));
    }
    Ok(text)
}

fn client_validation(
    v: &api::ClientValidationContext,
    namespace: &str,
    index: &Index<'_>,
) -> Result<ir::ClientValidation, Problem> {
    const FIELD: &str = "spec.tls.clientValidation";
    let mode = match (v.mode, v.optional) {
        (Some(api::ClientValidationMode::Request), _) => ir::ClientCertMode::Request,
        (Some(api::ClientValidationMode::RequireAny), _) => ir::ClientCertMode::RequireAny,
        (Some(api::ClientValidationMode::VerifyIfGiven), _) => ir::ClientCertMode::VerifyIfGiven,
        (Some(api::ClientValidationMode::RequireAndVerify), _) => {
            ir::ClientCertMode::RequireAndVerify
        }
        (None, Some(true)) => ir::ClientCertMode::VerifyIfGiven,
        (None, _) => ir::ClientCertMode::RequireAndVerify,
    };
    let ca_certificates = pem_bundle(
        &format!("{FIELD}.caCertificateRefs"),
        v.ca_certificate_refs.iter().flatten(),
        "ca.crt",
        ("ClientTrafficPolicy", namespace),
        index,
    )?;
    let verifies = matches!(
        mode,
        ir::ClientCertMode::VerifyIfGiven | ir::ClientCertMode::RequireAndVerify
    );
    if verifies && ca_certificates.is_empty() {
        return Err(invalid(
            &format!("{FIELD}.caCertificateRefs"),
            "a CA certificate is needed to verify client certificates",
        ));
    }
    let mut subject_alt_names = Vec::new();
    if let Some(sans) = &v.subject_alt_names {
        let groups = [
            (&sans.dns_names, ir::SanKind::Dns, "dnsNames"),
            (&sans.email_addresses, ir::SanKind::Email, "emailAddresses"),
            (&sans.ip_addresses, ir::SanKind::IpAddress, "ipAddresses"),
            (&sans.uris, ir::SanKind::Uri, "uris"),
        ];
        for (list, kind, name) in groups {
            for (i, m) in list.iter().flatten().enumerate() {
                subject_alt_names.push(ir::SanMatch {
                    kind,
                    oid: None,
                    matcher: checked_matcher(&format!("{FIELD}.subjectAltNames.{name}[{i}]"), m)?,
                });
            }
        }
        for (i, o) in sans.other_names.iter().flatten().enumerate() {
            let m = shared_api::StringMatch {
                type_: o.type_,
                value: o.value.clone(),
            };
            subject_alt_names.push(ir::SanMatch {
                kind: ir::SanKind::OtherName,
                oid: Some(o.oid.clone()),
                matcher: checked_matcher(&format!("{FIELD}.subjectAltNames.otherNames[{i}]"), &m)?,
            });
        }
    }
    let crl = match &v.crl {
        None => None,
        Some(crl) => {
            let pem = pem_bundle(
                &format!("{FIELD}.crl.refs"),
                &crl.refs,
                "ca.crl",
                ("ClientTrafficPolicy", namespace),
                index,
            )?;
            if pem.is_empty() {
                return Err(invalid(
                    &format!("{FIELD}.crl.refs"),
                    "needs at least one reference",
                ));
            }
            Some((pem, crl.only_verify_leaf_certificate.unwrap_or(false)))
        }
    };
    for (i, h) in v.spki_hashes.iter().flatten().enumerate() {
        use base64::Engine;
        let ok = base64::engine::general_purpose::STANDARD
            .decode(h)
            .is_ok_and(|b| b.len() == 32);
        if !ok {
            return Err(invalid(
                &format!("{FIELD}.spkiHashes[{i}]"),
                format!("{h:?} is not a base64 SHA-256 hash"),
            ));
        }
    }
    for (i, h) in v.certificate_hashes.iter().flatten().enumerate() {
        let hex: String = h.chars().filter(|c| *c != ':').collect();
        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(invalid(
                &format!("{FIELD}.certificateHashes[{i}]"),
                format!("{h:?} is not a hex SHA-256 hash"),
            ));
        }
    }
    Ok(ir::ClientValidation {
        ca_certificates,
        mode,
        spki_hashes: v.spki_hashes.clone().unwrap_or_default(),
        certificate_hashes: v.certificate_hashes.clone().unwrap_or_default(),
        subject_alt_names,
        crl,
        allow_expired: v.allow_expired_certificate.unwrap_or(false),
    })
}

/// An HTTP header name (an RFC 7230 token, so never a pseudo-header).
fn check_header_name(field: &str, name: &str) -> Result<(), Problem> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || name.len() > 256 || !name.chars().all(token) {
        return Err(invalid(
            field,
            format!("{name:?} is not an HTTP header name"),
        ));
    }
    Ok(())
}

fn header_filter(
    field: &str,
    f: &shared_api::HttpHeaderFilter,
) -> Result<ir::HeaderFilter, Problem> {
    let pairs = |list: &Option<Vec<shared_api::HttpHeader>>,
                 which: &str|
     -> Result<Vec<(String, String)>, Problem> {
        list.iter()
            .flatten()
            .enumerate()
            .map(|(i, h)| {
                let at = format!("{field}.{which}[{i}]");
                check_header_name(&format!("{at}.name"), &h.name)?;
                if h.value.chars().any(|c| c.is_control() && c != '\t') {
                    return Err(invalid(
                        &format!("{at}.value"),
                        "must not contain control characters",
                    ));
                }
                Ok((h.name.clone(), h.value.clone()))
            })
            .collect()
    };
    for (i, name) in f.remove.iter().flatten().enumerate() {
        check_header_name(&format!("{field}.remove[{i}]"), name)?;
    }
    Ok(ir::HeaderFilter {
        set: pairs(&f.set, "set")?,
        add: pairs(&f.add, "add")?,
        add_if_absent: pairs(&f.add_if_absent, "addIfAbsent")?,
        remove: f.remove.clone().unwrap_or_default(),
        remove_matching: f
            .remove_on_match
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, m)| checked_matcher(&format!("{field}.removeOnMatch[{i}]"), m))
            .collect::<Result<_, _>>()?,
    })
}

fn headers(h: &api::HeaderSettings) -> Result<ir::ClientHeaders, Problem> {
    const FIELD: &str = "spec.headers";
    if h.preserve_x_request_id.is_some() && h.request_id.is_some() {
        return Err(invalid(
            FIELD,
            "preserveXRequestID and requestID cannot both be set",
        ));
    }
    let xfcc = match &h.x_forwarded_client_cert {
        None => None,
        Some(x) => {
            let mode = match x.mode.unwrap_or(api::XfccForwardMode::Sanitize) {
                api::XfccForwardMode::Sanitize => ir::XfccMode::Sanitize,
                api::XfccForwardMode::ForwardOnly => ir::XfccMode::ForwardOnly,
                api::XfccForwardMode::AppendForward => ir::XfccMode::AppendForward,
                api::XfccForwardMode::SanitizeSet => ir::XfccMode::SanitizeSet,
                api::XfccForwardMode::AlwaysForwardOnly => ir::XfccMode::AlwaysForwardOnly,
            };
            let details: Vec<ir::XfccDetail> = x
                .cert_details_to_add
                .iter()
                .flatten()
                .map(|d| match d {
                    api::XfccCertData::Subject => ir::XfccDetail::Subject,
                    api::XfccCertData::Cert => ir::XfccDetail::Cert,
                    api::XfccCertData::Chain => ir::XfccDetail::Chain,
                    api::XfccCertData::Dns => ir::XfccDetail::Dns,
                    api::XfccCertData::Uri => ir::XfccDetail::Uri,
                })
                .collect();
            if !details.is_empty()
                && !matches!(
                    mode,
                    ir::XfccMode::AppendForward | ir::XfccMode::SanitizeSet
                )
            {
                return Err(invalid(
                    &format!("{FIELD}.xForwardedClientCert.certDetailsToAdd"),
                    "can only be set when mode is AppendForward or SanitizeSet",
                ));
            }
            Some((mode, details))
        }
    };
    let request_id = match (h.request_id, h.preserve_x_request_id) {
        (Some(a), _) => Some(match a {
            api::RequestIdAction::PreserveOrGenerate => ir::RequestIdAction::PreserveOrGenerate,
            api::RequestIdAction::Preserve => ir::RequestIdAction::Preserve,
            api::RequestIdAction::Generate => ir::RequestIdAction::Generate,
            api::RequestIdAction::Disable => ir::RequestIdAction::Disable,
        }),
        (None, Some(true)) => Some(ir::RequestIdAction::PreserveOrGenerate),
        (None, _) => None,
    };
    Ok(ir::ClientHeaders {
        // Turns off the X-RateLimit-* headers of BackendTrafficPolicy local
        // rate limits on this listener's routes.
        disable_rate_limit_headers: h.disable_rate_limit_headers == Some(true),
        envoy_headers: h.enable_envoy_headers,
        xfcc,
        underscores: h.with_underscores_action.map(|a| match a {
            api::WithUnderscoresAction::Allow => ir::UnderscoresAction::Allow,
            api::WithUnderscoresAction::RejectRequest => ir::UnderscoresAction::RejectRequest,
            api::WithUnderscoresAction::DropHeader => ir::UnderscoresAction::DropHeader,
        }),
        request_id,
        early_request: h
            .early_request_headers
            .as_ref()
            .map(|f| header_filter(&format!("{FIELD}.earlyRequestHeaders"), f))
            .transpose()?
            .unwrap_or_default(),
        late_response: h
            .late_response_headers
            .as_ref()
            .map(|f| header_filter(&format!("{FIELD}.lateResponseHeaders"), f))
            .transpose()?
            .unwrap_or_default(),
        strip_trailing_host_dot: h
            .host
            .as_ref()
            .and_then(|host| host.strip_trailing_host_dot)
            .unwrap_or(false),
    })
}

fn connection(c: &api::ClientConnection) -> Result<ir::ConnectionSettings, Problem> {
    const FIELD: &str = "spec.connection";
    let mut out = ir::ConnectionSettings {
        buffer_limit: bytes_u32(
            &format!("{FIELD}.bufferLimit"),
            &c.buffer_limit,
            1,
            u32::MAX as u64,
        )?,
        socket_buffer_limit: bytes_u32(
            &format!("{FIELD}.socketBufferLimit"),
            &c.socket_buffer_limit,
            1,
            i32::MAX as u64,
        )?,
        max_accept_per_socket_event: c.max_accept_per_socket_event,
        ..Default::default()
    };
    if let Some(limit) = &c.connection_limit {
        let field = format!("{FIELD}.connectionLimit");
        let close_delay = duration(&format!("{field}.closeDelay"), &limit.close_delay)?;
        match limit.value {
            Some(v) if v >= 1 => {
                out.limit = Some(ir::ConnectionLimit {
                    max_connections: v as u64,
                    close_delay,
                })
            }
            Some(_) => return Err(invalid(&format!("{field}.value"), "must be at least 1")),
            None if close_delay.is_some() => {
                return Err(invalid(
                    &format!("{field}.closeDelay"),
                    "can only be set together with value",
                ));
            }
            None => {}
        }
        out.max_connection_duration = duration(
            &format!("{field}.maxConnectionDuration"),
            &limit.max_connection_duration,
        )?;
        out.max_stream_duration = duration(
            &format!("{field}.maxStreamDuration"),
            &limit.max_stream_duration,
        )?;
        out.max_requests_per_connection = limit.max_requests_per_connection;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Resources;

    fn problem(yaml: &str) -> String {
        let spec: api::ClientTrafficPolicySpec = serde_saphyr::from_str(&format!(
            "targetRefs: [{{group: gateway.networking.k8s.io, kind: Gateway, name: eg}}]\n{yaml}"
        ))
        .unwrap();
        let resources = Resources::default();
        let index = Index::new(&resources);
        convert(&spec, "default", &index).unwrap_err().message
    }

    #[test]
    fn invalid_values_name_their_field() {
        for (yaml, field) in [
            (
                "tcpKeepalive: {idleTime: 20x}",
                "spec.tcpKeepalive.idleTime",
            ),
            (
                "tcpKeepalive: {interval: 500ms}",
                "spec.tcpKeepalive.interval",
            ),
            ("tcpKeepalive: {probes: 0}", "spec.tcpKeepalive.probes"),
            (
                "connection: {bufferLimit: 5Gi}",
                "spec.connection.bufferLimit",
            ),
            (
                "connection: {bufferLimit: 12kb}",
                "spec.connection.bufferLimit",
            ),
            (
                "connection: {connectionLimit: {closeDelay: 1s}}",
                "spec.connection.connectionLimit.closeDelay",
            ),
            (
                "clientIPDetection: {xForwardedFor: {numTrustedHops: 1, trustedCIDRs: [10.0.0.0/8]}}",
                "spec.clientIPDetection.xForwardedFor",
            ),
            (
                "clientIPDetection: {xForwardedFor: {trustedCIDRs: [10.0.0.0/33]}}",
                "spec.clientIPDetection.xForwardedFor.trustedCIDRs[0]",
            ),
            (
                "headers: {earlyRequestHeaders: {set: [{name: ':path', value: x}]}}",
                "spec.headers.earlyRequestHeaders.set[0].name",
            ),
            (
                "clientIPDetection: {directSourceIP: {}, customHeader: {name: x-real-ip}}",
                "spec.clientIPDetection",
            ),
            ("clientIPDetection: {}", "spec.clientIPDetection"),
            (
                "tls: {ciphers: [ECDHE-RSA-AES128-GCM-SHA256, NOT-A-CIPHER]}",
                "spec.tls.ciphers[1]",
            ),
            ("tls: {ecdhCurves: [P-224]}", "spec.tls.ecdhCurves[0]"),
            (
                "tls: {signatureAlgorithms: [rsa_pss_pss_sha256]}",
                "spec.tls.signatureAlgorithms[0]",
            ),
            (
                "timeout: {tcp: {tlsHandshakeTimeout: soon}}",
                "spec.timeout.tcp.tlsHandshakeTimeout",
            ),
            (
                "http2: {connectionKeepalive: {interval: 10s}}",
                "spec.http2.connectionKeepalive.timeout",
            ),
            (
                "http2: {onInvalidMessage: Explode}",
                "spec.http2.onInvalidMessage",
            ),
            ("tls: {minVersion: '1.3', maxVersion: '1.2'}", "spec.tls"),
            (
                "tls: {clientValidation: {}}",
                "spec.tls.clientValidation.caCertificateRefs",
            ),
            (
                "tls: {clientValidation: {mode: Request, spkiHashes: [abc]}}",
                "spec.tls.clientValidation.spkiHashes[0]",
            ),
            ("healthCheck: {path: healthz}", "spec.healthCheck.path"),
        ] {
            let message = problem(yaml);
            assert!(
                message.starts_with(&format!("{field}:")),
                "{yaml}: {message}"
            );
        }
    }
}
