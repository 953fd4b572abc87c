//! Models by Hub repo id, with no network: a Hugging Face cache laid out here as
//! huggingface_hub writes it, read offline (also by `lcl infer`); and downloads from a Hub
//! lookalike on 127.0.0.1 serving the fixture folders in the Hub's URL layout, with an
//! interrupted download resumed, a corrupted one refused, and an unreachable Hub.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::*;
use lcl::hub::{FolderKind, Hub, HubCache, HubClient, RepoId};
use sha2::Digest;

const COMMIT: &str = "4c1e9b3a2f0d8e7c6b5a49382716051f4e3d2c1b";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(content: &[u8]) -> String {
    hex(&sha2::Sha256::digest(content))
}

/// The git blob id of `content`.
fn git_blob(content: &[u8]) -> String {
    let mut digest = sha1::Sha1::new();
    digest.update(format!("blob {}\0", content.len()).as_bytes());
    digest.update(content);
    hex(&digest.finalize())
}

/// Weights go through LFS on the Hub (hashed by sha256); the rest are plain git files.
fn is_lfs(path: &str) -> bool {
    path.ends_with(".bin") || path.ends_with(".safetensors")
}

/// A fixture folder's files by repo path.
fn repo_files(fixture_dir: &str) -> BTreeMap<String, Vec<u8>> {
    let dir = fixture(fixture_dir);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(entry.path()).unwrap())
        })
        .collect()
}

/// Writes `files` into `cache` as huggingface_hub does: `blobs/{etag}`, relative links
/// under `snapshots/{commit}`, `refs/main`.
fn lay_out_cache(cache: &Path, repo: &str, files: &BTreeMap<String, Vec<u8>>) -> PathBuf {
    let repo_dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    let snapshot = repo_dir.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(repo_dir.join("blobs")).unwrap();
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::create_dir_all(&snapshot).unwrap();
    for (path, content) in files {
        let etag = if is_lfs(path) {
            sha256(content)
        } else {
            git_blob(content)
        };
        std::fs::write(repo_dir.join("blobs").join(&etag), content).unwrap();
        std::os::unix::fs::symlink(format!("../../blobs/{etag}"), snapshot.join(path)).unwrap();
    }
    std::fs::write(repo_dir.join("refs/main"), COMMIT).unwrap();
    snapshot
}

/// One request the lookalike saw: its path, Range header and Authorization header.
type Logged = (String, Option<String>, Option<String>);

/// A Hub lookalike: `GET /api/models/{repo}/revision/{rev}?blobs=true` and
/// `GET /{repo}/resolve/{rev}/{file}` (ranges, `X-Repo-Commit`, `ETag`).
#[derive(Default)]
struct FakeHub {
    repos: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// Files whose next download sends half the body and hangs up.
    cut_once: Mutex<BTreeSet<String>>,
    /// Files served with one byte changed.
    corrupt: Mutex<BTreeSet<String>>,
    /// Every request.
    log: Mutex<Vec<Logged>>,
}

