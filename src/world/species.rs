//! Creatures of the generated worlds: each a composition of visual attributes (body shape,
//! colour, pattern, parts), with a pronounceable invented name. Novel concepts are hybrids of
//! two real species (A's body and colour, B's pattern and parts), named by a blend of theirs
//! as "cactihog" blends cactus and hedgehog.

use std::collections::HashSet;

use lcl_model::rng::Rng;
use serde::{Deserialize, Serialize};

/// Body outlines.
pub const SHAPES: [&str; 7] = [
    "round", "wide", "tall", "square", "triangle", "diamond", "hexagon",
];

/// Body colours (RGB).
pub const COLOURS: [[u8; 3]; 10] = [
    [214, 48, 49],
    [240, 140, 30],
    [235, 205, 40],
    [60, 170, 70],
    [30, 160, 160],
    [50, 90, 210],
    [130, 70, 190],
    [230, 110, 170],
    [130, 85, 50],
    [120, 120, 120],
];

/// Surface patterns.
pub const PATTERNS: [&str; 5] = ["plain", "stripes", "dots", "checker", "rings"];

/// The attributes a creature is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Look {
    /// Index into [`SHAPES`].
    pub shape: u8,
    /// Index into [`COLOURS`].
    pub colour: u8,
    /// Index into [`PATTERNS`].
    pub pattern: u8,
    /// Horns on top: 0, 1 or 2.
    pub horns: u8,
    /// Wings on the sides.
    pub wings: bool,
    /// Legs below: 0, 2 or 4.
    pub legs: u8,
    /// Eyes: 1 or 2.
    pub eyes: u8,
}

impl Look {
    /// A random look.
    pub fn random(rng: &mut Rng) -> Self {
        Self {
            shape: rng.below(SHAPES.len()) as u8,
            colour: rng.below(COLOURS.len()) as u8,
            pattern: rng.below(PATTERNS.len()) as u8,
            horns: rng.below(3) as u8,
            wings: rng.below(2) == 1,
            legs: [0, 2, 4][rng.below(3)],
            eyes: 1 + rng.below(2) as u8,
        }
    }

    /// `body`'s shape and colour with `features`' pattern and parts.
    pub fn hybrid(body: &Look, features: &Look) -> Self {
        Self {
            shape: body.shape,
            colour: body.colour,
            ..*features
        }
    }

    /// The parts and pattern (everything but the body's shape and colour).
    fn features(&self) -> (u8, u8, bool, u8, u8) {
        (self.pattern, self.horns, self.wings, self.legs, self.eyes)
    }
}

/// A species of either world.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Species {
    /// Folder name (`r0007`, `n012`).
    pub id: String,
    /// Lower-case invented name.
    pub name: String,
    /// The name's syllables (hybrids blend them).
    pub syllables: Vec<String>,
    /// What it looks like.
    pub look: Look,
}

/// A novel concept: a hybrid, and the parent it is paired with as the hard negative.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concept {
    /// The hybrid.
    pub species: Species,
    /// Id of the parent whose body it has (its look-alike, the hard negative).
    pub body_parent: String,
    /// Id of the parent whose pattern and parts it has.
    pub feature_parent: String,
}

const ONSETS: [&str; 16] = [
    "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "tr",
];
const VOWELS: [&str; 6] = ["a", "e", "i", "o", "u", "y"];
const CODAS: [&str; 6] = ["", "", "n", "r", "l", "k"];

/// A pronounceable name of 2 or 3 syllables.
fn invented_name(rng: &mut Rng) -> Vec<String> {
    let syllables = 2 + rng.below(2);
    (0..syllables)
        .map(|_| {
            format!(
                "{}{}{}",
                ONSETS[rng.below(ONSETS.len())],
                VOWELS[rng.below(VOWELS.len())],
                CODAS[rng.below(CODAS.len())]
            )
        })
        .collect()
}

/// `count` real species with distinct looks and names.
pub fn real_species(seed: u64, count: usize) -> Vec<Species> {
    let mut rng = Rng::derive(seed, &[1]);
    let (mut looks, mut names) = (HashSet::new(), HashSet::new());
    let mut species = Vec::with_capacity(count);
    while species.len() < count {
        let look = Look::random(&mut rng);
        let syllables = invented_name(&mut rng);
        let name = syllables.concat();
        if looks.contains(&look) || names.contains(&name) {
            continue;
        }
        looks.insert(look);
        names.insert(name.clone());
        species.push(Species {
            id: format!("r{:04}", species.len() + 1),
            name,
            syllables,
            look,
        });
    }
    species
}

/// `count` novel concepts over `real`: each takes one species' body and colour and another's
/// pattern and parts (they differ in both pattern and parts), a look no real species has, and
/// a blend of the two names that no real species has.
pub fn novel_concepts(seed: u64, real: &[Species], count: usize) -> Vec<Concept> {
    let mut rng = Rng::derive(seed, &[2]);
    let real_looks: HashSet<Look> = real.iter().map(|s| s.look).collect();
    let mut names: HashSet<String> = real.iter().map(|s| s.name.clone()).collect();
    let mut used_parents = HashSet::new();
    let mut concepts = Vec::with_capacity(count);
    while concepts.len() < count {
        let (a, b) = (&real[rng.below(real.len())], &real[rng.below(real.len())]);
        let (fa, fb) = (a.look.features(), b.look.features());
        let differs = fa.0 != fb.0 && (fa.1, fa.2, fa.3, fa.4) != (fb.1, fb.2, fb.3, fb.4);
        if !differs || used_parents.contains(&a.id) {
            continue;
        }
        let look = Look::hybrid(&a.look, &b.look);
        let syllables = blend(&a.syllables, &b.syllables);
        let name = syllables.concat();
        if real_looks.contains(&look) || names.contains(&name) || name.len() < 4 {
            continue;
        }
        used_parents.insert(a.id.clone());
        names.insert(name.clone());
        concepts.push(Concept {
            species: Species {
                id: format!("n{:03}", concepts.len() + 1),
                name,
                syllables,
                look,
            },
            body_parent: a.id.clone(),
            feature_parent: b.id.clone(),
        });
    }
    concepts
}

/// The first half of `a`'s syllables and the second half of `b`'s ("cac-tus" +
/// "hed-ge-hog" -> "cac-ge-hog").
fn blend(a: &[String], b: &[String]) -> Vec<String> {
    let head = &a[..a.len().div_ceil(2)];
    let tail = &b[b.len() / 2..];
    head.iter().chain(tail).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blends_take_the_head_of_one_name_and_the_tail_of_the_other() {
        let words = |w: &str| -> Vec<String> { w.split('-').map(String::from).collect() };
        assert_eq!(
            blend(&words("cac-tus"), &words("hed-ge-hog")).concat(),
            "cacgehog"
        );
        assert_eq!(blend(&words("ta-vo"), &words("ki-bu")).concat(), "tabu");
    }

    #[test]
    fn species_and_concepts_are_distinct_and_reproducible() {
        let real = real_species(5, 200);
        assert_eq!(real, real_species(5, 200));
        assert_ne!(real, real_species(6, 200));
        let looks: HashSet<Look> = real.iter().map(|s| s.look).collect();
        assert_eq!(looks.len(), 200);
        let concepts = novel_concepts(5, &real, 20);
        for concept in &concepts {
            assert!(!looks.contains(&concept.species.look));
            assert_ne!(concept.body_parent, concept.feature_parent);
        }
    }
}
