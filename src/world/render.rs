//! Draws one picture of a creature: a light background with clutter, then the creature's
//! wings, legs, patterned body, horns and eyes at a random position, scale and rotation, with
//! jittered colours. Every pixel averages 2x2 samples.

use image::{Rgb, RgbImage};
use lcl_model::rng::Rng;

use crate::world::species::{COLOURS, Look};

type Colour = [f32; 3];

/// A filled primitive in some coordinate frame.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// Centre, radii.
    Ellipse { c: (f32, f32), r: (f32, f32) },
    /// Axis-aligned box: min and max corners.
    Rect { min: (f32, f32), max: (f32, f32) },
    /// Triangle.
    Triangle([(f32, f32); 3]),
    /// A segment of half-width `w`.
    Line {
        a: (f32, f32),
        b: (f32, f32),
        w: f32,
    },
}

impl Shape {
    fn contains(&self, (x, y): (f32, f32)) -> bool {
        match *self {
            Shape::Ellipse { c, r } => {
                let (dx, dy) = ((x - c.0) / r.0, (y - c.1) / r.1);
                dx * dx + dy * dy <= 1.0
            }
            Shape::Rect { min, max } => x >= min.0 && x <= max.0 && y >= min.1 && y <= max.1,
            Shape::Triangle([a, b, c]) => {
                let side = |p: (f32, f32), q: (f32, f32)| {
                    (q.0 - p.0) * (y - p.1) - (q.1 - p.1) * (x - p.0)
                };
                let (s1, s2, s3) = (side(a, b), side(b, c), side(c, a));
                (s1 >= 0.0 && s2 >= 0.0 && s3 >= 0.0) || (s1 <= 0.0 && s2 <= 0.0 && s3 <= 0.0)
            }
            Shape::Line { a, b, w } => {
                let (vx, vy) = (b.0 - a.0, b.1 - a.1);
                let t = (((x - a.0) * vx + (y - a.1) * vy) / (vx * vx + vy * vy).max(1e-6))
                    .clamp(0.0, 1.0);
                let (dx, dy) = (x - a.0 - t * vx, y - a.1 - t * vy);
                dx * dx + dy * dy <= w * w
            }
        }
    }
}

/// Whether local point `p` is inside body outline `shape` (about unit radius).
fn in_body(shape: u8, (u, v): (f32, f32)) -> bool {
    match shape {
        0 => u * u + v * v <= 1.0,
        1 => (u / 1.15).powi(2) + (v / 0.7).powi(2) <= 1.0,
        2 => (u / 0.7).powi(2) + (v / 1.1).powi(2) <= 1.0,
        3 => u.abs() <= 0.85 && v.abs() <= 0.85,
        4 => (-1.0..=0.8).contains(&v) && u.abs() <= (v + 1.0) / 1.8 * 1.1,
        5 => u.abs() + v.abs() <= 1.05,
        _ => v.abs() <= 0.87 && u.abs() * 0.87 + v.abs() * 0.5 <= 0.87,
    }
}

/// The body's colour at local point `p` under `pattern`.
fn body_colour(pattern: u8, base: Colour, (u, v): (f32, f32)) -> Colour {
    let accent = base.map(|c| c * 0.42);
    let marked = match pattern {
        1 => ((u + 2.0) * 3.0).floor() as i32 % 2 == 0,
        2 => {
            let (fu, fv) = ((u * 2.0 + 8.0).fract() - 0.5, (v * 2.0 + 8.0).fract() - 0.5);
            fu * fu + fv * fv < 0.09
        }
        3 => (((u + 2.0) * 2.5).floor() as i32 + ((v + 2.0) * 2.5).floor() as i32) % 2 == 0,
        4 => ((u * u + v * v).sqrt() * 4.0).floor() as i32 % 2 == 1,
        _ => false,
    };
    let shade = 1.0 - 0.12 * v;
    if marked {
        accent
    } else {
        base.map(|c| (c * shade).min(255.0))
    }
}

