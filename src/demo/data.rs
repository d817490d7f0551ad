//! Data sets for the classifier examples: a synthetic one generated the way scikit-learn's
//! `make_classification` does (seeded), and the UCI digits kept in `data/` (CC BY 4.0).

use std::io::Read;

use ndarray::{Array1, Array2, Axis};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use crate::error::{Error, Result};

/// Features (a row per sample) and class labels.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Its name, for titles.
    pub name: String,
    /// Features, one row per sample.
    pub x: Array2<f32>,
    /// Labels in `0..classes`.
    pub y: Vec<usize>,
    /// Number of classes.
    pub classes: usize,
}

impl Dataset {
    /// Splits off the last `test_fraction` of a seeded shuffle as a test set, and standardizes
    /// both with the training set's per-feature mean and standard deviation.
    pub fn split(&self, test_fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let mut order: Vec<usize> = (0..self.y.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        let n_test = ((self.y.len() as f64) * test_fraction).round() as usize;
        let (test, train) = order.split_at(n_test);
        let take = |idx: &[usize], name: &str| Dataset {
            name: format!("{} ({name})", self.name),
            x: self.x.select(Axis(0), idx),
            y: idx.iter().map(|&i| self.y[i]).collect(),
            classes: self.classes,
        };
        let (mut train, mut test) = (take(train, "train"), take(test, "test"));
        let mean = train
            .x
            .mean_axis(Axis(0))
            .unwrap_or_else(|| Array1::zeros(train.x.ncols()));
        let std = train
            .x
            .std_axis(Axis(0), 0.0)
            .mapv(|s| if s > 1e-6 { s } else { 1.0 });
        for d in [&mut train, &mut test] {
            d.x = (&d.x - &mean) / &std;
        }
        (train, test)
    }
}

/// A random classification problem as scikit-learn's `make_classification` builds it: for each
/// of `classes × clusters_per_class` clusters, normally distributed points around a vertex of a
/// hypercube of side 2·`class_sep` in the `informative` dimensions, with a random covariance;
/// then `redundant` features that are random linear combinations of the informative ones, the
/// remaining features pure noise, and a fraction `flip_y` of labels set at random.
#[allow(clippy::too_many_arguments)]
pub fn make_classification(
    samples: usize,
    features: usize,
    informative: usize,
    redundant: usize,
    classes: usize,
    clusters_per_class: usize,
    class_sep: f64,
    flip_y: f64,
    seed: u64,
) -> Result<Dataset> {
    let clusters = classes * clusters_per_class;
    if informative + redundant > features
        || classes < 2
        || clusters > (1usize << informative.min(30))
        || samples < clusters
    {
        return Err(Error::Argument(format!(
            "make_classification: needs informative + redundant <= features, 2 <= classes, \
             classes x clusters <= 2^informative and samples >= clusters (got {informative}+{redundant} of {features}, \
             {classes} classes x {clusters_per_class})"
        )));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    // Distinct hypercube vertices as centroids, scaled to ±class_sep.
    let mut vertices: Vec<usize> = (0..1usize << informative.min(20)).collect();
    vertices.shuffle(&mut rng);
    let centroids: Vec<Vec<f64>> = vertices[..clusters]
        .iter()
        .map(|&v| {
            (0..informative)
                .map(|d| {
                    if v >> d & 1 == 1 {
                        class_sep
                    } else {
                        -class_sep
                    }
                })
                .collect()
        })
        .collect();
    let normal = |rng: &mut StdRng| -> f64 { rng.sample(StandardNormal) };
    let mut x = Array2::<f32>::zeros((samples, features));
    let mut y = vec![0usize; samples];
    let mut start = 0;
    for (k, centroid) in centroids.iter().enumerate() {
        let n = samples / clusters + usize::from(k < samples % clusters);
        let a: Vec<f64> = (0..informative * informative)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        for i in start..start + n {
            let z: Vec<f64> = (0..informative).map(|_| normal(&mut rng)).collect();
            for d in 0..informative {
                let v: f64 = (0..informative)
                    .map(|e| z[e] * a[e * informative + d])
                    .sum();
                x[[i, d]] = (v + centroid[d]) as f32;
            }
            y[i] = k % classes;
        }
        start += n;
    }
    let b: Vec<f64> = (0..informative * redundant)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    for i in 0..samples {
        for r in 0..redundant {
            let v: f64 = (0..informative)
                .map(|d| f64::from(x[[i, d]]) * b[d * redundant + r])
                .sum();
            x[[i, informative + r]] = v as f32;
        }
        for f in informative + redundant..features {
            x[[i, f]] = normal(&mut rng) as f32;
        }
        if rng.random::<f64>() < flip_y {
            y[i] = rng.random_range(0..classes);
        }
    }
    Ok(Dataset {
        name: format!("synthetic {samples}x{features}"),
        x,
        y,
        classes,
    })
}

static DIGITS: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// The UCI optical-recognition digits: 1,797 images of 8×8 pixels, 10 classes (data/README.md).
pub fn digits() -> Result<Dataset> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS)
        .read_to_string(&mut text)
        .map_err(|e| Error::Argument(format!("data/digits.csv.gz: {e}")))?;
    let rows: Vec<Vec<f32>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split(',')
                .map(|v| v.trim().parse::<f32>())
                .collect::<std::result::Result<Vec<f32>, _>>()
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Argument(format!("data/digits.csv.gz: {e}")))?;
    if rows.iter().any(|r| r.len() != 65) {
        return Err(Error::Argument(
            "data/digits.csv.gz: rows must have 64 pixels and a label".into(),
        ));
    }
    let x = Array2::from_shape_fn((rows.len(), 64), |(i, j)| rows[i][j]);
    let y = rows.iter().map(|r| r[64] as usize).collect();
    Ok(Dataset {
        name: "UCI digits".into(),
        x,
        y,
        classes: 10,
    })
}
