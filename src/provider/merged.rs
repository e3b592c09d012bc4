//! The merged input of a directory's files, kept up to date file by file.
//!
//! [`Resources::from_files`] merges every file at once: at 10,000 files, tens of
//! milliseconds on every change. [`MergedFiles`] keeps the merge and moves only
//! the objects of files whose parse changed; the result is the one `from_files`
//! gives for the same files (the tests below hold it to that).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use foldhash::HashMap;

use crate::resources::{InputProblem, ParsedFile, Resources};

/// (kind, namespace, name), as [`crate::resources::Object::key`] gives it.
type ObjectKey = (&'static str, String, String);

#[derive(Default)]
pub struct MergedFiles {
    /// The objects in force, without problems.
    resources: Resources,
    /// The parse of each file the merge holds.
    files: BTreeMap<String, Arc<ParsedFile>>,
    /// The files that define each object, in name order, with how many times
    /// each: almost always one file, so a short list rather than a map (whose
    /// smallest node weighs hundreds of bytes, for each of 30,000 objects).
    owners: HashMap<ObjectKey, Vec<(Arc<str>, usize)>>,
    /// Objects defined more than once.
    duplicated: BTreeSet<ObjectKey>,
}

impl MergedFiles {
    /// The merge of `files` (name -> parse, in name order), with the problems
    /// `from_files` reports (skipped documents, objects defined twice). A file
    /// whose parse is the one held (the same `Arc`) costs a comparison.
    pub fn update<'a>(
        &mut self,
        files: impl IntoIterator<Item = (&'a String, &'a Arc<ParsedFile>)>,
    ) -> Resources {
        let mut touched = BTreeSet::new();
        for (name, old, new) in self.changed_files(files) {
            if let Some(old) = &old {
                self.forget(&name, old, &mut touched);
            }
            match new {
                Some(new) => {
                    self.learn(&name, &new, &mut touched);
                    self.files.insert(name, new);
                }
                None => drop(self.files.remove(&name)),
            }
        }
        for key in touched {
            self.place(key);
        }
        let mut resources = self.resources.clone();
        resources.problems = self.problems();
        resources
    }

    /// (name, held parse, new parse) of each file whose parse is not the held one.
    #[allow(clippy::type_complexity)]
    fn changed_files<'a>(
        &self,
        files: impl IntoIterator<Item = (&'a String, &'a Arc<ParsedFile>)>,
    ) -> Vec<(String, Option<Arc<ParsedFile>>, Option<Arc<ParsedFile>>)> {
        let mut changed = Vec::new();
        let mut held = self.files.iter().peekable();
        for (name, parse) in files {
            while let Some((gone, old)) = held.next_if(|(held, _)| *held < name) {
                changed.push((gone.clone(), Some(old.clone()), None));
            }
            match held.next_if(|(held, _)| *held == name) {
                Some((_, old)) if Arc::ptr_eq(old, parse) => {}
                old => changed.push((name.clone(), old.map(|o| o.1.clone()), Some(parse.clone()))),
            }
        }
        changed.extend(held.map(|(gone, old)| (gone.clone(), Some(old.clone()), None)));
        changed
    }

    fn forget(&mut self, file: &str, parse: &ParsedFile, touched: &mut BTreeSet<ObjectKey>) {
        for object in &parse.objects {
            let key = object.key();
            if let Some(owners) = self.owners.get_mut(&key) {
                if let Ok(i) = owners.binary_search_by(|(f, _)| (**f).cmp(file)) {
                    owners[i].1 -= 1;
                    if owners[i].1 == 0 {
                        owners.remove(i);
                    }
                }
                if owners.is_empty() {
                    self.owners.remove(&key);
                }
            }
            touched.insert(key);
        }
    }

    fn learn(&mut self, file: &str, parse: &ParsedFile, touched: &mut BTreeSet<ObjectKey>) {
        let name: Arc<str> = file.into();
        for object in &parse.objects {
            let key = object.key();
            let owners = self.owners.entry(key.clone()).or_default();
            match owners.binary_search_by(|(f, _)| (**f).cmp(file)) {
                Ok(i) => owners[i].1 += 1,
                Err(i) => owners.insert(i, (name.clone(), 1)),
            }
            touched.insert(key);
        }
    }

    /// Puts in force the object of `key` from the first file (by name) that
    /// defines it, its first definition there; or none if no file does.
    fn place(&mut self, key: ObjectKey) {
        let owners = self.owners.get(&key);
        let object = owners
            .and_then(|owners| owners.first())
            .and_then(|(first, _)| self.files.get(&**first))
            .and_then(|parse| {
                let wanted = (key.0, key.1.as_str(), key.2.as_str());
                parse.objects.iter().find(|o| o.key_ref() == wanted)
            });
        self.resources.set((key.0, &key.1, &key.2), object);
        if owners.is_some_and(|owners| owners.iter().map(|(_, n)| n).sum::<usize>() > 1) {
            self.duplicated.insert(key);
        } else {
            self.duplicated.remove(&key);
        }
    }

    fn problems(&self) -> Vec<InputProblem> {
        let mut problems: Vec<InputProblem> = (self.files.values())
            .flat_map(|parse| parse.skipped.iter().cloned())
            .collect();
        for key in &self.duplicated {
            let Some(owners) = self.owners.get(key) else {
                continue;
            };
            let Some((first, _)) = owners.first() else {
                continue;
            };
            let (kind, namespace, name) = key;
            // Every definition after the first is reported in its file.
            for (file, count) in owners {
                if file != first || *count > 1 {
                    problems.push(InputProblem {
                        file: file.to_string(),
                        document: None,
                        message: format!(
                            "{kind} {namespace}/{name} is also defined in {first}; that one is used"
                        ),
                    });
                }
            }
        }
        problems.sort();
        problems.dedup();
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::parse_file;

    fn route(name: &str, namespace: Option<&str>, path: &str, retry: bool) -> String {
        let namespace = namespace.map_or(String::new(), |ns| format!("  namespace: {ns}\n"));
        let retry = if retry {
            "      retry: {attempts: 2}\n"
        } else {
            ""
        };
        format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: {name}\n{namespace}spec:\n  rules:\n    - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]\n{retry}"
        )
    }

    fn service(name: &str, port: u16) -> String {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  ports: [{{port: {port}}}]\n"
        )
    }

    const UNKNOWN: &str = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n";

    /// The versions a file takes in the steps below: duplicates across and within
    /// files, objects without a namespace, rule extras, skipped documents.
    fn contents() -> Vec<String> {
        vec![
            route("a", None, "/", false),
            route("a", Some("default"), "/x", true),
            format!(
                "{}---\n{}",
                route("b", Some("other"), "/", false),
                service("s", 80)
            ),
            format!("{}---\n{}", service("s", 81), service("s", 82)),
            format!("{}---\n{}", route("a", None, "/y", false), UNKNOWN),
            service("t", 90),
            String::new(),
        ]
    }

    /// `from_files`, with its problems deduplicated as the directory provider does.
    fn full(files: &BTreeMap<String, Arc<ParsedFile>>) -> String {
        let mut resources =
            Resources::from_files(files.iter().map(|(n, p)| (n.as_str(), p.as_ref())));
        resources.problems.dedup();
        format!("{resources:?}")
    }

    #[test]
    fn equals_a_full_merge_after_every_change() {
        let contents = contents();
        let parse = |name: &str, version: usize| {
            Arc::new(parse_file(name, &contents[version]).expect("test input parses"))
        };
        let mut merged = MergedFiles::default();
        let mut files: BTreeMap<String, Arc<ParsedFile>> = BTreeMap::new();
        // A fixed pseudo-random walk over four files and every version, removal included.
        let mut state = 7u64;
        for step in 0..400 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let file = format!("f{}.yaml", (state >> 33) % 4);
            let version = ((state >> 40) % (contents.len() as u64 + 1)) as usize;
            if version == contents.len() {
                files.remove(&file);
            } else {
                files.insert(file.clone(), parse(&file, version));
            }
            let incremental = format!("{:?}", merged.update(&files));
            assert_eq!(
                incremental,
                full(&files),
                "step {step}: {file} -> version {version}"
            );
        }
    }
}
