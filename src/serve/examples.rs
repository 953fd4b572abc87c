//! Ready episodes for the web page when the shipped miniature is loaded: ISEKAI-10-style
//! pairs of a novel hybrid and its look-alike parent, drawn in memory from the generated
//! world's default spec (the pictures `lcl gen-world` writes), as data: URLs.

use std::io::Cursor;

use anyhow::{Context, Result};
use image::{ImageFormat, RgbImage};
use serde::Serialize;

use crate::serve::data_url;
use crate::world::{WorldSpec, picture};

/// A support shot of an example.
#[derive(Debug, Clone, Serialize)]
pub struct ExampleShot {
    /// The picture as a data: URL.
    pub image: String,
    /// Its name.
    pub name: String,
}

/// One example episode.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    /// What it shows.
    pub title: String,
    /// Support shots in prompt order.
    pub support: Vec<ExampleShot>,
    /// The query picture as a data: URL.
    pub query: String,
    /// The name the query's picture has in the world.
    pub expected: String,
}

/// Examples from the first `count` novel concepts: two pictures of the hybrid and two of
/// its parent, interleaved; the query a held-back picture of the hybrid (or, every third
/// example, of the parent).
pub fn miniature_examples(count: usize) -> Result<Vec<Example>> {
    let spec = WorldSpec::default();
    let world = spec.catalogue()?;
    let query_index = spec.support_per_class;
    world
        .concepts
        .iter()
        .take(count)
        .enumerate()
        .map(|(i, concept)| {
            let parent = world.species_by_id(&concept.body_parent)?;
            let hybrid = &concept.species;
            let mut support = Vec::new();
            for k in 0..2 {
                support.push(ExampleShot {
                    image: png_url(&picture(&spec, hybrid, 0, k))?,
                    name: hybrid.name.clone(),
                });
                support.push(ExampleShot {
                    image: png_url(&picture(&spec, parent, 1, k))?,
                    name: parent.name.clone(),
                });
            }
            let parent_query = i % 3 == 2;
            let (query, expected) = if parent_query {
                (picture(&spec, parent, 1, query_index), parent.name.clone())
            } else {
                (picture(&spec, hybrid, 0, query_index), hybrid.name.clone())
            };
            Ok(Example {
                title: format!("{} or its look-alike {}", hybrid.name, parent.name),
                support,
                query: png_url(&query)?,
                expected,
            })
        })
        .collect()
}

fn png_url(image: &RgbImage) -> Result<String> {
    let mut bytes = Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, ImageFormat::Png)
        .context("cannot encode an example picture")?;
    Ok(data_url::encode("image/png", bytes.get_ref()))
}
