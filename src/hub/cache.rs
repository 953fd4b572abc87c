//! The Hugging Face cache as huggingface_hub lays it out, so that files fetched here are the
//! ones transformers finds and the other way round:
//! `models--{org}--{name}/refs/{revision}` (a commit hash), `blobs/{hash}` (the content,
//! named by its sha256 or git blob id), `snapshots/{commit}/{path}` (relative links to blobs).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::repo_id::{RepoId, is_commit};

/// A Hugging Face hub cache folder.
#[derive(Debug, Clone)]
pub struct HubCache {
    /// The folder holding `models--*` folders.
    pub root: PathBuf,
}

impl HubCache {
    /// The cache huggingface_hub uses: `HF_HUB_CACHE`, else `HF_HOME/hub`, else
    /// `XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        let root = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home().join("hub"));
        Self { root }
    }

    /// The folder of one model repo.
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.root
            .join(format!("models--{}", repo.replace('/', "--")))
    }

    /// The commit a revision points at in the cache: the revision itself when it is a commit,
    /// else what `refs/{revision}` says.
    pub fn cached_commit(&self, id: &RepoId) -> Option<String> {
        if id.revision_is_commit() {
            return Some(id.revision.to_lowercase());
        }
        let text = std::fs::read_to_string(self.repo_dir(&id.repo).join("refs").join(&id.revision))
            .ok()?;
        let commit = text.trim();
        is_commit(commit).then(|| commit.to_string())
    }

    /// Records that `revision` points at `commit`.
    pub fn write_ref(&self, repo: &str, revision: &str, commit: &str) -> Result<()> {
        let path = self.repo_dir(repo).join("refs").join(revision);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("{}: cannot create", parent.display()))?;
        }
        std::fs::write(&path, commit).with_context(|| format!("{}: cannot write", path.display()))
    }

    /// The snapshot folder of a commit.
    pub fn snapshot_dir(&self, repo: &str, commit: &str) -> PathBuf {
        self.repo_dir(repo).join("snapshots").join(commit)
    }

    /// Where a blob's content lives.
    pub fn blob_path(&self, repo: &str, blob: &str) -> PathBuf {
        self.repo_dir(repo).join("blobs").join(blob)
    }

    /// Puts `file` into the snapshot of `commit` as a relative link to `blob`, replacing what
    /// was there.
    pub fn link(&self, repo: &str, commit: &str, file: &str, blob: &str) -> Result<PathBuf> {
        let target = self.snapshot_dir(repo, commit).join(file);
        let parent = target.parent().expect("a file in a snapshot has a parent");
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create", parent.display()))?;
        // snapshots/{commit}/{file}: two levels up to the repo folder, plus one per subfolder
        let depth = file.matches('/').count() + 2;
        let relative = Path::new(&"../".repeat(depth)).join("blobs").join(blob);
        if target.symlink_metadata().is_ok() {
            std::fs::remove_file(&target)
                .with_context(|| format!("{}: cannot replace", target.display()))?;
        }
        make_link(&relative, &self.blob_path(repo, blob), &target).with_context(|| {
            format!(
                "{}: cannot link to {}",
                target.display(),
                relative.display()
            )
        })?;
        Ok(target)
    }
}

/// `HF_HOME`, else `XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
pub fn hf_home() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(home) = var("HF_HOME") {
        return PathBuf::from(home);
    }
    let cache = var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(var("HOME").unwrap_or_else(|| ".".into())).join(".cache"));
    cache.join("huggingface")
}

#[cfg(unix)]
fn make_link(relative: &Path, _blob: &Path, target: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(relative, target)
}

/// Where links need privileges, huggingface_hub copies the blob; so does this.
#[cfg(not(unix))]
fn make_link(_relative: &Path, blob: &Path, target: &Path) -> std::io::Result<()> {
    std::fs::copy(blob, target).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_of_huggingface_hub() {
        let root = std::env::temp_dir().join(format!("lcl-hub-cache-{}", std::process::id()));
        let cache = HubCache { root: root.clone() };
        let repo = "org/model";
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(cache.repo_dir(repo), root.join("models--org--model"));
        let id = RepoId::parse(repo).unwrap();
        assert_eq!(cache.cached_commit(&id), None);
        cache.write_ref(repo, "main", commit).unwrap();
        assert_eq!(cache.cached_commit(&id).as_deref(), Some(commit));

        let blob = cache.blob_path(repo, "abc");
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(&blob, "content").unwrap();
        let linked = cache
            .link(repo, commit, "vision/config.json", "abc")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&linked).unwrap(), "content");
        assert_eq!(
            std::fs::read_link(&linked).unwrap(),
            Path::new("../../../blobs/abc"),
            "relative, as huggingface_hub writes it"
        );
        // linking again replaces the link
        cache
            .link(repo, commit, "vision/config.json", "abc")
            .unwrap();
        std::fs::remove_dir_all(&root).unwrap();
    }
}
