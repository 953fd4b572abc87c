//! A generated two-world data set in the formats of the real data, so every code path
//! (neighbours, samplers, training, evaluation) runs on it unchanged:
//!
//! ```text
//! DIR/real/images/<r0001>/<r0001>_<k>.png   the "real world": species x pictures (ImageNet layout)
//! DIR/real/LOC_synset_mapping.txt           "<id> <name>" per species
//! DIR/real/heldout-classes.txt              held-out species (the ImageNet-100 analogue), in pairs
//! DIR/real/captions.json                    captioning conversations of the training species
//! DIR/text/recall.json                      text-only associative recall (pretraining stand-in)
//! DIR/novel/images/<n001>/<k>.png           novel concepts: hybrids of two real species
//! DIR/novel/images/<r0001>/<k>.png          fresh pictures of each concept's look-alike parent
//! DIR/isekai-10.jsonl                       concept vs its look-alike parent (ISEKAI-10 format)
//! DIR/isekai-pair.jsonl                     concept vs every other concept (ISEKAI-pair format)
//! DIR/world.json                            every species and concept with its attributes
//! DIR/contact-sheet.png                     pictures of both worlds
//! ```
//!
//! Everything is a pure function of the spec (same seed, same bytes).

pub mod recall;
pub mod render;
pub mod sheet;
pub mod species;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use image::RgbImage;
use lcl_model::rng::Rng;
use serde::{Deserialize, Serialize};

use crate::data::conversation::{Conversation, Turn};
use crate::data::isekai::IsekaiEpisode;
use crate::template::{IMAGE_PLACEHOLDER, query_answer};
use crate::world::species::{Concept, Species, novel_concepts, real_species};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorldSpec {
    /// Seed of every choice.
    pub seed: u64,
    /// Real species.
    pub species: usize,
    /// Real species held out of training (even: they pair 2k with 2k+1).
    pub heldout: usize,
    /// Pictures per real species.
    pub images_per_species: usize,
    /// Novel concepts.
    pub concepts: usize,
    /// Pictures per novel concept (and per look-alike parent in the novel folder).
    pub concept_images: usize,
    /// Support images per class in the suites' lists (the rest of a concept's are queries).
    pub support_per_class: usize,
    /// Queries per ordered concept pair in the ISEKAI-pair suite.
    pub pair_queries: usize,
    /// Picture side in pixels.
    pub image_size: u32,
}

impl Default for WorldSpec {
    fn default() -> Self {
        Self {
            seed: 42,
            species: 300,
            heldout: 40,
            images_per_species: 40,
            concepts: 20,
            concept_images: 32,
            support_per_class: 8,
            pair_queries: 2,
            image_size: 64,
        }
    }
}

/// The generated world's catalogue (`world.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct World {
    /// The spec it was generated from.
    pub spec: WorldSpec,
    /// Every real species.
    pub species: Vec<Species>,
    /// Ids of the held-out real species.
    pub heldout: Vec<String>,
    /// The novel concepts.
    pub concepts: Vec<Concept>,
}

impl WorldSpec {
    fn check(&self) -> Result<()> {
        if self.species < 4 || self.heldout % 2 == 1 || self.heldout + 2 > self.species {
            bail!(
                "a world needs at least 4 species and an even number of held-out species \
                 leaving 2 for training (species {}, held out {})",
                self.species,
                self.heldout
            );
        }
        if self.concepts == 0 || self.concepts * 2 > self.species - self.heldout {
            bail!(
                "{} concepts need at least {} training species",
                self.concepts,
                self.concepts * 2
            );
        }
        if self.concept_images <= self.support_per_class || self.image_size < 16 {
            bail!(
                "concept_images must exceed support_per_class (queries are the rest), image_size >= 16"
            );
        }
        Ok(())
    }

