//! The Gateway's own `spec.tls`: client certificate validation on its HTTPS
//! listeners (`frontend.default`, `frontend.perPort`) and the client certificate
//! it would present to TLS backends (`backend.clientCertificateRef`).
//!
//! Frontend validation becomes the listener's [`ir::ClientValidation`] (the same
//! one a ClientTrafficPolicy's `tls.clientValidation` gives, which wins where both
//! apply: the policy is the more specific attachment, and Envoy Gateway lets it
//! replace the Gateway's validation the same way). It applies to HTTPS listeners
//! only, as the API says ("Listeners handling HTTPS traffic") and Envoy Gateway
//! does; listeners that share a port share it, so they stay one Envoy listener.

use gateway_api::gateways::{
    Gateway, GatewayTlsFrontendDefaultValidationMode, GatewayTlsFrontendPerPortTlsValidationMode,
};

use super::GATEWAY_GROUP;
use super::conditions::{Condition, Problem, condition_type, reason};
use super::gateway::{ListenerState, Protocol};
use super::index::{CrossRef, Index};
use crate::ir;

/// A reference from a Gateway's `spec.tls`, its namespace filled in.
struct Ref<'a> {
    group: &'a str,
    kind: &'a str,
    name: &'a str,
    namespace: &'a str,
    /// The Gateway's namespace.
    from: &'a str,
}

impl Ref<'_> {
    fn label(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }

    /// In the Gateway's namespace, or a ReferenceGrant there allows it.
    fn permitted(&self, index: &Index<'_>) -> Result<(), Problem> {
        let allowed = index.reference_permitted(&CrossRef {
            from_group: GATEWAY_GROUP,
            from_kind: "Gateway",
            from_namespace: self.from,
            to_group: "",
            to_kind: self.kind,
            to_namespace: self.namespace,
            to_name: self.name,
        });
        if allowed {
            return Ok(());
        }
        Err(Problem::new(
            reason::REF_NOT_PERMITTED,
            format!(
                "{} is in another namespace and no ReferenceGrant allows it",
                self.label()
            ),
        ))
    }
}

/// One `validation` of `frontend.default` or `frontend.perPort[].tls` (their
/// generated types differ only in name).
struct Validation<'a> {
    /// Where it is written, for messages.
    field: String,
    refs: Vec<Ref<'a>>,
    insecure_fallback: bool,
}

/// The validation in force on Gateway port `port`: the perPort entry for it (an
/// entry without `validation` turns validation off there), else the default.
fn validation_for<'a>(gateway: &'a Gateway, port: i32) -> Option<Validation<'a>> {
    let from = gateway.metadata.namespace.as_deref().unwrap_or("default");
    let to_ref =
        |group: &'a str, kind: &'a str, name: &'a str, namespace: &'a Option<String>| Ref {
            group,
            kind,
            name,
            namespace: namespace.as_deref().unwrap_or(from),
            from,
        };
    let frontend = gateway.spec.tls.as_ref()?.frontend.as_ref()?;
    let per_port = frontend.per_port.iter().flatten().enumerate();
    if let Some((i, entry)) = per_port.into_iter().find(|(_, p)| p.port == port) {
        let v = entry.tls.validation.as_ref()?;
        return Some(Validation {
            field: format!("spec.tls.frontend.perPort[{i}].tls.validation"),
            refs: (v.ca_certificate_refs.iter())
                .map(|r| to_ref(&r.group, &r.kind, &r.name, &r.namespace))
                .collect(),
            insecure_fallback: v.mode
                == Some(GatewayTlsFrontendPerPortTlsValidationMode::AllowInsecureFallback),
        });
    }
    let v = frontend.default.validation.as_ref()?;
    Some(Validation {
        field: "spec.tls.frontend.default.validation".to_string(),
        refs: (v.ca_certificate_refs.iter())
            .map(|r| to_ref(&r.group, &r.kind, &r.name, &r.namespace))
            .collect(),
        insecure_fallback: v.mode
            == Some(GatewayTlsFrontendDefaultValidationMode::AllowInsecureFallback),
    })
}