/// One picture of `look`, `size` pixels square.
pub fn render(look: &Look, rng: &mut Rng, size: u32) -> RgbImage {
    let s = size as f32;
    let jitter = |rng: &mut Rng, c: f32, amount: f32| {
        (c + (rng.unit() as f32 * 2.0 - 1.0) * amount).clamp(0.0, 255.0)
    };
    let background: Colour = {
        let grey = 200.0 + rng.unit() as f32 * 45.0;
        [0, 1, 2].map(|_| jitter(rng, grey, 12.0))
    };
    let mut clutter: Vec<(Shape, Colour)> = Vec::new();
    for _ in 0..4 + rng.below(4) {
        let colour: Colour = [0, 1, 2].map(|_| 120.0 + rng.unit() as f32 * 110.0);
        let at = (rng.unit() as f32 * s, rng.unit() as f32 * s);
        let shape = if rng.below(2) == 0 {
            let to = (rng.unit() as f32 * s, rng.unit() as f32 * s);
            Shape::Line {
                a: at,
                b: to,
                w: 0.4 + rng.unit() as f32 * 0.8,
            }
        } else {
            let r = s * (0.02 + rng.unit() as f32 * 0.05);
            Shape::Ellipse { c: at, r: (r, r) }
        };
        clutter.push((shape, colour));
    }

    let base = COLOURS[look.colour as usize].map(|c| jitter(rng, c as f32, 18.0));
    let radius = s * (0.16 + rng.unit() as f32 * 0.07);
    let centre = (
        s * (0.36 + rng.unit() as f32 * 0.28),
        s * (0.38 + rng.unit() as f32 * 0.24),
    );
    let angle = (rng.unit() as f32 * 2.0 - 1.0) * 0.45;
    let mirror = if rng.below(2) == 0 { 1.0 } else { -1.0 };
    let (behind, front) = parts(look, base);

    let (cos, sin) = (angle.cos(), angle.sin());
    let to_local = |x: f32, y: f32| {
        let (dx, dy) = ((x - centre.0) / radius, (y - centre.1) / radius);
        (mirror * (cos * dx + sin * dy), -sin * dx + cos * dy)
    };
    let sample = |x: f32, y: f32| -> Colour {
        let local = to_local(x, y);
        let mut colour = background;
        for (shape, c) in &clutter {
            if shape.contains((x, y)) {
                colour = *c;
            }
        }
        for (shape, c) in &behind {
            if shape.contains(local) {
                colour = *c;
            }
        }
        if in_body(look.shape, local) {
            colour = body_colour(look.pattern, base, local);
        }
        for (shape, c) in &front {
            if shape.contains(local) {
                colour = *c;
            }
        }
        colour
    };
    RgbImage::from_fn(size, size, |px, py| {
        let mut sum = [0.0f32; 3];
        for (ox, oy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
            let c = sample(px as f32 + ox, py as f32 + oy);
            (0..3).for_each(|i| sum[i] += c[i]);
        }
        Rgb(sum.map(|c| (c / 4.0).round().clamp(0.0, 255.0) as u8))
    })
}

/// The creature's parts in local coordinates: wings and legs (behind the body), and horns
/// and eyes (in front of it).
type Layer = Vec<(Shape, Colour)>;

fn parts(look: &Look, base: Colour) -> (Layer, Layer) {
    let mut behind = Vec::new();
    if look.wings {
        let light = base.map(|c| c * 0.5 + 127.0);
        for side in [-1.0, 1.0] {
            behind.push((
                Shape::Ellipse {
                    c: (side * 1.05, -0.25),
                    r: (0.6, 0.32),
                },
                light,
            ));
        }
    }
    let legs: &[f32] = match look.legs {
        2 => &[-0.4, 0.4],
        4 => &[-0.68, -0.25, 0.25, 0.68],
        _ => &[],
    };
    for &u in legs {
        behind.push((
            Shape::Rect {
                min: (u - 0.09, 0.5),
                max: (u + 0.09, 1.4),
            },
            [60.0, 55.0, 50.0],
        ));
    }
    let mut front = Vec::new();
    let horns: &[f32] = match look.horns {
        1 => &[0.0],
        2 => &[-0.42, 0.42],
        _ => &[],
    };
    for &u in horns {
        front.push((
            Shape::Triangle([(u - 0.17, -0.7), (u + 0.17, -0.7), (u, -1.5)]),
            [238.0, 228.0, 200.0],
        ));
    }
    let eyes: &[f32] = if look.eyes == 1 { &[0.0] } else { &[-0.3, 0.3] };
    for &u in eyes {
        front.push((
            Shape::Ellipse {
                c: (u, -0.3),
                r: (0.19, 0.19),
            },
            [250.0, 250.0, 250.0],
        ));
        front.push((
            Shape::Ellipse {
                c: (u, -0.3),
                r: (0.09, 0.09),
            },
            [15.0, 15.0, 15.0],
        ));
    }
    (behind, front)
}
