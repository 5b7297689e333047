//! Noticing config changes and keeping the last good version of whatever broke.
//!
//! Files are polled (path, mtime, length) rather than watched through inotify: polling
//! sees files replaced by rename, rewritten in place, added to or removed from a folder,
//! on every filesystem, and costs a few stat calls a second.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::load::{expand_paths, Loaded};
use super::{ConfigSet, Diagnostic, Res, Severity};

/// What the config files look like right now; unequal fingerprints mean "reload".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint(Vec<(PathBuf, Option<SystemTime>, u64)>);

pub fn fingerprint(paths: &[PathBuf]) -> Fingerprint {
    let mut ignored = Vec::new();
    let mut files = expand_paths(paths, &mut ignored);
    files.sort();
    Fingerprint(
        files
            .into_iter()
            .map(|f| {
                let meta = std::fs::metadata(&f).ok();
                let mtime = meta.as_ref().and_then(|m| m.modified().ok());
                let len = meta.map(|m| m.len()).unwrap_or(0);
                (f, mtime, len)
            })
            .collect(),
    )
}

/// Replaces the resources of every file that failed to load cleanly with that file's
/// resources from `last_good`, so a broken edit never drops routes. Returns the merged
/// set and one note per file kept at its last good version.
pub fn keep_last_good_files(
    mut new: Loaded,
    last_good: &ConfigSet,
    requested: &[PathBuf],
) -> (ConfigSet, Vec<Diagnostic>) {
    let mut broken: HashSet<PathBuf> = HashSet::new();
    for d in new.errors() {
        match &d.origin {
            Some(o) => {
                broken.insert(o.file.as_ref().clone());
            }
            // An explicitly named file that vanished or cannot be read.
            None => {
                for p in requested {
                    if d.message.contains(&p.display().to_string()) {
                        broken.insert(p.clone());
                    }
                }
            }
        }
    }
    let mut notes = Vec::new();
    if broken.is_empty() {
        return (new.config, notes);
    }
    let c = &mut new.config;
    let last = last_good;
    swap_file_resources(&mut c.gateways, &last.gateways, &broken);
    swap_file_resources(&mut c.virtual_services, &last.virtual_services, &broken);
    swap_file_resources(&mut c.destination_rules, &last.destination_rules, &broken);
    swap_file_resources(&mut c.service_entries, &last.service_entries, &broken);
    swap_file_resources(&mut c.wasm_plugins, &last.wasm_plugins, &broken);
    swap_file_resources(
        &mut c.peer_authentications,
        &last.peer_authentications,
        &broken,
    );
    swap_file_resources(&mut c.services, &last.services, &broken);
    swap_file_resources(&mut c.endpoints, &last.endpoints, &broken);
    let mut files: Vec<_> = broken.into_iter().collect();
    files.sort();
    for f in files {
        notes.push(Diagnostic::new(
            "MG0007",
            Severity::Warning,
            format!(
                "{}: invalid change ignored; its last good resources stay in effect",
                f.display()
            ),
        ));
    }
    (new.config, notes)
}

fn swap_file_resources<T: Clone>(
    new: &mut Vec<Res<T>>,
    last: &[Res<T>],
    broken: &HashSet<PathBuf>,
) {
    let in_broken = |r: &Res<T>| broken.contains(r.meta.origin.file.as_ref());
    new.retain(|r| !in_broken(r));
    new.extend(last.iter().filter(|r| in_broken(r)).cloned());
}

/// Replaces one resource (by kind/namespace/name) with its last good version, or
/// drops it when it never had one. Used when compile rejects a resource on reload.
pub fn restore_resource(
    set: &mut ConfigSet,
    last: &ConfigSet,
    kind: &str,
    namespace: &str,
    name: &str,
) -> bool {
    fn one<T: Clone>(new: &mut Vec<Res<T>>, last: &[Res<T>], ns: &str, name: &str) -> bool {
        let is = |r: &Res<T>| r.meta.namespace == ns && r.meta.name == name;
        let had = new.iter().any(is);
        new.retain(|r| !is(r));
        let prev: Vec<_> = last.iter().filter(|r| is(r)).cloned().collect();
        let restored = !prev.is_empty();
        new.extend(prev);
        had && restored
    }
    match kind {
        "Gateway" => one(&mut set.gateways, &last.gateways, namespace, name),
        "VirtualService" => one(
            &mut set.virtual_services,
            &last.virtual_services,
            namespace,
            name,
        ),
        "DestinationRule" => one(
            &mut set.destination_rules,
            &last.destination_rules,
            namespace,
            name,
        ),
        "ServiceEntry" => one(
            &mut set.service_entries,
            &last.service_entries,
            namespace,
            name,
        ),
        "WasmPlugin" => one(&mut set.wasm_plugins, &last.wasm_plugins, namespace, name),
        "PeerAuthentication" => one(
            &mut set.peer_authentications,
            &last.peer_authentications,
            namespace,
            name,
        ),
        "Service" => one(&mut set.services, &last.services, namespace, name),
        "Endpoints" => one(&mut set.endpoints, &last.endpoints, namespace, name),
        _ => false,
    }
}

/// True when `p` is one of the files `fp` lists.
pub fn contains(fp: &Fingerprint, p: &Path) -> bool {
    fp.0.iter().any(|(f, _, _)| f == p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::load_paths;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn a_broken_file_keeps_its_last_good_resources() {
        let dir = std::env::temp_dir().join(format!("mg-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let vs = |name: &str, host: &str| {
            format!("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}}}\nspec: {{hosts: [{host}]}}\n")
        };
        write(&dir, "a.yaml", &vs("a", "a.example"));
        write(&dir, "b.yaml", &vs("b", "b.example"));
        let paths = vec![dir.clone()];
        let first = load_paths(&paths);
        let fp1 = fingerprint(&paths);
        assert_eq!(first.config.virtual_services.len(), 2);

        write(&dir, "a.yaml", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\nspec: {hosts: [a.example\n");
        write(&dir, "b.yaml", &vs("b", "b2.example"));
        assert_ne!(fingerprint(&paths), fp1);
        let (merged, notes) = keep_last_good_files(load_paths(&paths), &first.config, &paths);
        let hosts: Vec<_> = merged
            .virtual_services
            .iter()
            .map(|r| r.spec.hosts[0].clone())
            .collect();
        assert!(hosts.contains(&"a.example".to_string()), "{hosts:?}");
        assert!(hosts.contains(&"b2.example".to_string()), "{hosts:?}");
        assert_eq!(notes.len(), 1);
        assert!(notes[0].message.contains("a.yaml"));

        let mut set = merged.clone();
        assert!(restore_resource(
            &mut set,
            &first.config,
            "VirtualService",
            "default",
            "b"
        ));
        let b = set
            .virtual_services
            .iter()
            .find(|r| r.meta.name == "b")
            .unwrap();
        assert_eq!(b.spec.hosts[0], "b.example");
        std::fs::remove_dir_all(&dir).ok();
    }
}
