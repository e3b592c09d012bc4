//! Directory provider: loads every *.yaml / *.yml in one directory (not recursive),
//! keeps each file's last good objects, and watches the directory.
//!
//! - A file that fails to parse keeps its last good objects in force (a file that
//!   never parsed contributes nothing); the failure is an [`InputProblem`] in
//!   `Resources::problems` and a warning in the log.
//! - A deleted file's objects go away.
//! - Documents of kinds gantry does not handle are reported and skipped.
//!
//! Only the files named in a change notification are re-read; a file whose bytes
//! did not change is not parsed again, only the objects of files that parsed
//! differently are merged again (`provider::merged`), and a change that leaves
//! every file's bytes as they were sends nothing. Anything the watcher cannot attribute to one file
//! (a rescan request, a watcher error, a change to the directory itself or to a
//! `..data`-style symlinked subdirectory as Kubernetes ConfigMap volumes use) makes
//! the provider compare the whole directory against what it holds.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use anyhow::{Context, Result};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::provider::is_yaml;
use crate::provider::merged::MergedFiles;
use crate::resources::{InputProblem, ParsedFile, Resources, parallel_map, parse_file};

/// The files of one directory, each with its last good parse.
pub struct Directory {
    dir: PathBuf,
    abs_dir: PathBuf,
    files: BTreeMap<String, FileEntry>,
    /// Problems already logged, so that each is logged once when it appears.
    logged: BTreeSet<InputProblem>,
    /// Every file's last good objects merged, brought up to date file by file.
    merged: MergedFiles,
}

struct FileEntry {
    /// SHA-256 of the bytes last read; an unchanged file is not parsed again.
    digest: [u8; 32],
    /// The last version that parsed.
    good: Option<Arc<ParsedFile>>,
    /// Why the current bytes are not in force, if they are not.
    error: Option<InputProblem>,
}

