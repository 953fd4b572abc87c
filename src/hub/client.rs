//! The Hub's HTTP API, the part a model download needs: a revision's commit and file list
//! with sizes and hashes (`/api/models/{repo}/revision/{rev}?blobs=true`), and each file from
//! `/{repo}/resolve/{commit}/{path}`, resumed with a `Range` request after an interruption
//! and checked against the listed hash before it enters the cache.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sha2::Digest;

use super::cache::{HubCache, hf_home};
use super::repo_id::{RepoId, is_commit};

/// The public Hub, when `HF_ENDPOINT` does not name another.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How a file's content is named and checked: LFS files by sha256, the others by their git
/// blob id (sha1 of `blob {size}\0` and the content), as the cache's blob names are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentHash {
    /// sha256 of the content, lowercase hex.
    Sha256(String),
    /// git blob sha1, lowercase hex.
    GitBlob(String),
}

impl ContentHash {
    /// The blob file name in the cache.
    pub fn hex(&self) -> &str {
        match self {
            ContentHash::Sha256(hex) | ContentHash::GitBlob(hex) => hex,
        }
    }
}

/// One file of a revision.
#[derive(Debug, Clone)]
pub struct RepoFile {
    /// Path inside the repo.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Its content hash.
    pub hash: ContentHash,
}

/// A revision as the Hub lists it.
#[derive(Debug, Clone)]
pub struct Revision {
    /// The commit the revision points at.
    pub commit: String,
    /// Every file of that commit.
    pub files: Vec<RepoFile>,
}

/// Why a request failed.
#[derive(Debug)]
pub enum RequestError {
    /// No answer: no network, refused, timed out.
    Unreachable(String),
    /// An answer that is not the file or listing asked for.
    Refused(String),
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Unreachable(why) | RequestError::Refused(why) => f.write_str(why),
        }
    }
}

