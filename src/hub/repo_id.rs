//! A Hub repo id as written on the command line: `org/name` or `name`, optionally
//! `@revision` (a branch, a tag or a commit).

use std::fmt;

/// The branch a repo id without `@revision` means.
pub const DEFAULT_REVISION: &str = "main";

/// A model repository on the Hub and the revision asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoId {
    /// `org/name` (or a bare `name`).
    pub repo: String,
    /// Branch, tag or commit; `main` when not given.
    pub revision: String,
}

impl RepoId {
    /// Reads `spec` as a repo id, or `None` when it cannot be one (an absolute or dotted path,
    /// more than one `/`, characters the Hub does not allow in names).
    pub fn parse(spec: &str) -> Option<Self> {
        let (repo, revision) = match spec.rsplit_once('@') {
            Some((repo, revision)) if !revision.is_empty() => (repo, revision),
            Some(_) => return None,
            None => (spec, DEFAULT_REVISION),
        };
        let parts: Vec<&str> = repo.split('/').collect();
        if parts.len() > 2 || !parts.iter().all(|part| is_name(part)) {
            return None;
        }
        if revision.contains("..") || revision.chars().any(char::is_whitespace) {
            return None;
        }
        Some(Self {
            repo: repo.to_string(),
            revision: revision.to_string(),
        })
    }

    /// Whether the revision is a full commit hash (nothing to resolve).
    pub fn revision_is_commit(&self) -> bool {
        is_commit(&self.revision)
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.revision == DEFAULT_REVISION {
            write!(f, "{}", self.repo)
        } else {
            write!(f, "{}@{}", self.repo, self.revision)
        }
    }
}

/// Whether `text` is a 40-digit hexadecimal commit hash.
pub fn is_commit(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The Hub's rule for an org or repo name: letters, digits, `-`, `_`, `.`; no leading or
/// trailing `-`/`.`, no `--` or `..`, at most 96 characters.
fn is_name(part: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    !part.is_empty()
        && part.len() <= 96
        && part.chars().all(allowed)
        && !part.starts_with(['-', '.'])
        && !part.ends_with(['-', '.'])
        && !part.contains("--")
        && !part.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_and_revisions() {
        let id = RepoId::parse("ISEKAI-Portal/LCL_2WAY_WEIGHT").unwrap();
        assert_eq!(id.repo, "ISEKAI-Portal/LCL_2WAY_WEIGHT");
        assert_eq!(id.revision, "main");
        assert_eq!(id.to_string(), "ISEKAI-Portal/LCL_2WAY_WEIGHT");
        let id = RepoId::parse("openai/clip-vit-large-patch14@v1.0").unwrap();
        assert_eq!(
            (id.repo.as_str(), id.revision.as_str()),
            ("openai/clip-vit-large-patch14", "v1.0")
        );
        assert!(!id.revision_is_commit());
        let commit = "32bd64288804d66eefd0ccbe215aa642df71cc41";
        assert!(
            RepoId::parse(&format!("gpt2@{commit}"))
                .unwrap()
                .revision_is_commit()
        );
        assert_eq!(
            RepoId::parse("org/name@refs/pr/1").unwrap().revision,
            "refs/pr/1"
        );
    }

    #[test]
    fn paths_are_not_repo_ids() {
        for spec in [
            "/abs/path",
            "./rel",
            "../up",
            "a/b/c",
            "org/name@",
            "org/-name",
            "org/na--me",
            "org/name.",
            "org/na me",
            "",
            "org/name@a..b",
        ] {
            assert_eq!(RepoId::parse(spec), None, "{spec}");
        }
    }
}
