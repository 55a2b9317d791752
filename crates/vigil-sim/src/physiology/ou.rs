//! Ornstein–Uhlenbeck processes: the mean-reverting random variation of a physiological signal.
//!
//! `dx = −x/τ dt + σ √(2/τ) dW` wanders around 0 with stationary standard deviation `σ` and
//! forgets its past over `τ`. It is stepped with the exact solution
//! `x' = x·e^(−dt/τ) + σ·√(1 − e^(−2dt/τ))·z`, so any step length is stable and a run stepped at
//! 1 s and one stepped at 60 s have the same statistics.

use crate::rng::SimRng;

/// One Ornstein–Uhlenbeck process.
#[derive(Debug, Clone)]
pub(crate) struct Ou {
    value: f64,
    tau: f64,
    sigma: f64,
    /// The decay and noise factors of the last step length; a ward steps at a constant `dt`, so
    /// the exponential and root are computed once.
    cached_dt: f64,
    decay: f64,
    noise: f64,
}

impl Ou {
    /// A process with time constant `tau_s` seconds and stationary standard deviation `sigma`,
    /// started from its stationary distribution so that no warm-up is needed.
    pub(crate) fn new(tau_s: f64, sigma: f64, rng: &mut SimRng) -> Self {
        Self {
            value: sigma * rng.normal(),
            tau: tau_s,
            sigma,
            cached_dt: f64::NAN,
            decay: 1.0,
            noise: 0.0,
        }
    }

    /// Advances by `dt` seconds with the standard normal draw `z`.
    pub(crate) fn step(&mut self, dt: f64, z: f64) {
        if dt != self.cached_dt {
            self.cached_dt = dt;
            self.decay = (-dt / self.tau).exp();
            self.noise = self.sigma * (1.0 - self.decay * self.decay).max(0.0).sqrt();
        }
        self.value = self.value * self.decay + self.noise * z;
    }

    /// Advances by `dt` seconds, drawing from `rng`.
    pub(crate) fn advance(&mut self, dt: f64, rng: &mut SimRng) {
        let z = rng.normal();
        self.step(dt, z);
    }

    /// The current value.
    pub(crate) fn value(&self) -> f64 {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_its_stationary_spread_whatever_the_step() {
        for dt in [1.0, 30.0, 600.0] {
            let mut rng = SimRng::derive(1, "ou", &[]);
            let mut ou = Ou::new(300.0, 2.0, &mut rng);
            let n = 100_000;
            let mut sum_sq = 0.0;
            for _ in 0..n {
                ou.advance(dt, &mut rng);
                sum_sq += ou.value() * ou.value();
            }
            let sd = (sum_sq / f64::from(n)).sqrt();
            assert!((sd - 2.0).abs() < 0.15, "dt {dt}: sd {sd}");
        }
    }
}