/// A client of one Hub endpoint.
pub struct HubClient {
    /// The endpoint, without a trailing `/`.
    pub endpoint: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl HubClient {
    /// The endpoint of `HF_ENDPOINT` (default the public Hub) with the token of `HF_TOKEN`,
    /// else of the file `huggingface-cli login` writes (`HF_TOKEN_PATH`, `HF_HOME/token`).
    pub fn from_env() -> Self {
        let endpoint = std::env::var("HF_ENDPOINT")
            .ok()
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        Self::new(endpoint.trim_end_matches('/').to_string(), token_from_env())
    }

    /// A client of `endpoint` sending `token` when given.
    pub fn new(endpoint: String, token: Option<String>) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .user_agent(concat!("lcl/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self {
            endpoint,
            token,
            agent,
        }
    }

    fn get(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        let request = self.agent.get(url);
        match &self.token {
            Some(token) => request.header("Authorization", format!("Bearer {token}")),
            None => request,
        }
    }

    /// The commit `id`'s revision points at and its files with sizes and hashes.
    pub fn revision(&self, id: &RepoId) -> Result<Revision, RequestError> {
        let url = format!(
            "{}/api/models/{}/revision/{}?blobs=true",
            self.endpoint,
            id.repo,
            encode(&id.revision, true)
        );
        let mut response = self
            .get(&url)
            .call()
            .map_err(|err| RequestError::Unreachable(format!("{url}: {err}")))?;
        let status = response.status().as_u16();
        if status != 200 {
            let hint = match status {
                401 | 403 | 404 => {
                    " (no such repo or revision, or a private or gated one: set HF_TOKEN to a token that may read it)"
                }
                _ => "",
            };
            return Err(RequestError::Refused(format!("{url}: HTTP {status}{hint}")));
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|err| RequestError::Unreachable(format!("{url}: {err}")))?;
        parse_revision(&text).map_err(|err| RequestError::Refused(format!("{url}: {err:#}")))
    }

    /// Downloads `file` of `repo` at `commit` into the cache's blobs (resuming a partial
    /// download left by an interruption) and returns the blob's path; the content is checked
    /// against the listed size and hash before it takes the blob's name.
    pub fn download(
        &self,
        cache: &HubCache,
        repo: &str,
        commit: &str,
        file: &RepoFile,
    ) -> Result<PathBuf> {
        let blob = cache.blob_path(repo, file.hash.hex());
        if blob.metadata().is_ok_and(|meta| meta.len() == file.size) {
            return Ok(blob);
        }
        let partial = blob.with_extension("incomplete");
        std::fs::create_dir_all(blob.parent().expect("blobs folder"))
            .with_context(|| format!("{}: cannot create", blob.display()))?;
        let url = format!(
            "{}/{repo}/resolve/{commit}/{}",
            self.endpoint,
            encode(&file.path, false)
        );
        let mut have = partial.metadata().map(|meta| meta.len()).unwrap_or(0);
        if have > file.size {
            have = 0;
        }
        let mut request = self.get(&url);
        if have > 0 {
            request = request.header("Range", format!("bytes={have}-"));
        }
        let response = request
            .call()
            .map_err(|err| anyhow::anyhow!("{url}: {err}"))?;
        let status = response.status().as_u16();
        match status {
            200 => have = 0,
            206 => {
                let range = header(&response, "content-range").unwrap_or_default();
                if !range.starts_with(&format!("bytes {have}-")) {
                    bail!("{url}: asked for bytes {have}- and got the range {range:?}");
                }
            }
            416 => {
                std::fs::remove_file(&partial).ok();
                return self.download(cache, repo, commit, file);
            }
            _ => bail!("{url}: HTTP {status}"),
        }
        if let Some(served) = header(&response, "x-repo-commit")
            && served != commit
        {
            bail!("{url}: the Hub served commit {served}, not {commit} asked for");
        }
        let mut out = OpenOptions::new()
            .create(true)
            .write(true)
            .append(have > 0)
            .truncate(have == 0)
            .open(&partial)
            .with_context(|| format!("{}: cannot write", partial.display()))?;
        let bar = crate::progress::bar(
            file.size,
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        );
        bar.set_message(format!("{repo} {}", file.path));
        bar.set_position(have);
        let mut reader = response.into_body().into_reader();
        let mut buffer = vec![0u8; 1 << 20];
        let mut received = have;
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(err) => {
                    out.flush().ok();
                    bar.abandon();
                    bail!(
                        "{repo}: the download of {} stopped at {received} of {} bytes ({err}); \
                         run the command again to resume it",
                        file.path,
                        file.size
                    );
                }
            };
            out.write_all(&buffer[..read])
                .with_context(|| format!("{}: cannot write", partial.display()))?;
            received += read as u64;
            bar.set_position(received);
        }
        out.flush()
            .with_context(|| format!("{}: cannot write", partial.display()))?;
        drop(out);
        bar.finish_and_clear();
        verify(&partial, file).map_err(|err| {
            std::fs::remove_file(&partial).ok();
            anyhow::anyhow!(
                "{repo}: {} refused: {err}; the download was discarded",
                file.path
            )
        })?;
        std::fs::rename(&partial, &blob)
            .with_context(|| format!("{}: cannot move into place", blob.display()))?;
        Ok(blob)
    }
}

/// Checks `path` against `file`'s size and hash.
fn verify(path: &std::path::Path, file: &RepoFile) -> Result<()> {
    let size = path.metadata()?.len();
    if size != file.size {
        bail!("{size} bytes where the Hub lists {}", file.size);
    }
    let mut input = File::open(path)?;
    let (algorithm, actual) = match &file.hash {
        ContentHash::Sha256(_) => ("sha256", hash_file::<sha2::Sha256>(&mut input, None)?),
        ContentHash::GitBlob(_) => {
            let header = format!("blob {size}\0");
            (
                "git blob id",
                hash_file::<sha1::Sha1>(&mut input, Some(header.as_bytes()))?,
            )
        }
    };
    if actual != file.hash.hex() {
        bail!(
            "its {algorithm} is {actual}, the Hub lists {}",
            file.hash.hex()
        );
    }
    Ok(())
}

