//! The generated two-world data set: reproducible, readable by the real data code paths, and
//! with nothing of the novel world in what training reads.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use common::*;
use lcl::data::image_folder::ImageFolder;
use lcl::data::isekai;
use lcl::data::split::ClassSplit;
use lcl::world::{World, WorldSpec, generate};

fn small() -> WorldSpec {
    WorldSpec {
        seed: 7,
        species: 30,
        heldout: 6,
        images_per_species: 4,
        concepts: 5,
        concept_images: 6,
        support_per_class: 4,
        pair_queries: 1,
        image_size: 32,
    }
}

fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut all = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                all.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    all
}

#[test]
fn the_world_is_a_pure_function_of_its_spec() {
    let dir = scratch("world-pure");
    let (a, b) = (dir.join("a"), dir.join("b"));
    generate(&small(), &a, &mut |_, _| {}).unwrap();
    generate(&small(), &b, &mut |_, _| {}).unwrap();
    let (fa, fb) = (files(&a), files(&b));
    assert_eq!(fa.len(), 30 * 4 + 5 * 6 * 2 + 8);
    assert!(fa == fb, "two generations differ");
    let other = WorldSpec { seed: 8, ..small() }.catalogue().unwrap();
    assert_ne!(other, small().catalogue().unwrap());
}

#[test]
fn nothing_of_the_novel_world_reaches_what_training_reads() {
    let dir = scratch("world-leak");
    let world: World = generate(&small(), &dir, &mut |_, _| {}).unwrap();
    let real_looks: HashSet<_> = world.species.iter().map(|s| s.look).collect();
    let real_names: HashSet<_> = world.species.iter().map(|s| s.name.as_str()).collect();
    let training: HashSet<&str> = world.training_ids().into_iter().collect();
    for concept in &world.concepts {
        assert!(!real_looks.contains(&concept.species.look), "{concept:?}");
        assert!(!real_names.contains(concept.species.name.as_str()));
        assert!(
            training.contains(concept.body_parent.as_str()),
            "parents are training species"
        );
        assert!(training.contains(concept.feature_parent.as_str()));
    }

    // What training scans: the real folder's classes, minus the held-out ones.
    let folder = ImageFolder::scan(&dir.join("real/images"), None).unwrap();
    let split = ClassSplit::from_file(&dir.join("real/heldout-classes.txt")).unwrap();
    let (train, test) = split.apply(&folder.classes).unwrap();
    let train_ids: HashSet<&str> = train.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(train_ids, training);
    assert_eq!(test.len(), 6);
    assert!(train.iter().all(|c| !c.id.starts_with('n')));
    for class in &train {
        assert!(!world.concepts.iter().any(|c| c.species.name == class.name));
    }

    // No novel picture is also a real picture.
    let real_pixels: HashSet<Vec<u8>> = files(&dir.join("real/images"))
        .values()
        .map(|png| image::load_from_memory(png).unwrap().to_rgb8().into_raw())
        .collect();
    for (name, png) in files(&dir.join("novel/images")) {
        let pixels = image::load_from_memory(&png).unwrap().to_rgb8().into_raw();
        assert!(
            !real_pixels.contains(&pixels),
            "{name} is also in the real world"
        );
    }
}

#[test]
fn the_suites_are_isekai_files_over_existing_pictures() {
    let dir = scratch("world-suites");
    let world = generate(&small(), &dir, &mut |_, _| {}).unwrap();
    let look_alike = isekai::read(&dir.join("isekai-10.jsonl")).unwrap();
    assert_eq!(look_alike.len(), 5 * (6 - 4));
    for record in &look_alike {
        let concept = world
            .concepts
            .iter()
            .find(|c| c.species.name == record.label_name)
            .unwrap();
        let parent = world.species_by_id(&concept.body_parent).unwrap();
        assert_eq!(
            record.negative_promt, parent.name,
            "the look-alike is the hard negative"
        );
        assert!(
            !record.positive_list.contains(&record.image_name),
            "queries are not support"
        );
        for image in record.images(&dir) {
            assert!(image.is_file(), "{}", image.display());
        }
    }
    let pairs = isekai::read(&dir.join("isekai-pair.jsonl")).unwrap();
    assert_eq!(pairs.len(), 5 * 4);
    let episodes = lcl::data::eval_episodes::isekai_episodes(
        &pairs,
        &dir.join("isekai-pair.jsonl"),
        8,
        &dir,
        1,
    )
    .unwrap();
    assert_eq!(episodes[0].episode.support.len(), 8);
}