impl FakeHub {
    fn serve(self) -> (Arc<Self>, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let hub = Arc::new(self);
        let shared = hub.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let hub = shared.clone();
                std::thread::spawn(move || hub.answer(stream));
            }
        });
        (hub, endpoint)
    }

    fn answer(&self, mut stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return;
        }
        let mut headers = BTreeMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.trim_end().split_once(':') {
                headers.insert(name.to_ascii_lowercase(), value.trim().to_string());
            }
        }
        let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
        let range = headers.get("range").cloned();
        self.log.lock().unwrap().push((
            path.clone(),
            range.clone(),
            headers.get("authorization").cloned(),
        ));
        let (status, extra, body, cut) = self.route(&path, range.as_deref());
        let mut head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let _ = stream.write_all(head.as_bytes());
        let sent = if cut { body.len() / 2 } else { body.len() };
        let _ = stream.write_all(&body[..sent]);
        let _ = stream.flush();
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }

    /// Status line, headers, body, and whether to hang up halfway.
    fn route(
        &self,
        path: &str,
        range: Option<&str>,
    ) -> (&'static str, Vec<(String, String)>, Vec<u8>, bool) {
        let not_found = || {
            (
                "404 Not Found",
                vec![],
                br#"{"error":"Repository not found"}"#.to_vec(),
                false,
            )
        };
        if let Some(rest) = path.strip_prefix("/api/models/") {
            let rest = rest.split('?').next().unwrap();
            let Some((repo, revision)) = rest.split_once("/revision/") else {
                return not_found();
            };
            let Some(files) = self.repos.get(repo) else {
                return not_found();
            };
            if revision != "main" && revision != COMMIT {
                return not_found();
            }
            let siblings: Vec<serde_json::Value> = files
                .iter()
                .map(|(name, content)| {
                    let mut sibling = serde_json::json!({
                        "rfilename": name, "blobId": git_blob(content), "size": content.len()
                    });
                    if is_lfs(name) {
                        sibling["lfs"] = serde_json::json!({
                            "sha256": sha256(content), "size": content.len(), "pointerSize": 134
                        });
                    }
                    sibling
                })
                .collect();
            let body = serde_json::json!({"id": repo, "sha": COMMIT, "siblings": siblings});
            return ("200 OK", vec![], body.to_string().into_bytes(), false);
        }
        let Some((repo, rest)) = path.trim_start_matches('/').split_once("/resolve/") else {
            return not_found();
        };
        let Some((_revision, file)) = rest.split_once('/') else {
            return not_found();
        };
        let Some(content) = self.repos.get(repo).and_then(|files| files.get(file)) else {
            return not_found();
        };
        let etag = if is_lfs(file) {
            sha256(content)
        } else {
            git_blob(content)
        };
        let mut content = content.clone();
        if self.corrupt.lock().unwrap().contains(file) {
            let middle = content.len() / 3;
            content[middle] ^= 0x55;
        }
        let cut = self.cut_once.lock().unwrap().remove(file);
        let mut headers = vec![
            ("X-Repo-Commit".to_string(), COMMIT.to_string()),
            ("ETag".to_string(), format!("\"{etag}\"")),
            ("Accept-Ranges".to_string(), "bytes".to_string()),
        ];
        if let Some(start) = range
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|r| r.parse::<usize>().ok())
        {
            let total = content.len();
            headers.push((
                "Content-Range".into(),
                format!("bytes {start}-{}/{total}", total - 1),
            ));
            return (
                "206 Partial Content",
                headers,
                content[start..].to_vec(),
                cut,
            );
        }
        ("200 OK", headers, content, cut)
    }

    fn downloads_of(&self, file: &str) -> Vec<Option<String>> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(path, _, _)| path.contains("/resolve/") && path.ends_with(file))
            .map(|(_, range, _)| range.clone())
            .collect()
    }
}

fn hub(cache: &Path, endpoint: &str, offline: bool) -> Hub {
    Hub {
        cache: HubCache {
            root: cache.to_path_buf(),
        },
        client: HubClient::new(endpoint.to_string(), None),
        offline,
    }
}

/// An endpoint nothing listens on.
fn closed_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    endpoint
}

const SHARD: &str = "pytorch_model-00002-of-00002.bin";

