//! Half-Space Trees (Tan, Ting and Liu, "Fast Anomaly Detection for Streaming Data", IJCAI
//! 2011): an ensemble of random binary trees over the unit cube of features, each node splitting
//! one dimension of its parent's cell, and per node the *mass* of points that fell in it. One
//! departure from the paper: a node splits its cell at a random point of its middle half, not
//! at the middle of a randomly widened work space, so that at our shallow depth every split
//! falls where the features are (with the paper's work space, a monitor's message of another
//! shape entirely was novel in a third of the trees).
//!
//! The trees' structure does not depend on the data: it is drawn once from a seed, so it is
//! shared by every model of a kind ([`Forest`], per device class and one for patients) and a
//! model ([`Masses`]) is only its counters: two profiles per node, the reference (the previous
//! window of [`WINDOW`] points) and the latest (the window being filled). When the latest
//! window is full it becomes the reference and a new one starts: the model follows slow drift
//! with a lag of one or two windows, in constant memory and constant time per point, with no
//! training phase beyond the first window.
//!
//! Scoring follows the paper: a point descends each tree until it reaches a leaf or a node
//! whose reference mass is under [`SIZE_LIMIT`]; that node's mass times 2^depth estimates how
//! dense the reference was where the point is. Vigil turns it into a vote: the fraction of trees
//! in which that density is under an eighth of a uniform spread ([`NOVEL_DENSITY`]), that is,
//! the point fell where the device's (or patient's) last window almost never went. A fraction
//! in `[0, 1]` has the same meaning for every model, so one threshold serves all of them.
//!
//! Parameters: [`TREES`] = 16 and [`DEPTH`] = 5 (the paper uses 25 trees of depth 15 on
//! problems of up to 41 dimensions; ours have at most 19 and must fit 10,000 devices in a few
//! tens of megabytes, and the depth actually used is bounded by the size limit anyway: a window
//! of 250 points is spent after a few levels unless it is concentrated; depth 6 doubled the
//! memory and detected less); [`WINDOW`] = 250 and the size limit of a tenth of it, as in the
//! paper. Counters are `u8`: a window never holds more than 250.

/// Trees in a forest.
pub const TREES: usize = 16;
/// Depth of each tree (a root at depth 0, leaves at [`DEPTH`]).
pub const DEPTH: usize = 5;
/// Points in a window (reference or latest).
pub const WINDOW: u8 = 250;
/// A node whose reference mass is under this is where a point stops descending.
pub const SIZE_LIMIT: u8 = WINDOW / 10;
/// A point is novel in a tree where its node's mass times 2^depth is under this fraction of
/// the window (the mass of a uniform spread).
pub const NOVEL_DENSITY: f32 = 0.125;

/// Nodes of one tree.
pub const NODES: usize = (1 << (DEPTH + 1)) - 1;
/// Internal nodes of one tree (those with a split).
const INTERNAL: usize = (1 << DEPTH) - 1;

/// SplitMix64 (Steele, Lea and Flood, OOPSLA 2014): a few lines, a fixed stream per seed, so
/// the same seed always draws the same trees.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, from the top 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        // 53 bits convert to f64 exactly.
        #[allow(clippy::cast_precision_loss)]
        let bits = (self.next_u64() >> 11) as f64;
        bits / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is below 2^-50 for the small n used here).
    pub fn below(&mut self, n: usize) -> usize {
        let n = n.max(1) as u64;
        // Less than n, which is a usize.
        #[allow(clippy::cast_possible_truncation)]
        let index = (self.next_u64() % n) as usize;
        index
    }
}

/// One tree's splits, breadth first: node `i` has children `2i + 1` and `2i + 2`.
#[derive(Debug, Clone)]
struct Tree {
    dimension: [u8; INTERNAL],
    split: [f32; INTERNAL],
}

/// The structure of a forest over `dimensions` features, drawn from a seed.
#[derive(Debug, Clone)]
pub struct Forest {
    dimensions: usize,
    trees: Vec<Tree>,
}