/// Sets the client certificate validation of `gateway`'s HTTPS listener `state`
/// (one of its own or of a ListenerSet attached to it). A CA reference that does
/// not resolve makes the listener's ResolvedRefs False, naming it; with no CA
/// left, the listener is not accepted (`NoValidCACertificate`) and Envoy does not
/// get it, rather than let clients in unverified.
pub fn apply_frontend_validation(gateway: &Gateway, state: &mut ListenerState, index: &Index<'_>) {
    if state.protocol != Some(Protocol::Https) {
        return;
    }
    let Some(v) = validation_for(gateway, state.port) else {
        return;
    };
    let mut ca_certificates = String::new();
    let mut problems = Vec::new();
    for (i, r) in v.refs.iter().enumerate() {
        let at = format!("{}.caCertificateRefs[{i}]", v.field);
        match ca_certificate(r, index) {
            Ok(pem) => {
                ca_certificates.push_str(pem.trim_end());
                ca_certificates.push('\n');
            }
            Err(p) => problems.push(Problem::new(p.reason, format!("{at}: {}", p.message))),
        }
    }
    if ca_certificates.is_empty() {
        let why = problems
            .first()
            .map_or_else(|| "no caCertificateRefs".to_string(), |p| p.message.clone());
        state.accepted.get_or_insert(Problem::new(
            reason::NO_VALID_CA_CERTIFICATE,
            format!("no valid CA certificate to verify clients with: {why}"),
        ));
    } else {
        state.client_validation = Some(ir::ClientValidation {
            ca_certificates,
            // AllowInsecureFallback asks for a certificate and lets the client in
            // whatever it sends, as Envoy Gateway's `Request` mode.
            mode: if v.insecure_fallback {
                ir::ClientCertMode::Request
            } else {
                ir::ClientCertMode::RequireAndVerify
            },
            spki_hashes: Vec::new(),
            certificate_hashes: Vec::new(),
            subject_alt_names: Vec::new(),
            crl: None,
            allow_expired: false,
        });
    }
    if let Some(first) = problems.into_iter().next()
        && state.resolved_refs.is_none()
    {
        state.resolved_refs = Some(first);
    }
}

