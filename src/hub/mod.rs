//! Models by their Hugging Face Hub names. A `--model`, `--vision` or `--clip` argument (or a
//! config's `mm_vision_tower`) that is not a local folder but reads as a repo id
//! (`org/name[@revision]`) is resolved to a snapshot folder of the standard Hugging Face
//! cache, where transformers finds the same files: from the cache alone when it holds the
//! revision and `HF_HUB_OFFLINE` is set or the Hub cannot be reached, else through the Hub's
//! API, fetching only the files the model needs (`HF_ENDPOINT`, `HF_TOKEN` honoured).

mod cache;
mod client;
mod files;
mod repo_id;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Result, bail};

pub use cache::HubCache;
pub use client::{HubClient, RequestError};
pub use files::FolderKind;
pub use repo_id::RepoId;

/// `spec` as a local folder: itself when it exists or cannot be a repo id (the caller's own
/// checks then report it), else the cached snapshot of that repo, fetched when needed.
/// A repo id is resolved once per process, however many times a command asks.
pub fn locate(spec: &Path, kind: FolderKind) -> Result<PathBuf> {
    static RESOLVED: Mutex<BTreeMap<(String, FolderKind), PathBuf>> = Mutex::new(BTreeMap::new());
    if spec.exists() {
        return Ok(spec.to_path_buf());
    }
    let Some(id) = spec.to_str().and_then(RepoId::parse) else {
        return Ok(spec.to_path_buf());
    };
    let key = (id.to_string(), kind);
    if let Some(dir) = RESOLVED.lock().expect("resolved repos").get(&key) {
        return Ok(dir.clone());
    }
    let hub = Hub {
        cache: HubCache::from_env(),
        client: HubClient::from_env(),
        offline: offline_from_env(),
    };
    let dir = hub.snapshot(&id, kind).map_err(|err| {
        anyhow::anyhow!(
            "{}: no such local folder, and as a Hugging Face repo id: {err:#}",
            spec.display()
        )
    })?;
    RESOLVED
        .lock()
        .expect("resolved repos")
        .insert(key, dir.clone());
    Ok(dir)
}

/// Whether `HF_HUB_OFFLINE` asks for the cache alone (`1`, `on`, `yes`, `true`).
pub fn offline_from_env() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|value| {
        matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "1" | "on" | "yes" | "true"
        )
    })
}

/// The cache, the endpoint, and whether to use the network at all.
pub struct Hub {
    /// Where snapshots are kept.
    pub cache: HubCache,
    /// The Hub asked when the cache is not enough.
    pub client: HubClient,
    /// The cache alone.
    pub offline: bool,
}

impl Hub {
    /// The snapshot folder of `id` holding the files a `kind` folder needs.
    pub fn snapshot(&self, id: &RepoId, kind: FolderKind) -> Result<PathBuf> {
        if self.offline {
            return self.cached(id, kind).map_err(|why| {
                anyhow::anyhow!(
                    "{why} (HF_HUB_OFFLINE is set: unset it to download {id}, or point HF_HUB_CACHE \
                     or HF_HOME at a cache that holds it)"
                )
            });
        }
        let revision = match self.client.revision(id) {
            Ok(revision) => revision,
            Err(RequestError::Unreachable(why)) => {
                return match self.cached(id, kind) {
                    Ok(dir) => {
                        eprintln!(
                            "warning: the Hub cannot be reached ({why}); using {id} as cached in {}",
                            dir.display()
                        );
                        Ok(dir)
                    }
                    Err(cached) => bail!(
                        "{cached}, and the Hub cannot be reached: {why} (set HF_ENDPOINT to a \
                         Hub or mirror this machine reaches, or HF_HUB_CACHE / HF_HOME to a \
                         cache that holds it)"
                    ),
                };
            }
            Err(refused) => bail!("{refused}"),
        };
        self.fetch(id, kind, &revision)
    }

    /// The cached snapshot of `id`, when it is complete for `kind`.
    fn cached(&self, id: &RepoId, kind: FolderKind) -> Result<PathBuf, String> {
        let searched = self.cache.repo_dir(&id.repo);
        let Some(commit) = self.cache.cached_commit(id) else {
            return Err(format!(
                "{id} is not in the Hugging Face cache ({} has no ref {})",
                searched.display(),
                id.revision
            ));
        };
        let dir = self.cache.snapshot_dir(&id.repo, &commit);
        let listing = list_files(&dir);
        let mut missing = Vec::new();
        match files::wanted(kind, &listing) {
            Ok(wanted) => {
                for file in wanted {
                    if files::is_index(&file) {
                        match files::shards(&file, &dir.join(&file)) {
                            Ok(shards) => {
                                missing.extend(shards.into_iter().filter(|s| !listing.contains(s)))
                            }
                            Err(err) => missing.push(format!("{file} ({err:#})")),
                        }
                    }
                }
            }
            Err(err) => missing.push(format!("{err:#}")),
        }
        if missing.is_empty() {
            Ok(dir)
        } else {
            Err(format!(
                "{id} is only partly in the Hugging Face cache ({}: missing {})",
                dir.display(),
                missing.join(", ")
            ))
        }
    }

    /// Fetches what `kind` needs of `revision` into its snapshot.
    fn fetch(&self, id: &RepoId, kind: FolderKind, revision: &client::Revision) -> Result<PathBuf> {
        let by_path: BTreeMap<&str, &client::RepoFile> = revision
            .files
            .iter()
            .map(|file| (file.path.as_str(), file))
            .collect();
        let listing: BTreeSet<String> = by_path.keys().map(|path| path.to_string()).collect();
        let snapshot = self.cache.snapshot_dir(&id.repo, &revision.commit);
        let mut queue: VecDeque<String> = files::wanted(kind, &listing)?.into();
        let mut fetched = 0;
        while let Some(path) = queue.pop_front() {
            let Some(file) = by_path.get(path.as_str()) else {
                bail!("{path} is named by the repo's shard index but not in the repo");
            };
            let target = snapshot.join(&path);
            let in_place = target.metadata().is_ok_and(|meta| meta.len() == file.size)
                && self.cache.blob_path(&id.repo, file.hash.hex()).is_file();
            if !in_place {
                self.client
                    .download(&self.cache, &id.repo, &revision.commit, file)?;
                self.cache
                    .link(&id.repo, &revision.commit, &path, file.hash.hex())?;
                fetched += 1;
            }
            if files::is_index(&path) {
                queue.extend(files::shards(&path, &target)?);
            }
        }
        if !id.revision_is_commit() {
            self.cache
                .write_ref(&id.repo, &id.revision, &revision.commit)?;
        }
        if fetched > 0 {
            eprintln!("{id}: {fetched} files fetched into {}", snapshot.display());
        }
        Ok(snapshot)
    }
}

/// Every file under `dir`, as `/`-separated paths relative to it (links followed).
fn list_files(dir: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((folder, prefix)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if path.is_dir() {
                pending.push((path, format!("{prefix}{name}/")));
            } else if path.is_file() {
                found.insert(format!("{prefix}{name}"));
            }
        }
    }
    found
}