impl Forest {
    /// A forest over `dimensions` features (at most 255) in `[0, 1]`, drawn from `seed`.
    pub fn new(dimensions: usize, seed: u64) -> Forest {
        let dimensions = dimensions.clamp(1, usize::from(u8::MAX));
        let mut rng = SplitMix64::new(seed);
        let trees = (0..TREES)
            .map(|_| {
                // Every cell starts as the unit cube, where the features live. (The paper's
                // work space, a random range up to twice as wide, put most splits outside the
                // data at this depth: a forged message was novel in a third of the trees.)
                let mut low = vec![0.0f64; dimensions];
                let mut high = vec![1.0f64; dimensions];
                let mut tree = Tree {
                    dimension: [0; INTERNAL],
                    split: [0.0; INTERNAL],
                };
                build(&mut tree, 0, &mut low, &mut high, &mut rng);
                tree
            })
            .collect();
        Forest { dimensions, trees }
    }

    /// Features a point of this forest has.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// Scores `point` against `masses`' reference, then counts it in their latest window.
    ///
    /// Returns the fraction of trees in which the point is novel (see the module), and per
    /// dimension the trees in which it is novel and the last split on its way was on that
    /// dimension (what set it apart), added to `blame`.
    pub fn score_and_learn(&self, masses: &mut Masses, point: &[f32], blame: &mut [u16]) -> f32 {
        let mut novel = 0u32;
        for (t, tree) in self.trees.iter().enumerate() {
            let base = t * NODES;
            let mut node = 0usize;
            let mut depth = 0usize;
            let mut last_dimension = None;
            let mut scored = false;
            loop {
                let reference = masses.reference[base + node];
                let latest = &mut masses.latest[base + node];
                *latest = latest.saturating_add(1);
                if !scored && masses.ready && (depth == DEPTH || reference < SIZE_LIMIT) {
                    scored = true;
                    let density = f32::from(reference) * f32::from(1u16 << depth);
                    if density < NOVEL_DENSITY * f32::from(WINDOW) {
                        novel += 1;
                        if let Some(d) = last_dimension
                            && let Some(count) = blame.get_mut::<usize>(d)
                        {
                            *count = count.saturating_add(1);
                        }
                    }
                }
                if depth == DEPTH {
                    break;
                }
                let dimension = usize::from(tree.dimension[node]);
                let value = point.get(dimension).copied().unwrap_or(0.0);
                node = if value < tree.split[node] {
                    2 * node + 1
                } else {
                    2 * node + 2
                };
                last_dimension = Some(dimension);
                depth += 1;
            }
        }
        masses.count += 1;
        if masses.count == WINDOW {
            masses.reference.copy_from_slice(&masses.latest[..]);
            masses.latest.fill(0);
            masses.count = 0;
            masses.ready = true;
        }
        // At most TREES, exactly representable.
        #[allow(clippy::cast_precision_loss)]
        let fraction = novel as f32 / TREES as f32;
        fraction
    }
}

/// Splits node `node`'s cell `[low, high)` on a random dimension at its middle, and recurses.
fn build(tree: &mut Tree, node: usize, low: &mut [f64], high: &mut [f64], rng: &mut SplitMix64) {
    if node >= INTERNAL {
        return;
    }
    let d = rng.below(low.len());
    // Within the middle half of the cell, at random, so that no two trees split alike.
    let middle = low[d] + (high[d] - low[d]) * (0.25 + 0.5 * rng.next_f64());
    // Below 255 dimensions (Forest::new), so the cast is exact.
    #[allow(clippy::cast_possible_truncation)]
    {
        tree.dimension[node] = d as u8;
        tree.split[node] = middle as f32;
    }
    let saved = high[d];
    high[d] = middle;
    build(tree, 2 * node + 1, low, high, rng);
    high[d] = saved;
    let saved = low[d];
    low[d] = middle;
    build(tree, 2 * node + 2, low, high, rng);
    low[d] = saved;
}

/// One model's mass profiles over a [`Forest`]: `2 × TREES × NODES` bytes.
#[derive(Clone)]
pub struct Masses {
    reference: Box<[u8; TREES * NODES]>,
    latest: Box<[u8; TREES * NODES]>,
    /// Points in the latest window.
    count: u8,
    /// Whether a reference window exists (the model has warmed up).
    ready: bool,
}

impl std::fmt::Debug for Masses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masses")
            .field("count", &self.count)
            .field("ready", &self.ready)
            .finish_non_exhaustive()
    }
}

impl Default for Masses {
    fn default() -> Masses {
        Masses {
            reference: Box::new([0; TREES * NODES]),
            latest: Box::new([0; TREES * NODES]),
            count: 0,
            ready: false,
        }
    }
}