#[test]
fn a_repo_is_fetched_into_the_hf_cache_and_an_interrupted_download_resumes() {
    let cache = scratch("hub-fetch");
    let files = repo_files("tiny-lcl");
    let fake = FakeHub {
        repos: BTreeMap::from([("lcl-org/tiny-lcl".to_string(), files.clone())]),
        cut_once: Mutex::new(BTreeSet::from([SHARD.to_string()])),
        ..FakeHub::default()
    };
    let (fake, endpoint) = fake.serve();
    let hub = hub(&cache, &endpoint, false);
    let id = RepoId::parse("lcl-org/tiny-lcl").unwrap();

    let err = format!("{:#}", hub.snapshot(&id, FolderKind::Lcl).unwrap_err());
    let half = files[SHARD].len() / 2;
    assert!(
        err.contains(&format!(
            "{SHARD} stopped at {half} of {} bytes",
            files[SHARD].len()
        )) && err.contains("run the command again to resume"),
        "{err}"
    );
    let blobs = cache.join("models--lcl-org--tiny-lcl/blobs");
    let partial = blobs.join(format!("{}.incomplete", sha256(&files[SHARD])));
    assert_eq!(std::fs::metadata(&partial).unwrap().len(), half as u64);

    let dir = hub.snapshot(&id, FolderKind::Lcl).unwrap();
    assert_eq!(
        fake.downloads_of(SHARD),
        [None, Some(format!("bytes={half}-"))],
        "the second run asks for the rest only"
    );
    assert!(!partial.exists());
    assert_eq!(
        dir,
        cache.join(format!("models--lcl-org--tiny-lcl/snapshots/{COMMIT}"))
    );
    for (name, content) in &files {
        let target = dir.join(name);
        if name == "tokenizer-slow-parity.json" {
            assert!(
                !target.exists(),
                "a file the model does not need was fetched"
            );
            continue;
        }
        assert_eq!(&std::fs::read(&target).unwrap(), content, "{name}");
        let etag = if is_lfs(name) {
            sha256(content)
        } else {
            git_blob(content)
        };
        assert_eq!(
            std::fs::read_link(&target).unwrap(),
            Path::new(&format!("../../blobs/{etag}")),
            "{name}: linked as huggingface_hub links it"
        );
    }
    assert_eq!(
        std::fs::read_to_string(cache.join("models--lcl-org--tiny-lcl/refs/main")).unwrap(),
        COMMIT
    );
    lcl::tokenizer::LclTokenizer::from_dir(&dir).unwrap();
    lcl_model::checkpoint::WeightFiles::open(&dir).unwrap();

    let requests = fake.log.lock().unwrap().len();
    hub.snapshot(&id, FolderKind::Lcl).unwrap();
    let log = fake.log.lock().unwrap();
    assert_eq!(
        log.len(),
        requests + 1,
        "only the listing is asked again: {log:?}"
    );
}

#[test]
fn a_corrupted_download_is_refused_and_nothing_of_it_is_cached() {
    let cache = scratch("hub-corrupt");
    let files = repo_files("tiny-clip");
    let fake = FakeHub {
        repos: BTreeMap::from([("openai/tiny-clip".to_string(), files.clone())]),
        corrupt: Mutex::new(BTreeSet::from(["pytorch_model.bin".to_string()])),
        ..FakeHub::default()
    };
    let (_fake, endpoint) = fake.serve();
    let hub = hub(&cache, &endpoint, false);
    let id = RepoId::parse("openai/tiny-clip").unwrap();
    let err = format!("{:#}", hub.snapshot(&id, FolderKind::Clip).unwrap_err());
    let expected = sha256(&files["pytorch_model.bin"]);
    assert!(
        err.contains("pytorch_model.bin refused: its sha256 is")
            && err.contains(&format!("the Hub lists {expected}"))
            && err.contains("discarded"),
        "{err}"
    );
    let repo_dir = cache.join("models--openai--tiny-clip");
    let blobs: Vec<_> = std::fs::read_dir(repo_dir.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !blobs.iter().any(|name| name.starts_with(&expected)),
        "{blobs:?}"
    );
    assert!(
        !repo_dir
            .join("snapshots")
            .join(COMMIT)
            .join("pytorch_model.bin")
            .exists()
    );
}

#[test]
fn the_hub_refusing_a_repo_and_a_token_sent() {
    let cache = scratch("hub-refused");
    let (fake, endpoint) = FakeHub::default().serve();
    let hub = Hub {
        client: HubClient::new(endpoint, Some("hf_secret".into())),
        ..hub(&cache, "unused", false)
    };
    let err = format!(
        "{:#}",
        hub.snapshot(&RepoId::parse("org/private").unwrap(), FolderKind::Lcl)
            .unwrap_err()
    );
    assert!(
        err.contains("HTTP 404") && err.contains("HF_TOKEN"),
        "{err}"
    );
    let log = fake.log.lock().unwrap();
    assert_eq!(log[0].0, "/api/models/org/private/revision/main?blobs=true");
    assert_eq!(log[0].2.as_deref(), Some("Bearer hf_secret"));
}