impl Directory {
    /// Reads the whole directory. Fails only if the directory itself cannot be read.
    pub fn load(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir: PathBuf = dir.into();
        let mut directory = Directory {
            abs_dir: std::path::absolute(&dir).unwrap_or_else(|_| dir.clone()),
            dir,
            files: BTreeMap::new(),
            logged: BTreeSet::new(),
            merged: MergedFiles::default(),
        };
        directory.rescan()?;
        Ok(directory)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of YAML files currently known (parsed or not).
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Compares every file of the directory with what is held. Returns whether anything changed.
    pub fn rescan(&mut self) -> Result<bool> {
        let mut names: BTreeSet<String> = self.files.keys().cloned().collect();
        let entries = std::fs::read_dir(&self.dir)
            .with_context(|| format!("reading directory {}", self.dir.display()))?;
        for entry in entries {
            let entry =
                entry.with_context(|| format!("reading directory {}", self.dir.display()))?;
            if let Some(name) = entry.file_name().to_str() {
                names.insert(name.to_string());
            }
        }
        Ok(self.refresh_names(names))
    }

    /// Re-reads the files the paths name (paths outside the directory are ignored;
    /// a path naming something other than a plain file name in the directory makes
    /// it a full rescan). Returns whether anything changed.
    pub fn refresh(&mut self, paths: &[PathBuf]) -> Result<bool> {
        let mut names = BTreeSet::new();
        for path in paths {
            match self.name_in_dir(path) {
                Some(Some(name)) => {
                    names.insert(name);
                }
                Some(None) => return self.rescan(),
                None => {}
            }
        }
        Ok(self.refresh_names(names))
    }

    /// `None`: not about this directory. `Some(None)`: about the directory as a whole
    /// (itself, a subdirectory, a symlink swap). `Some(Some(name))`: one file.
    fn name_in_dir(&self, path: &Path) -> Option<Option<String>> {
        // The watcher reports absolute paths; the directory may have been given relative.
        let relative = path
            .strip_prefix(&self.dir)
            .or_else(|_| path.strip_prefix(&self.abs_dir))
            .ok()?;
        let mut components = relative.components();
        let first = components.next();
        match (first, components.next()) {
            (None, _) => Some(None),
            (Some(name), None) => {
                let name = name.as_os_str().to_str()?;
                if name.starts_with("..") || self.dir.join(name).is_dir() {
                    Some(None)
                } else if has_yaml_extension(name) || self.files.contains_key(name) {
                    Some(Some(name.to_string()))
                } else {
                    // Editor swap files, backups and other non-YAML files.
                    None
                }
            }
            // Inside a subdirectory: only a `..data`-style symlinked directory matters.
            (Some(name), Some(_)) => name
                .as_os_str()
                .to_str()
                .filter(|n| n.starts_with(".."))
                .map(|_| None),
        }
    }

    /// Brings the named files up to date with the disk: files whose bytes changed
    /// are parsed (in parallel when there are many). Returns whether anything changed.
    fn refresh_names(&mut self, names: impl IntoIterator<Item = String>) -> bool {
        let mut changed = false;
        let mut to_parse = Vec::new();
        for name in names {
            let path = self.dir.join(&name);
            if !is_yaml(&path) {
                changed |= self.files.remove(&name).is_some();
                continue;
            }
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let digest: [u8; 32] = Sha256::digest(&bytes).into();
                    if self.files.get(&name).is_none_or(|f| f.digest != digest) {
                        to_parse.push((name, digest, bytes));
                    }
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    changed |= self.files.remove(&name).is_some();
                }
                Err(e) => {
                    let problem = InputProblem {
                        file: name.clone(),
                        document: None,
                        message: format!("cannot read: {e}"),
                    };
                    changed |= self.set_error(&name, None, problem);
                }
            }
        }
        for (name, digest, parsed) in parse_all(to_parse) {
            changed |= match parsed {
                Ok(parsed) => {
                    if self.files.get(&name).is_some_and(|f| f.error.is_some()) {
                        tracing::info!(file = name, "file parses again");
                    }
                    self.files.insert(
                        name,
                        FileEntry {
                            digest,
                            good: Some(Arc::new(parsed)),
                            error: None,
                        },
                    );
                    true
                }
                Err(problem) => self.set_error(&name, Some(digest), problem),
            };
        }
        changed
    }

    fn set_error(&mut self, name: &str, digest: Option<[u8; 32]>, problem: InputProblem) -> bool {
        let entry = self
            .files
            .entry(name.to_string())
            .or_insert_with(|| FileEntry {
                digest: [0; 32],
                good: None,
                error: None,
            });
        if let Some(digest) = digest {
            entry.digest = digest;
        } else {
            // Unreadable: make sure the next successful read is parsed.
            entry.digest = [0; 32];
        }
        if entry.error.as_ref() == Some(&problem) {
            return false;
        }
        let kept = if entry.good.is_some() {
            "its last good version stays in force"
        } else {
            "it contributes nothing until it parses"
        };
        tracing::warn!(
            dir = %self.dir.display(),
            file = name,
            document = problem.document,
            "input rejected: {}; {kept}",
            problem.message
        );
        self.logged.insert(problem.clone());
        entry.error = Some(problem);
        true
    }

    /// The merged input: every file's last good objects, plus every problem.
    /// Problems not seen before are logged (parse failures already were).
    pub fn resources(&mut self) -> Resources {
        let mut resources = (self.merged)
            .update((self.files.iter()).filter_map(|(name, f)| Some((name, f.good.as_ref()?))));
        resources
            .problems
            .extend(self.files.values().filter_map(|f| f.error.clone()));
        resources.problems.sort();
        resources.problems.dedup();
        for problem in &resources.problems {
            if !self.logged.contains(problem) {
                tracing::warn!(dir = %self.dir.display(), "input: {problem}");
            }
        }
        self.logged = resources.problems.iter().cloned().collect();
        resources
    }
}

type ParseResult = Result<ParsedFile, InputProblem>;

fn parse_one(
    (name, digest, bytes): (String, [u8; 32], Vec<u8>),
) -> (String, [u8; 32], ParseResult) {
    let parsed = match String::from_utf8(bytes) {
        Ok(text) => parse_file(&name, &text),
        Err(_) => Err(InputProblem {
            file: name.clone(),
            document: None,
            message: "not valid UTF-8".to_string(),
        }),
    };
    (name, digest, parsed)
}

