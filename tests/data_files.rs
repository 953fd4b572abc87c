//! Reading and writing the original's data files: the per-class file, ISEKAI episode files;
//! malformed lines are errors naming file and line.

use std::path::PathBuf;

use lcl::data::class_file::{self, ClassEntry, Neighbor};
use lcl::data::isekai;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lcl-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A line in the exact layout of the original's `train900_pairs.jsonl`.
const ORIGINAL_LINE: &str = r#"{"class_id": "1", "class_name": "kit fox", "samples": ["train/n02119789/n02119789_9474.JPEG", "val/ILSVRC2012_val_00009503.JPEG"], "neighbors": [["48", "weasel", "train/n02441942/n02441942_1.JPEG"], ["3", "red fox", "train/n02119022/n02119022_2.JPEG"]]}"#;

#[test]
fn per_class_file_reads_the_original_layout_and_round_trips() {
    let path = scratch("pairs.jsonl");
    std::fs::write(&path, format!("{ORIGINAL_LINE}\n\n{ORIGINAL_LINE}\n")).unwrap();
    let entries = class_file::read(&path).unwrap();
    assert_eq!(entries.len(), 2, "blank lines are not records");
    assert_eq!(entries[0].class_name, "kit fox");
    assert_eq!(
        entries[0].neighbors[0],
        Neighbor(
            "48".into(),
            "weasel".into(),
            "train/n02441942/n02441942_1.JPEG".into()
        )
    );
    assert_eq!(entries[0].neighbors[1].name(), "red fox");

    let written = scratch("pairs-written.jsonl");
    let mut changed = entries.clone();
    changed.push(ClassEntry {
        class_id: "7".into(),
        class_name: "crème \"brûlée\"".into(),
        samples: vec!["a/b.jpg".into()],
        neighbors: vec![Neighbor("1".into(), "kit fox".into(), "x.jpg".into())],
    });
    class_file::write(&written, &changed).unwrap();
    assert_eq!(class_file::read(&written).unwrap(), changed);
    assert!(!written.with_extension("jsonl.partial").exists());
}

#[test]
fn malformed_lines_are_errors_with_file_and_line() {
    let path = scratch("broken.jsonl");
    std::fs::write(
        &path,
        format!("{ORIGINAL_LINE}\n{{\"class_id\": \"2\", \"class_name\": \n"),
    )
    .unwrap();
    let err = format!("{:#}", class_file::read(&path).unwrap_err());
    assert!(err.contains("broken.jsonl:2: malformed record"), "{err}");

    let episodes = scratch("isekai.jsonl");
    std::fs::write(
        &episodes,
        "{\"image_name\": \"q.jpg\", \"positive_list\": [\"p1.jpg\"], \"negative_list\": [\"n1.jpg\"], \"positive_promt\": \"Cactihog\", \"negative_promt\": \"hedgehog\", \"label_name\": \"Cactihog\"}\n{\"image_name\": \"q2.jpg\"}\n",
    )
    .unwrap();
    let err = format!("{:#}", isekai::read(&episodes).unwrap_err());
    assert!(
        err.contains("isekai.jsonl:2: malformed record") && err.contains("missing field"),
        "{err}"
    );
}

#[test]
fn isekai_episodes_list_their_images_under_the_root() {
    let path = scratch("isekai-ok.jsonl");
    std::fs::write(
        &path,
        "{\"image_name\": \"q.jpg\", \"positive_list\": [\"p1.jpg\", \"p2.jpg\"], \"negative_list\": [\"n1.jpg\"], \"positive_promt\": \"Cactihog\", \"negative_promt\": \"hedgehog\", \"label_name\": \"Cactihog\"}\n",
    )
    .unwrap();
    let episodes = isekai::read(&path).unwrap();
    let images = episodes[0].images("root".as_ref());
    let names: Vec<String> = images.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(
        names,
        ["root/q.jpg", "root/p1.jpg", "root/p2.jpg", "root/n1.jpg"]
    );
    assert_eq!(episodes[0].positive_promt, "Cactihog");
}

#[test]
fn a_class_without_neighbours_is_rejected() {
    let path = scratch("empty-neighbours.jsonl");
    std::fs::write(&path, "{\"class_id\": \"1\", \"class_name\": \"x\", \"samples\": [\"a.jpg\"], \"neighbors\": []}\n").unwrap();
    let err = format!("{:#}", class_file::read(&path).unwrap_err());
    assert!(
        err.contains("class 1 (x) on record 1 has no samples or no neighbours"),
        "{err}"
    );
}