/// The PEM `ca.crt` of the ConfigMap (or Secret) `r`.
fn ca_certificate(r: &Ref<'_>, index: &Index<'_>) -> Result<String, Problem> {
    let (group, kind) = (r.group, r.kind);
    if !group.is_empty() || !(kind == "ConfigMap" || kind == "Secret") {
        return Err(Problem::new(
            reason::INVALID_CA_CERTIFICATE_KIND,
            format!(
                "{group}/{kind} is not supported; refer to a ConfigMap (or Secret) with ca.crt"
            ),
        ));
    }
    r.permitted(index)?;
    let label = r.label();
    let not_found = || {
        Problem::new(
            reason::INVALID_CA_CERTIFICATE_REF,
            format!("{label} not found"),
        )
    };
    let text = if kind == "Secret" {
        let secret = index.secret(r.namespace, r.name).ok_or_else(not_found)?;
        super::index::secret_value(secret, "ca.crt")
    } else {
        let config_map = index
            .config_map(r.namespace, r.name)
            .ok_or_else(not_found)?;
        config_map
            .data
            .as_ref()
            .and_then(|d| d.get("ca.crt"))
            .cloned()
    };
    match text {
        Some(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => Ok(pem),
        Some(_) => Err(Problem::new(
            reason::INVALID_CA_CERTIFICATE_REF,
            format!("{label}: ca.crt is not a PEM certificate"),
        )),
        None => Err(Problem::new(
            reason::INVALID_CA_CERTIFICATE_REF,
            format!("{label} has no ca.crt"),
        )),
    }
}

/// The Gateway conditions its `spec.tls` adds: `InsecureFrontendValidationMode`
/// while any frontend validation allows insecure fallback, and `ResolvedRefs`
/// about `backend.clientCertificateRef` when it is set.
pub fn gateway_conditions(
    gateway: &Gateway,
    index: &Index<'_>,
    generation: Option<i64>,
) -> Vec<Condition> {
    let mut out = Vec::new();
    let Some(tls) = gateway.spec.tls.as_ref() else {
        return out;
    };
    if let Some(frontend) = &tls.frontend {
        let default = frontend.default.validation.as_ref().is_some_and(|v| {
            v.mode == Some(GatewayTlsFrontendDefaultValidationMode::AllowInsecureFallback)
        });
        let per_port = frontend.per_port.iter().flatten().any(|p| {
            p.tls.validation.as_ref().is_some_and(|v| {
                v.mode == Some(GatewayTlsFrontendPerPortTlsValidationMode::AllowInsecureFallback)
            })
        });
        if default || per_port {
            out.push(Condition::new(
                condition_type::INSECURE_FRONTEND_VALIDATION_MODE,
                true,
                reason::CONFIGURATION_CHANGED,
                "spec.tls.frontend allows insecure fallback: clients without a valid certificate get in",
                generation,
            ));
        }
    }
    if let Some(r) = tls
        .backend
        .as_ref()
        .and_then(|b| b.client_certificate_ref.as_ref())
    {
        let from = gateway.metadata.namespace.as_deref().unwrap_or("default");
        let problem = backend_client_certificate(
            &Ref {
                group: r.group.as_deref().unwrap_or(""),
                kind: r.kind.as_deref().unwrap_or("Secret"),
                name: &r.name,
                namespace: r.namespace.as_deref().unwrap_or(from),
                from,
            },
            index,
        );
        out.push(Condition::failed(
            condition_type::RESOLVED_REFS,
            &problem,
            generation,
        ));
    }
    out
}

/// Why `spec.tls.backend.clientCertificateRef` is not in force: the spec's
/// reasons when it does not resolve, and otherwise `UnsupportedValue`: gantry
/// does not present the Gateway's certificate to TLS backends (it serves no
/// BackendTLSPolicy; a Backend's own `tls.clientCertificateRef` is presented).
fn backend_client_certificate(r: &Ref<'_>, index: &Index<'_>) -> Problem {
    const FIELD: &str = "spec.tls.backend.clientCertificateRef";
    let (group, kind) = (r.group, r.kind);
    if !group.is_empty() || kind != "Secret" {
        return Problem::new(
            reason::INVALID_CLIENT_CERTIFICATE_REF,
            format!("{FIELD}: {group}/{kind} is not supported; refer to a Secret"),
        );
    }
    if let Err(p) = r.permitted(index) {
        return Problem::new(p.reason, format!("{FIELD}: {}", p.message));
    }
    let label = r.label();
    let Some(secret) = index.secret(r.namespace, r.name) else {
        return Problem::new(
            reason::INVALID_CLIENT_CERTIFICATE_REF,
            format!("{FIELD}: {label} not found"),
        );
    };
    if let Err(why) = super::gateway::tls_key_pair(secret) {
        return Problem::new(
            reason::INVALID_CLIENT_CERTIFICATE_REF,
            format!("{FIELD}: {label}: {why}"),
        );
    }
    Problem::new(
        reason::UNSUPPORTED_VALUE,
        format!(
            "{FIELD}: gantry does not present the Gateway's client certificate to TLS \
             backends (BackendTLSPolicy is not served; a Backend's tls.clientCertificateRef \
             is presented)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use crate::ir::{ClientCertMode, GatewayIr};
    use crate::resources::{Resources, parse_file};

    /// The IR of Gateway default/eg, whose `spec.tls` is `tls` and listeners
    /// `listeners`, beside a ListenerSet `more` with `set_listeners` and the
    /// ConfigMap `ca` (the PEM of one certificate).
    fn resources(tls: &str, listeners: &str, set_listeners: &str) -> Resources {
        let yaml = format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: gantry}}
spec: {{controllerName: {controller}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: eg, namespace: default}}
spec:
  gatewayClassName: gantry
  allowedListeners: {{namespaces: {{from: Same}}}}
  tls:
{tls}  listeners:
{listeners}---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {{name: more, namespace: default}}
spec:
  parentRef: {{name: eg}}
  listeners:
{set_listeners}---
apiVersion: v1
kind: ConfigMap
metadata: {{name: ca, namespace: default}}
data: {{ca.crt: \"-----BEGIN CERTIFICATE-----\\nAA==\\n-----END CERTIFICATE-----\\n\"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: cert, namespace: default}}
type: kubernetes.io/tls
stringData: {{tls.crt: \"-----BEGIN CERTIFICATE-----\", tls.key: \"-----BEGIN PRIVATE KEY-----\"}}
",
            controller = crate::DEFAULT_CONTROLLER_NAME
        );
        let parsed = parse_file("in.yaml", &yaml).unwrap();
        Resources::from_files([("in.yaml", &parsed)])
    }

    fn gateway_ir(resources: &Resources) -> GatewayIr {
        let mut translated = super::super::translate(resources, &Default::default());
        translated.ir.gateways.remove("default/eg").unwrap()
    }

    fn listener(name: &str, protocol: &str, port: u16) -> String {
        format!(
            "    - {{name: {name}, protocol: {protocol}, port: {port}, tls: {{certificateRefs: [{{name: cert}}]}}}}\n"
        )
    }

    /// The client validation mode of each TLS-terminating filter chain, by name.
    fn modes(ir: &GatewayIr) -> Vec<(String, Option<ClientCertMode>)> {
        let chains = ir.listeners.iter().flat_map(|l| &l.filter_chains);
        chains
            .filter_map(|c| {
                let tls = c.tls.as_ref()?;
                Some((
                    c.name.clone(),
                    tls.client_validation.as_ref().map(|v| v.mode),
                ))
            })
            .collect()
    }

    #[test]
    fn per_port_entries_override_the_default_and_only_https_listeners_are_validated() {
        let tls = "    frontend:
      default:
        validation: {caCertificateRefs: [{group: \"\", kind: ConfigMap, name: ca}]}
      perPort:
        - {port: 8443, tls: {}}
        - port: 9443
          tls: {validation: {mode: AllowInsecureFallback, caCertificateRefs: [{group: \"\", kind: ConfigMap, name: ca}]}}
";
        let listeners = listener("a", "HTTPS", 7443)
            + &listener("b", "HTTPS", 8443)
            + &listener("c", "HTTPS", 9443)
            + &listener("d", "TLS", 6443);
        let resources = resources(tls, &listeners, &listener("s", "HTTPS", 5443));
        let index = super::super::index::Index::new(&resources);
        let own = super::super::gateway::listeners(&resources.gateways[0], &index, false);
        assert_eq!(own[3].name, "d");
        assert!(
            own[3].client_validation.is_none() && own[3].accepted.is_none(),
            "a TLS listener is not HTTPS: {:?}",
            own[3]
        );
        let ir = gateway_ir(&resources);
        assert_eq!(
            modes(&ir),
            vec![
                (
                    "https-5443/default/more/s".to_string(),
                    Some(ClientCertMode::RequireAndVerify)
                ),
                (
                    "https-7443/a".to_string(),
                    Some(ClientCertMode::RequireAndVerify)
                ),
                ("https-8443/b".to_string(), None),
                ("https-9443/c".to_string(), Some(ClientCertMode::Request)),
            ]
        );
    }

    #[test]
    fn one_valid_ca_of_several_keeps_the_listener() {
        let tls = "    frontend:
      default:
        validation:
          caCertificateRefs:
            - {group: \"\", kind: ConfigMap, name: missing}
            - {group: \"\", kind: ConfigMap, name: ca}
";
        let resources = resources(
            tls,
            &listener("a", "HTTPS", 7443),
            &listener("s", "HTTP", 5080),
        );
        let index = super::super::index::Index::new(&resources);
        let own = super::super::gateway::listeners(&resources.gateways[0], &index, false);
        let problem = own[0].resolved_refs.as_ref().expect("ResolvedRefs False");
        assert_eq!(problem.reason, "InvalidCACertificateRef");
        assert!(
            problem
                .message
                .starts_with("spec.tls.frontend.default.validation.caCertificateRefs[0]: "),
            "{problem:?}"
        );
        let ir = gateway_ir(&resources);
        assert_eq!(
            modes(&ir),
            vec![(
                "https-7443/a".to_string(),
                Some(ClientCertMode::RequireAndVerify)
            )]
        );
    }
}