/// Parses files on every core when there are enough of them to be worth it
/// (a first load of thousands of files).
fn parse_all(items: Vec<(String, [u8; 32], Vec<u8>)>) -> Vec<(String, [u8; 32], ParseResult)> {
    parallel_map(items, parse_one)
}

fn has_yaml_extension(name: &str) -> bool {
    matches!(
        Path::new(name).extension().and_then(|e| e.to_str()),
        Some("yaml") | Some("yml")
    )
}

/// Keeps the directory watched while alive. Dropping it drops the watcher and its
/// event handler, the sending end of the reload thread's channel, which ends that
/// thread; the thread is not joined, so that dropping never blocks an async runtime.
pub struct FileWatch {
    _watcher: RecommendedWatcher,
    _thread: std::thread::JoinHandle<()>,
}

/// A watcher of `dir` (not its subdirectories) that sends each event to `events`.
fn watcher(dir: &Path, events: mpsc::Sender<notify::Result<Event>>) -> Result<RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event| {
        // The receiver is gone only when the provider is.
        let _ = events.send(event);
    })
    .with_context(|| format!("watching {}", dir.display()))?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", dir.display()))?;
    Ok(watcher)
}

/// Loads `dir` and watches it. The receiver holds the current merged input and
/// sees a new value whenever a file change alters it: as soon as the change is
/// complete (a file closed after writing, renamed into place or removed), with
/// no waiting period; events that arrive while a reload runs join the next one.
/// Fails if the directory cannot be read or watched.
pub fn watch(dir: impl Into<PathBuf>) -> Result<(FileWatch, watch::Receiver<Arc<Resources>>)> {
    let dir: PathBuf = dir.into();
    if !dir.is_dir() {
        anyhow::bail!("config dir {} is not a directory", dir.display());
    }
    let (events_tx, events_rx) = mpsc::channel();
    // Watch before the first read so that no change made during it is missed.
    let watcher = watcher(&dir, events_tx)?;
    let mut directory = Directory::load(&dir)?;
    let initial = directory.resources();
    tracing::info!(
        dir = %dir.display(),
        files = directory.len(),
        problems = initial.problems.len(),
        "loaded config dir"
    );
    let (tx, rx) = watch::channel(Arc::new(initial));
    let thread = std::thread::Builder::new()
        .name("gantry-file-provider".into())
        .spawn(move || reload_loop(directory, events_rx, tx))
        .context("starting the file provider thread")?;
    Ok((
        FileWatch {
            _watcher: watcher,
            _thread: thread,
        },
        rx,
    ))
}

/// Whether an event says a change to a file's bytes (or to the set of files) is
/// complete, so that reading now sees the new content.
///
/// The inotify watcher also reports every open of a file or of the directory
/// (`Access(Open)`), including the provider's own reads: treating those as changes
/// made each reload read every file again, which reported opens again, for ever.
/// Only a close after writing (`Access(Close(Write))`) says a write is done. On
/// Linux the writes before it (`Modify(Data)`) are not: a reload then could read
/// half a file; other platforms report no close, so their writes count.
///
/// A rename on Linux comes as three events: `From`, `To` and then `Both` naming
/// the two paths again. `Both` can reach the reload thread after `To` was read and
/// after the next writer of the file has begun, before that writer's own events:
/// reading then took a truncated file as its last good version. `From` and `To`
/// say all there is, so `Both` is not read there.
fn may_change_content(kind: &EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(
            ModifyKind::Data(_) | ModifyKind::Metadata(_) | ModifyKind::Name(RenameMode::Both),
        ) => !cfg!(target_os = "linux"),
        _ => true,
    }
}

/// A write to a file's data has begun (Linux: a close after writing follows).
fn is_write_begun(kind: &EventKind) -> bool {
    use notify::event::ModifyKind;
    cfg!(target_os = "linux") && matches!(kind, EventKind::Modify(ModifyKind::Data(_)))
}