fn hash_file<D: Digest>(input: &mut File, prefix: Option<&[u8]>) -> Result<String> {
    let mut digest = D::new();
    if let Some(prefix) = prefix {
        digest.update(prefix);
    }
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = input.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        digest.update(&buffer[..read]);
    }
    Ok(digest
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

/// Reads the revision listing (the `blobs=true` form: sizes, blob ids, LFS sha256).
fn parse_revision(text: &str) -> Result<Revision> {
    #[derive(serde::Deserialize)]
    struct Listing {
        sha: String,
        siblings: Vec<Sibling>,
    }
    #[derive(serde::Deserialize)]
    struct Sibling {
        rfilename: String,
        size: Option<u64>,
        #[serde(rename = "blobId")]
        blob_id: Option<String>,
        lfs: Option<Lfs>,
    }
    #[derive(serde::Deserialize)]
    struct Lfs {
        sha256: String,
        size: u64,
    }
    let listing: Listing = serde_json::from_str(text).context("not a revision listing")?;
    if !is_commit(&listing.sha) {
        bail!("the listing's sha {:?} is not a commit hash", listing.sha);
    }
    let files = listing
        .siblings
        .into_iter()
        .map(|sibling| {
            let path = sibling.rfilename;
            if path
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
            {
                bail!("file name {path:?} leaves the repo folder");
            }
            let (size, hash) = match (sibling.lfs, sibling.blob_id, sibling.size) {
                (Some(lfs), _, _) => (lfs.size, ContentHash::Sha256(lfs.sha256.to_lowercase())),
                (None, Some(blob), Some(size)) => (size, ContentHash::GitBlob(blob.to_lowercase())),
                _ => bail!("no size or hash listed for {path}"),
            };
            if !hash.hex().bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("{path}: hash {:?} is not hexadecimal", hash.hex());
            }
            Ok(RepoFile { path, size, hash })
        })
        .collect::<Result<_>>()?;
    Ok(Revision {
        commit: listing.sha,
        files,
    })
}

fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}

/// Percent-encodes a URL path part; `/` too when `slash` (a revision like `refs/pr/1`).
fn encode(text: &str, slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        let keep =
            byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) || (!slash && byte == b'/');
        if keep {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn token_from_env() -> Option<String> {
    let non_empty = |text: String| {
        let text = text.trim().to_string();
        (!text.is_empty()).then_some(text)
    };
    if let Some(token) = std::env::var("HF_TOKEN").ok().and_then(non_empty) {
        return Some(token);
    }
    let path = std::env::var_os("HF_TOKEN_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| hf_home().join("token"));
    std::fs::read_to_string(path).ok().and_then(non_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_with_lfs_and_plain_files() {
        let text = r#"{"id": "org/m", "sha": "0123456789abcdef0123456789abcdef01234567",
            "siblings": [
              {"rfilename": "config.json", "blobId": "AB12", "size": 10},
              {"rfilename": "model.safetensors", "blobId": "ff", "size": 99,
               "lfs": {"sha256": "CD34", "size": 2000, "pointerSize": 134}}]}"#;
        let revision = parse_revision(text).unwrap();
        assert_eq!(revision.files[0].hash, ContentHash::GitBlob("ab12".into()));
        assert_eq!(revision.files[0].size, 10);
        assert_eq!(revision.files[1].hash, ContentHash::Sha256("cd34".into()));
        assert_eq!(revision.files[1].size, 2000);
        let escape = text.replace("config.json", "../config.json");
        assert!(parse_revision(&escape).is_err());
        let no_hash = r#"{"sha": "0123456789abcdef0123456789abcdef01234567",
            "siblings": [{"rfilename": "config.json"}]}"#;
        assert!(
            parse_revision(no_hash)
                .unwrap_err()
                .to_string()
                .contains("config.json")
        );
    }

    #[test]
    fn url_parts() {
        assert_eq!(encode("refs/pr/1", true), "refs%2Fpr%2F1");
        assert_eq!(encode("vision/model 1.bin", false), "vision/model%201.bin");
    }
}
