//! Providers produce `Resources`: from a directory of YAML files, or from the Kubernetes API.

pub mod file;
pub mod kubernetes;
pub mod merged;
pub mod references;

/// Whether a path names a file the providers read: *.yaml or *.yml, not hidden.
pub fn is_yaml(path: &std::path::Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    let yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml") | Some("yml")
    );
    yaml && !hidden && path.is_file()
}