/// A writer closed the file, or it was removed or renamed: no write is in flight.
fn is_write_done(kind: &EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    matches!(
        kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Remove(_)
            | EventKind::Modify(notify::event::ModifyKind::Name(_))
    )
}

fn reload_loop(
    mut directory: Directory,
    events: mpsc::Receiver<notify::Result<Event>>,
    tx: watch::Sender<Arc<Resources>>,
) {
    // Files a writer has begun and not yet closed (Linux reports both): a late
    // event about such a file (the third event of a rename, say) must not read it
    // half written and take that as its new content; its close reads it.
    let mut being_written: BTreeSet<PathBuf> = BTreeSet::new();
    while let Ok(first) = events.recv() {
        // Coalesce whatever else is already queued: the events of one burst, and
        // those that came during the last reload.
        let mut paths = Vec::new();
        let mut rescan = false;
        for result in std::iter::once(first).chain(events.try_iter()) {
            match result {
                Ok(event) => {
                    if is_write_begun(&event.kind) {
                        being_written.extend(event.paths.iter().cloned());
                    } else if is_write_done(&event.kind) {
                        event.paths.iter().for_each(|p| {
                            being_written.remove(p);
                        });
                    }
                    if !event.need_rescan() && !may_change_content(&event.kind) {
                        continue;
                    }
                    rescan |= event.need_rescan();
                    paths.extend(event.paths);
                }
                Err(error) => {
                    tracing::warn!(dir = %directory.dir().display(), "watch error: {error}");
                    rescan = true;
                }
            }
        }
        paths.retain(|p| !being_written.contains(p));
        if paths.is_empty() && !rescan {
            if tx.is_closed() {
                return;
            }
            continue;
        }
        tracing::debug!(?paths, rescan, "file events");
        let changed = if rescan {
            directory.rescan()
        } else {
            directory.refresh(&paths)
        };
        match changed {
            Ok(false) => {}
            Ok(true) => {
                let resources = directory.resources();
                if tx.send(Arc::new(resources)).is_err() {
                    return;
                }
            }
            Err(e) => tracing::warn!("config dir: {e:#}; keeping the current input"),
        }
        if tx.is_closed() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const GATEWAY: &str = "\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: eg
  namespace: default
spec:
  gatewayClassName: gantry
  listeners:
    - name: http
      protocol: HTTP
      port: 8080
";

    const SERVICE: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: backend
spec:
  ports:
    - port: 3000
";

    fn names(resources: &Resources) -> Vec<String> {
        let mut names: Vec<String> = resources
            .gateways
            .iter()
            .map(|g| format!("Gateway/{}", g.metadata.name.clone().unwrap_or_default()))
            .chain(
                resources
                    .services
                    .iter()
                    .map(|s| format!("Service/{}", s.metadata.name.clone().unwrap_or_default())),
            )
            .collect();
        names.sort();
        names
    }

    #[test]
    fn initial_load_reads_yaml_files_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gw.yaml"), GATEWAY).unwrap();
        std::fs::write(dir.path().join("svc.yml"), SERVICE).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not yaml").unwrap();
        std::fs::write(dir.path().join(".hidden.yaml"), "{{{").unwrap();
        std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
        std::fs::write(
            dir.path().join("sub.yaml/nested.yaml"),
            GATEWAY.replace("eg", "nested"),
        )
        .unwrap();
        let mut directory = Directory::load(dir.path()).unwrap();
        let resources = directory.resources();
        assert_eq!(names(&resources), ["Gateway/eg", "Service/backend"]);
        assert!(resources.problems.is_empty(), "{:?}", resources.problems);
        assert_eq!(directory.len(), 2);
    }

    #[test]
    fn unknown_kinds_are_reported_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{GATEWAY}---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"
        );
        std::fs::write(dir.path().join("mixed.yaml"), text).unwrap();
        let resources = Directory::load(dir.path()).unwrap().resources();
        assert_eq!(names(&resources), ["Gateway/eg"]);
        assert_eq!(resources.problems.len(), 1);
        assert_eq!(resources.problems[0].file, "mixed.yaml");
        assert_eq!(resources.problems[0].document, Some(1));
        assert!(resources.problems[0].message.contains("Widget"));
    }

    #[test]
    fn broken_file_keeps_last_good_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let gw = dir.path().join("gw.yaml");
        std::fs::write(&gw, GATEWAY).unwrap();
        std::fs::write(dir.path().join("never.yaml"), "kind: [unclosed").unwrap();
        let mut directory = Directory::load(dir.path()).unwrap();
        let resources = directory.resources();
        assert_eq!(names(&resources), ["Gateway/eg"]);
        assert_eq!(resources.problems.len(), 1);
        assert_eq!(resources.problems[0].file, "never.yaml");

        // Break the good file: its last good Gateway stays, the failure is reported.
        std::fs::write(&gw, GATEWAY.replace("port: 8080", "port: eighty")).unwrap();
        assert!(directory.refresh(std::slice::from_ref(&gw)).unwrap());
        let resources = directory.resources();
        assert_eq!(names(&resources), ["Gateway/eg"]);
        let problem = resources
            .problems
            .iter()
            .find(|p| p.file == "gw.yaml")
            .expect("gw.yaml problem");
        assert_eq!(problem.document, Some(0));
        assert!(problem.message.contains("port"), "{}", problem.message);
        let port = resources.gateways[0].spec.listeners[0].port;
        assert_eq!(port, 8080);

        // Same broken bytes again: nothing changed.
        assert!(!directory.refresh(std::slice::from_ref(&gw)).unwrap());

        // Fixed with a new port: the new version is in force and the problem is gone.
        std::fs::write(&gw, GATEWAY.replace("8080", "9090")).unwrap();
        assert!(directory.refresh(std::slice::from_ref(&gw)).unwrap());
        let resources = directory.resources();
        assert_eq!(resources.gateways[0].spec.listeners[0].port, 9090);
        assert!(resources.problems.iter().all(|p| p.file != "gw.yaml"));
    }

    #[test]
    fn deleted_file_removes_its_objects() {
        let dir = tempfile::tempdir().unwrap();
        let svc = dir.path().join("svc.yaml");
        std::fs::write(dir.path().join("gw.yaml"), GATEWAY).unwrap();
        std::fs::write(&svc, SERVICE).unwrap();
        let mut directory = Directory::load(dir.path()).unwrap();
        assert_eq!(names(&directory.resources()).len(), 2);
        std::fs::remove_file(&svc).unwrap();
        assert!(directory.refresh(std::slice::from_ref(&svc)).unwrap());
        assert_eq!(names(&directory.resources()), ["Gateway/eg"]);
        // A broken file that is deleted takes its problem with it.
        let broken = dir.path().join("broken.yaml");
        std::fs::write(&broken, "{").unwrap();
        assert!(directory.rescan().unwrap());
        assert_eq!(directory.resources().problems.len(), 1);
        std::fs::remove_file(&broken).unwrap();
        assert!(directory.rescan().unwrap());
        assert!(directory.resources().problems.is_empty());
        assert!(!directory.rescan().unwrap());
    }

    #[test]
    fn many_files_load_in_parallel() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..300 {
            std::fs::write(
                dir.path().join(format!("svc-{i:03}.yaml")),
                SERVICE.replace("backend", &format!("backend-{i:03}")),
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("svc-150.yaml"), "{").unwrap();
        let resources = Directory::load(dir.path()).unwrap().resources();
        assert_eq!(resources.services.len(), 299);
        assert_eq!(resources.problems.len(), 1);
        assert_eq!(resources.problems[0].file, "svc-150.yaml");
        assert_eq!(
            resources.services[0].metadata.name.as_deref(),
            Some("backend-000")
        );
    }

    #[test]
    fn paths_outside_or_not_yaml_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gw.yaml"), GATEWAY).unwrap();
        let mut directory = Directory::load(dir.path()).unwrap();
        std::fs::write(dir.path().join("gw.yaml.swp"), "x").unwrap();
        let other = tempfile::tempdir().unwrap();
        let changed = directory
            .refresh(&[dir.path().join("gw.yaml.swp"), other.path().join("gw.yaml")])
            .unwrap();
        assert!(!changed);
    }

    async fn wait_for(
        rx: &mut watch::Receiver<Arc<Resources>>,
        what: &str,
        pred: impl Fn(&Resources) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if pred(&rx.borrow_and_update()) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting for {what}");
            let _ = tokio::time::timeout(left, rx.changed()).await;
        }
    }

    #[tokio::test]
    async fn watcher_picks_up_create_rename_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gw.yaml"), GATEWAY).unwrap();
        let (_watch, mut rx) = watch(dir.path()).unwrap();
        assert_eq!(names(&rx.borrow_and_update()), ["Gateway/eg"]);

        // Create.
        std::fs::write(dir.path().join("svc.yaml"), SERVICE).unwrap();
        wait_for(&mut rx, "new service", |r| r.services.len() == 1).await;

        // Editor-style replace: write a temp file, rename it over the original.
        let tmp = dir.path().join(".gw.yaml.tmp");
        std::fs::write(&tmp, GATEWAY.replace("8080", "9090")).unwrap();
        std::fs::rename(&tmp, dir.path().join("gw.yaml")).unwrap();
        wait_for(&mut rx, "renamed-over gateway", |r| {
            r.gateways
                .first()
                .is_some_and(|g| g.spec.listeners[0].port == 9090)
        })
        .await;

        // Broken edit: the last good version stays and the problem shows.
        std::fs::write(dir.path().join("gw.yaml"), "kind: [").unwrap();
        wait_for(&mut rx, "problem", |r| {
            r.problems.iter().any(|p| p.file == "gw.yaml") && r.gateways.len() == 1
        })
        .await;

        // Remove.
        std::fs::remove_file(dir.path().join("svc.yaml")).unwrap();
        wait_for(&mut rx, "service removal", |r| r.services.is_empty()).await;

        // Rename away to a non-YAML name: its objects go away.
        std::fs::write(dir.path().join("gw.yaml"), GATEWAY).unwrap();
        wait_for(&mut rx, "fixed gateway", |r| r.problems.is_empty()).await;
        std::fs::rename(dir.path().join("gw.yaml"), dir.path().join("gw.yaml.off")).unwrap();
        wait_for(&mut rx, "gateway removal", |r| r.gateways.is_empty()).await;
    }

    /// Kubernetes ConfigMap volumes: files are symlinks through `..data`, which is
    /// swapped atomically to a new timestamped directory on update.
    #[tokio::test]
    async fn configmap_style_symlink_swap_is_picked_up() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("..v1")).unwrap();
        std::fs::write(root.join("..v1/gw.yaml"), GATEWAY).unwrap();
        symlink("..v1", root.join("..data")).unwrap();
        symlink("..data/gw.yaml", root.join("gw.yaml")).unwrap();
        let (_watch, mut rx) = watch(root).unwrap();
        assert_eq!(names(&rx.borrow_and_update()), ["Gateway/eg"]);

        std::fs::create_dir(root.join("..v2")).unwrap();
        std::fs::write(root.join("..v2/gw.yaml"), GATEWAY.replace("8080", "9090")).unwrap();
        symlink("..v2", root.join("..data_tmp")).unwrap();
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        std::fs::remove_dir_all(root.join("..v1")).unwrap();
        wait_for(&mut rx, "swapped config", |r| {
            r.gateways
                .first()
                .is_some_and(|g| g.spec.listeners[0].port == 9090)
        })
        .await;
    }

    /// How long the tests watch for an event that must not come.
    const NOTHING_FOR: Duration = Duration::from_millis(500);

    #[test]
    fn opening_or_reading_is_not_a_change() {
        use notify::event::{
            AccessKind, AccessMode, CreateKind, DataChange, ModifyKind, RenameMode,
        };
        assert!(!may_change_content(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!may_change_content(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(may_change_content(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(may_change_content(&EventKind::Create(CreateKind::File)));
        assert!(may_change_content(&EventKind::Modify(ModifyKind::Name(
            RenameMode::To
        ))));
        // A write is complete at its close, which Linux reports.
        assert_eq!(
            may_change_content(&EventKind::Modify(ModifyKind::Data(DataChange::Any))),
            !cfg!(target_os = "linux")
        );
        // Linux reports `From` and `To` for every rename.
        assert_eq!(
            may_change_content(&EventKind::Modify(ModifyKind::Name(RenameMode::Both))),
            !cfg!(target_os = "linux")
        );
    }

    /// The race CI found: the `Both` event of a rename arrives after the next writer
    /// has truncated the file. Reading then made the empty file the last good version.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_late_rename_event_does_not_read_a_file_being_rewritten() {
        use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
        let dir = tempfile::tempdir().unwrap();
        let gw = dir.path().join("gw.yaml");
        std::fs::write(&gw, GATEWAY).unwrap();
        let directory = Directory::load(dir.path()).unwrap();
        let (events, events_rx) = mpsc::channel();
        let (tx, mut rx) = watch::channel(Arc::new(Resources::default()));
        let thread = std::thread::spawn(move || reload_loop(directory, events_rx, tx));
        let event = |kind, paths: &[&Path]| {
            let event = paths
                .iter()
                .fold(Event::new(kind), |e, p| e.add_path(p.to_path_buf()));
            events.send(Ok(event)).unwrap();
        };

        let tmp = dir.path().join(".gw.yaml.tmp");
        std::fs::write(&gw, GATEWAY.replace("8080", "9090")).unwrap();
        event(EventKind::Modify(ModifyKind::Name(RenameMode::To)), &[&gw]);
        wait_for(&mut rx, "renamed-over gateway", |r| {
            r.gateways
                .first()
                .is_some_and(|g| g.spec.listeners[0].port == 9090)
        })
        .await;
        // The next writer has truncated the file; its own events are not in yet.
        std::fs::write(&gw, "").unwrap();
        event(
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            &[&tmp, &gw],
        );
        let svc = dir.path().join("svc.yaml");
        std::fs::write(&svc, SERVICE).unwrap();
        event(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            &[&svc],
        );
        wait_for(&mut rx, "service", |r| r.services.len() == 1).await;
        assert_eq!(rx.borrow().gateways.len(), 1, "the truncated file was read");
        // Closing the channel ends the reload thread.
        drop(events);
        thread.join().unwrap();
    }

    /// The provider's own reads (and anyone else's) must not make it reload: a reload
    /// that reads every file must not trigger the next one.
    #[test]
    fn reads_do_not_reload() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gw.yaml"), GATEWAY).unwrap();
        let (events_tx, events_rx) = mpsc::channel();
        let _watcher = watcher(dir.path(), events_tx).unwrap();
        // What a reload does: list the directory and read every file.
        Directory::load(dir.path()).unwrap();
        std::fs::read(dir.path().join("gw.yaml")).unwrap();
        let deadline = Instant::now() + NOTHING_FOR;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(result) = events_rx.recv_timeout(left) else {
                break;
            };
            let event = result.unwrap();
            assert!(
                !may_change_content(&event.kind),
                "a read was taken for a change: {event:?}"
            );
        }
    }

    #[tokio::test]
    async fn unchanged_content_sends_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gw.yaml"), GATEWAY).unwrap();
        let (_watch, mut rx) = watch(dir.path()).unwrap();
        rx.borrow_and_update();
        // Rewrite identical bytes and touch an unrelated file.
        std::fs::write(dir.path().join("gw.yaml"), GATEWAY).unwrap();
        std::fs::write(dir.path().join("README.txt"), "hello").unwrap();
        // Nothing is sent (the rewrite's close is seen at once).
        tokio::time::sleep(NOTHING_FOR).await;
        assert!(!rx.has_changed().unwrap());
        // A real change still is.
        std::fs::write(dir.path().join("svc.yaml"), SERVICE).unwrap();
        wait_for(&mut rx, "service", |r| r.services.len() == 1).await;
    }
}
