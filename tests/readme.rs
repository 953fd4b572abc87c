//! The README's embedding snippet is the example's code, so it always compiles.

use std::path::Path;

/// The lines between `// README begin` and `// README end` of the example, unindented.
fn example_region() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = std::fs::read_to_string(root.join("model/examples/episode.rs")).unwrap();
    let start = example
        .find("// README begin\n")
        .expect("README begin marker")
        + 16;
    let end = example
        .find("    // README end")
        .expect("README end marker");
    example[start..end]
        .lines()
        .map(|line| line.strip_prefix("    ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_readme_embedding_snippet_is_the_example_code() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let snippet = format!("```rust\n{}\n```", example_region());
    assert!(
        readme.contains(&snippet),
        "README.md must hold model/examples/episode.rs's README region verbatim:\n{snippet}"
    );
}