    /// The species, held-out ids and concepts (no picture drawn). Concepts are built from
    /// training species only, so a held-out species never shows up in the novel world.
    pub fn catalogue(&self) -> Result<World> {
        self.check()?;
        let species = real_species(self.seed, self.species);
        let mut order: Vec<usize> = (0..species.len()).collect();
        Rng::derive(self.seed, &[3]).shuffle(&mut order);
        let mut heldout: Vec<usize> = order[..self.heldout].to_vec();
        heldout.sort_unstable();
        let heldout: Vec<String> = heldout.iter().map(|&i| species[i].id.clone()).collect();
        let training: Vec<Species> = species
            .iter()
            .filter(|s| !heldout.contains(&s.id))
            .cloned()
            .collect();
        let concepts = novel_concepts(self.seed, &training, self.concepts);
        Ok(World {
            spec: self.clone(),
            species,
            heldout,
            concepts,
        })
    }
}

/// One picture of `species`: picture `index` of stream `stream` (0: the real world's
/// pictures, 1: the novel folder's pictures of look-alike parents).
pub fn picture(spec: &WorldSpec, species: &Species, stream: u64, index: usize) -> RgbImage {
    let key = species.id.bytes().fold(0u64, |h, b| h * 131 + u64::from(b));
    let mut rng = Rng::derive(spec.seed, &[10 + stream, key, index as u64]);
    render::render(&species.look, &mut rng, spec.image_size)
}

/// Writes the world `spec` describes into `out`, calling `progress(done, total)` per picture.
pub fn generate(
    spec: &WorldSpec,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<World> {
    let world = spec.catalogue()?;
    let real = out.join("real");
    let novel = out.join("novel");
    let parents: Vec<&Species> = world
        .concepts
        .iter()
        .map(|c| world.species_by_id(&c.body_parent))
        .collect::<Result<_>>()?;
    let total = world.species.len() * spec.images_per_species
        + (world.concepts.len() + parents.len()) * spec.concept_images;
    let mut done = 0;
    let mut save = |image: RgbImage, path: PathBuf| -> Result<()> {
        std::fs::create_dir_all(path.parent().expect("a picture path has a folder"))
            .with_context(|| format!("{}: cannot create", path.display()))?;
        image
            .save(&path)
            .with_context(|| format!("{}: cannot write", path.display()))?;
        done += 1;
        progress(done, total);
        Ok(())
    };
    for species in &world.species {
        for k in 0..spec.images_per_species {
            let path = real
                .join("images")
                .join(&species.id)
                .join(format!("{}_{k}.png", species.id));
            save(picture(spec, species, 0, k), path)?;
        }
    }
    for (concept, parent) in world.concepts.iter().zip(&parents) {
        for k in 0..spec.concept_images {
            let folder = novel.join("images");
            save(
                picture(spec, &concept.species, 0, k),
                folder.join(&concept.species.id).join(format!("{k}.png")),
            )?;
            save(
                picture(spec, parent, 1, k),
                folder.join(&parent.id).join(format!("{k}.png")),
            )?;
        }
    }
    let names: String = world
        .species
        .iter()
        .map(|s| format!("{} {}\n", s.id, s.name))
        .collect();
    write(&real.join("LOC_synset_mapping.txt"), names.as_bytes())?;
    let heldout: String = world.heldout.iter().map(|id| format!("{id}\n")).collect();
    write(&real.join("heldout-classes.txt"), heldout.as_bytes())?;
    write(
        &real.join("captions.json"),
        &serde_json::to_vec_pretty(&world.captions()).context("captions.json")?,
    )?;
    let recall = recall::recall_conversations(spec.seed, recall::RECALL_CONVERSATIONS);
    std::fs::create_dir_all(out.join("text"))
        .with_context(|| format!("{}: cannot create", out.display()))?;
    write(
        &out.join("text").join("recall.json"),
        &serde_json::to_vec(&recall).context("recall.json")?,
    )?;
    crate::data::jsonl::write(&out.join("isekai-10.jsonl"), &world.look_alike_suite())?;
    crate::data::jsonl::write(&out.join("isekai-pair.jsonl"), &world.pair_suite())?;
    write(
        &out.join("world.json"),
        &serde_json::to_vec_pretty(&world).context("world.json")?,
    )?;
    sheet::contact_sheet(&world, &parents)?.save(out.join("contact-sheet.png"))?;
    Ok(world)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("{}: cannot write", path.display()))
}

