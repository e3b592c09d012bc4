//! Gateway API hostname matching and intersection.

/// Whether `pattern` ("*.example.com" or an exact name) matches `name` (possibly a wildcard).
/// A wildcard matches one or more labels in front of its suffix, never the bare suffix.
fn covers(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => {
            // `suffix` starts with '.'; a wildcard name is compared by its own suffix.
            let rest = name.strip_prefix('*').unwrap_or(name);
            rest.len() > suffix.len() && rest.ends_with(suffix)
        }
        None => pattern == name,
    }
}

/// The hostnames a route serves on a listener: the intersection of the listener's
/// hostname (None = any) and the route's hostnames (empty = any). The more specific
/// of each matching pair is kept. Empty result = the route does not attach.
pub fn intersect(listener: Option<&str>, route: &[String]) -> Vec<String> {
    let mut out: Vec<String> = match (listener, route.is_empty()) {
        (None, true) => vec!["*".to_string()],
        (Some(l), true) => vec![l.to_string()],
        (None, false) => route.to_vec(),
        (Some(l), false) => route
            .iter()
            .filter_map(|r| {
                if r == l || covers(l, r) {
                    Some(r.clone())
                } else if covers(r, l) {
                    Some(l.to_string())
                } else {
                    None
                }
            })
            .collect(),
    };
    out.sort();
    out.dedup();
    out
}

/// How specifically a route's own hostnames claim `served` (a name the route
/// serves on a listener, from [`intersect`]), by the spec's order between routes
/// sharing a host: more characters in a matching non-wildcard hostname, then more
/// characters in a matching hostname. A route without hostnames claims nothing
/// of its own and ranks last.
pub fn route_specificity(route: &[String], served: &str) -> (usize, usize) {
    route
        .iter()
        .filter(|r| *r == served || covers(r, served))
        .map(|r| (if r.starts_with('*') { 0 } else { r.len() }, r.len()))
        .max()
        .unwrap_or((0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn intersections_follow_the_spec_examples() {
        assert_eq!(intersect(None, &[]), v(&["*"]));
        assert_eq!(
            intersect(Some("test.example.com"), &[]),
            v(&["test.example.com"])
        );
        assert_eq!(
            intersect(Some("test.example.com"), &v(&["*.example.com"])),
            v(&["test.example.com"])
        );
        assert_eq!(
            intersect(
                Some("*.example.com"),
                &v(&[
                    "*.example.com",
                    "test.example.com",
                    "foo.test.example.com",
                    "example.com",
                    "test.example.net"
                ])
            ),
            v(&["*.example.com", "foo.test.example.com", "test.example.com"])
        );
        assert_eq!(
            intersect(Some("*.example.com"), &v(&["*.foo.example.com"])),
            v(&["*.foo.example.com"])
        );
        assert_eq!(
            intersect(Some("*.foo.example.com"), &v(&["*.example.com"])),
            v(&["*.foo.example.com"])
        );
        assert!(intersect(Some("a.example.com"), &v(&["b.example.com"])).is_empty());
        assert!(intersect(Some("*.example.com"), &v(&["example.com"])).is_empty());
    }

    #[test]
    fn an_exact_route_hostname_outranks_a_wildcard_and_a_longer_wildcard_a_shorter_one() {
        let exact = route_specificity(&v(&["abc.example.com"]), "abc.example.com");
        let wildcard = route_specificity(&v(&["*.example.com"]), "abc.example.com");
        assert!(exact > wildcard, "{exact:?} {wildcard:?}");
        let longer = route_specificity(&v(&["*.example.com"]), "*.example.com");
        let shorter = route_specificity(&v(&["*.com"]), "*.example.com");
        assert!(longer > shorter, "{longer:?} {shorter:?}");
        assert!(shorter > route_specificity(&[], "*.example.com"));
    }
}