impl Masses {
    /// Whether a full reference window exists, so that scores mean something.
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// Bytes of counters per model.
    pub const BYTES: usize = 2 * TREES * NODES;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn learn(forest: &Forest, masses: &mut Masses, rng: &mut SplitMix64, centre: f32, n: usize) {
        let mut blame = vec![0u16; forest.dimensions()];
        for _ in 0..n {
            let point: Vec<f32> = (0..forest.dimensions())
                .map(|_| centre + 0.05 * (rng.next_f64() as f32 - 0.5))
                .collect();
            forest.score_and_learn(masses, &point, &mut blame);
        }
    }

    #[test]
    fn points_where_the_window_was_are_normal_points_elsewhere_novel() {
        let forest = Forest::new(2, 7);
        let mut masses = Masses::default();
        let mut rng = SplitMix64::new(1);
        learn(&forest, &mut masses, &mut rng, 0.3, 2 * usize::from(WINDOW));
        assert!(masses.ready());
        let mut blame = vec![0u16; 2];
        let normal = forest.score_and_learn(&mut masses, &[0.3, 0.3], &mut blame);
        assert!(normal < 0.2, "{normal}");
        assert_eq!(blame, [0, 0]);
        let away = forest.score_and_learn(&mut masses, &[0.3, 0.9], &mut blame);
        assert!(away > 0.65, "{away}");
        // What set it apart: the second dimension, in every tree where it was novel.
        assert_eq!(blame[0], 0, "{blame:?}");
        assert!(blame[1] > 10, "{blame:?}");
        // With more dimensions, a change in one of them is novel in fewer trees (the trees
        // split each dimension less often): the reason the patient model has two.
        let forest = Forest::new(8, 7);
        let mut masses = Masses::default();
        learn(&forest, &mut masses, &mut rng, 0.3, 2 * usize::from(WINDOW));
        let mut blame = vec![0u16; 8];
        let mut point = [0.3f32; 8];
        point[5] = 0.9;
        let diluted = forest.score_and_learn(&mut masses, &point, &mut blame);
        assert!(diluted < away, "{diluted}");
    }

    #[test]
    fn nothing_is_scored_before_the_first_window() {
        let forest = Forest::new(2, 7);
        let mut masses = Masses::default();
        let mut blame = vec![0u16; 2];
        for _ in 0..(WINDOW - 1) {
            assert_eq!(
                forest.score_and_learn(&mut masses, &[0.9, 0.1], &mut blame),
                0.0
            );
        }
        assert!(!masses.ready());
        forest.score_and_learn(&mut masses, &[0.9, 0.1], &mut blame);
        assert!(masses.ready());
    }

    #[test]
    fn the_model_follows_a_lasting_change_within_two_windows() {
        let forest = Forest::new(3, 9);
        let mut masses = Masses::default();
        let mut rng = SplitMix64::new(2);
        learn(&forest, &mut masses, &mut rng, 0.2, 2 * usize::from(WINDOW));
        learn(&forest, &mut masses, &mut rng, 0.7, 2 * usize::from(WINDOW));
        let mut blame = vec![0u16; 3];
        assert!(forest.score_and_learn(&mut masses, &[0.7, 0.7, 0.7], &mut blame) < 0.2);
    }

    #[test]
    fn the_same_seed_draws_the_same_trees() {
        let (a, b, c) = (Forest::new(5, 42), Forest::new(5, 42), Forest::new(5, 43));
        assert_eq!(a.trees[3].split, b.trees[3].split);
        assert_eq!(a.trees[3].dimension, b.trees[3].dimension);
        assert_ne!(a.trees[3].split, c.trees[3].split);
        // Every dimension is used somewhere.
        let used: std::collections::HashSet<u8> =
            a.trees.iter().flat_map(|t| t.dimension).collect();
        assert_eq!(used.len(), 5);
    }

    #[test]
    fn counters_stay_within_a_byte() {
        let forest = Forest::new(1, 1);
        let mut masses = Masses::default();
        let mut blame = vec![0u16; 1];
        for _ in 0..(5 * usize::from(WINDOW)) {
            forest.score_and_learn(&mut masses, &[0.5], &mut blame);
        }
        assert_eq!(masses.reference[0], WINDOW);
        assert_eq!(Masses::BYTES, 2016);
    }
}