#[test]
fn offline_the_cache_alone_answers_and_says_what_is_missing() {
    let cache = scratch("hub-offline");
    lay_out_cache(&cache, "lcl-org/tiny-lcl", &repo_files("tiny-lcl"));
    let hub = hub(&cache, &closed_endpoint(), true);
    let id = RepoId::parse("lcl-org/tiny-lcl").unwrap();
    let dir = hub.snapshot(&id, FolderKind::Lcl).unwrap();
    assert_eq!(
        dir,
        cache.join(format!("models--lcl-org--tiny-lcl/snapshots/{COMMIT}"))
    );
    let pinned = RepoId::parse(&format!("lcl-org/tiny-lcl@{COMMIT}")).unwrap();
    assert_eq!(hub.snapshot(&pinned, FolderKind::Lcl).unwrap(), dir);

    let err = format!(
        "{:#}",
        hub.snapshot(&RepoId::parse("org/absent").unwrap(), FolderKind::Lcl)
            .unwrap_err()
    );
    assert!(
        err.contains("org/absent is not in the Hugging Face cache")
            && err.contains(&cache.join("models--org--absent").display().to_string())
            && err.contains("HF_HUB_OFFLINE is set"),
        "{err}"
    );

    std::fs::remove_file(dir.join(SHARD)).unwrap();
    let err = format!("{:#}", hub.snapshot(&id, FolderKind::Lcl).unwrap_err());
    assert!(err.contains(&format!("missing {SHARD}")), "{err}");
}

#[test]
fn an_unreachable_hub_falls_back_to_the_cache() {
    let cache = scratch("hub-unreachable");
    lay_out_cache(&cache, "openai/tiny-clip", &repo_files("tiny-clip"));
    let hub = hub(&cache, &closed_endpoint(), false);
    let cached = hub
        .snapshot(
            &RepoId::parse("openai/tiny-clip").unwrap(),
            FolderKind::Clip,
        )
        .unwrap();
    assert!(cached.join("pytorch_model.bin").is_file());
    let err = format!(
        "{:#}",
        hub.snapshot(&RepoId::parse("openai/other").unwrap(), FolderKind::Clip)
            .unwrap_err()
    );
    assert!(
        err.contains("the Hub cannot be reached") && err.contains("HF_ENDPOINT"),
        "{err}"
    );
}

#[test]
fn lcl_infer_takes_repo_ids_from_the_cache() {
    let cache = scratch("hub-infer");
    lay_out_cache(&cache, "lcl-org/tiny-lcl", &repo_files("tiny-lcl"));
    // the tiny model's config names openai/clip-vit-large-patch14 as its tower
    lay_out_cache(
        &cache,
        "openai/clip-vit-large-patch14",
        &repo_files("tiny-clip"),
    );
    let run = |model: &str, vision: Option<&str>| {
        let mut command = lcl_command();
        command
            .current_dir(fixture(""))
            .env("HF_HUB_CACHE", &cache)
            .args(["infer", "--model", model])
            .args([
                "--support",
                "images/a.png=cactihog",
                "--support",
                "images/b.jpg=hedgehog",
            ])
            .args(["--query", "images/c.png", "--json", "--max-new-tokens", "4"]);
        if let Some(vision) = vision {
            command.args(["--vision", vision]);
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let local = run("tiny-lcl", Some("tiny-clip"));
    assert_eq!(
        run("lcl-org/tiny-lcl", Some("openai/clip-vit-large-patch14")),
        local
    );
    assert_eq!(
        run(&format!("lcl-org/tiny-lcl@{COMMIT}"), None),
        local,
        "tower from mm_vision_tower"
    );
}
