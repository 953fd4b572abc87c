//! The contact sheet of a world: eight real species (a row of pictures each), then eight novel
//! concepts, each row showing two pictures of its look-alike parent, four of the concept and
//! two of the parent it takes its pattern and parts from.

use anyhow::Result;
use image::{Rgb, RgbImage};

use crate::world::species::Species;
use crate::world::{World, picture};

const COLUMNS: u32 = 8;
const GAP: u32 = 2;
const ROWS_PER_BLOCK: usize = 8;

/// The sheet of `world` (`parents[i]`: concept i's look-alike parent).
pub fn contact_sheet(world: &World, parents: &[&Species]) -> Result<RgbImage> {
    let spec = &world.spec;
    let mut rows: Vec<Vec<RgbImage>> = Vec::new();
    for species in world.species.iter().take(ROWS_PER_BLOCK) {
        rows.push(
            (0..COLUMNS as usize)
                .map(|k| picture(spec, species, 0, k))
                .collect(),
        );
    }
    let real_rows = rows.len();
    for (concept, parent) in world.concepts.iter().zip(parents).take(ROWS_PER_BLOCK) {
        let features = world.species_by_id(&concept.feature_parent)?;
        let mut row: Vec<RgbImage> = (0..2).map(|k| picture(spec, parent, 1, k)).collect();
        row.extend((0..4).map(|k| picture(spec, &concept.species, 0, k)));
        row.extend((0..2).map(|k| picture(spec, features, 0, k)));
        rows.push(row);
    }
    let cell = spec.image_size + GAP;
    let band = 3 * GAP;
    let width = COLUMNS * cell + GAP;
    let height = rows.len() as u32 * cell + GAP + band;
    let mut sheet = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    for (r, row) in rows.iter().enumerate() {
        let extra = if r >= real_rows { band } else { 0 };
        for (c, image) in row.iter().enumerate() {
            let (x, y) = (GAP + c as u32 * cell, GAP + r as u32 * cell + extra);
            image::imageops::overlay(&mut sheet, image, x.into(), y.into());
        }
    }
    let line_y = GAP + real_rows as u32 * cell + GAP / 2;
    for x in 0..width {
        for dy in 0..GAP {
            sheet.put_pixel(x, line_y + dy, Rgb([40, 40, 40]));
        }
    }
    Ok(sheet)
}