impl World {
    /// A species by id.
    pub fn species_by_id(&self, id: &str) -> Result<&Species> {
        self.species
            .iter()
            .find(|s| s.id == id)
            .with_context(|| format!("no species {id} in the world"))
    }

    /// Ids of the species training may use (all but the held-out ones).
    pub fn training_ids(&self) -> Vec<&str> {
        self.species
            .iter()
            .map(|s| s.id.as_str())
            .filter(|id| !self.heldout.iter().any(|h| h == id))
            .collect()
    }

    /// Captioning conversations (LLaVA format, paths relative to `real/images`) of every
    /// picture of every training species: what the miniature's vanilla captioner learns.
    pub fn captions(&self) -> Vec<Conversation> {
        let training = self.training_ids();
        self.species
            .iter()
            .filter(|s| training.contains(&s.id.as_str()))
            .flat_map(|species| {
                (0..self.spec.images_per_species).map(move |k| Conversation {
                    id: None,
                    image: Some(format!("{0}/{0}_{k}.png", species.id)),
                    conversations: vec![
                        Turn {
                            from: "human".into(),
                            value: format!("{IMAGE_PLACEHOLDER}\nWhat is in the image?"),
                        },
                        Turn {
                            from: "gpt".into(),
                            value: query_answer(&species.name),
                        },
                    ],
                })
            })
            .collect()
    }

    fn pictures(&self, id: &str, range: std::ops::Range<usize>) -> Vec<String> {
        range
            .map(|k| format!("novel/images/{id}/{k}.png"))
            .collect()
    }

    /// ISEKAI-10 style: every query picture of a concept against its look-alike parent.
    pub fn look_alike_suite(&self) -> Vec<IsekaiEpisode> {
        let spec = &self.spec;
        let support = 0..spec.support_per_class;
        self.concepts
            .iter()
            .flat_map(|concept| {
                let parent = self
                    .species_by_id(&concept.body_parent)
                    .expect("parents come from the world");
                let support = support.clone();
                (spec.support_per_class..spec.concept_images).map(move |k| IsekaiEpisode {
                    image_name: format!("novel/images/{}/{k}.png", concept.species.id),
                    positive_list: self.pictures(&concept.species.id, support.clone()),
                    negative_list: self.pictures(&parent.id, support.clone()),
                    positive_promt: concept.species.name.clone(),
                    negative_promt: parent.name.clone(),
                    label_name: concept.species.name.clone(),
                })
            })
            .collect()
    }

    /// ISEKAI-pair style: `pair_queries` query pictures of each concept against every other
    /// concept.
    pub fn pair_suite(&self) -> Vec<IsekaiEpisode> {
        let spec = &self.spec;
        let support = 0..spec.support_per_class;
        let mut records = Vec::new();
        for (i, concept) in self.concepts.iter().enumerate() {
            for (j, other) in self.concepts.iter().enumerate() {
                if i == j {
                    continue;
                }
                for q in 0..spec.pair_queries {
                    let k = spec.support_per_class
                        + (j * spec.pair_queries + q)
                            % (spec.concept_images - spec.support_per_class);
                    records.push(IsekaiEpisode {
                        image_name: format!("novel/images/{}/{k}.png", concept.species.id),
                        positive_list: self.pictures(&concept.species.id, support.clone()),
                        negative_list: self.pictures(&other.species.id, support.clone()),
                        positive_promt: concept.species.name.clone(),
                        negative_promt: other.species.name.clone(),
                        label_name: concept.species.name.clone(),
                    });
                }
            }
        }
        records
    }
}
