//! The 24-hour clock of the body.
//!
//! Each rhythm is a cosine (a single-harmonic cosinor, Nelson et al., Chronobiologia 1979;6:305)
//! with its own amplitude and acrophase (time of peak), shifted by the patient's chronotype.

use std::f64::consts::TAU;

/// Seconds in a day.
pub(crate) const DAY_S: f64 = 86_400.0;

/// Clock time in hours, `[0, 24)`, of simulated time `t` for a run that began `start_clock_s`
/// seconds after midnight.
pub(crate) fn clock_hours(start_clock_s: f64, t: f64) -> f64 {
    (start_clock_s + t).rem_euclid(DAY_S) / 3600.0
}

/// `cos` of the phase relative to the acrophase: +1 at the peak, −1 twelve hours later.
pub(crate) fn cosinor(hours: f64, acrophase_h: f64) -> f64 {
    (TAU * (hours - acrophase_h) / 24.0).cos()
}

/// Acrophase of heart rate and blood pressure, hours. Resting heart rate is lowest between 03:00
/// and 07:00 (Speed et al., PLOS Digit Health 2023;2:e0000236) and blood pressure has its trough
/// in sleep; a peak in the early afternoon puts the cosine's trough at about 03:00.
pub(crate) const CARDIO_ACROPHASE_H: f64 = 15.0;

/// Acrophase of body temperature, hours: the minimum falls at 04:00–08:00 and the maximum at
/// 16:00–20:00 (Refinetti and Menaker, Physiol Behav 1992;51:613; 93,225 emergency-department
/// temperatures in Chronobiol Int 2019;36:1646 peak at 18:00–20:00 and bottom at 06:00–08:00).
pub(crate) const TEMPERATURE_ACROPHASE_H: f64 = 18.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_wraps_at_midnight() {
        assert!((clock_hours(8.0 * 3600.0, 0.0) - 8.0).abs() < 1e-12);
        assert!((clock_hours(23.0 * 3600.0, 2.0 * 3600.0) - 1.0).abs() < 1e-12);
        assert!((cosinor(15.0, 15.0) - 1.0).abs() < 1e-12);
        assert!((cosinor(3.0, 15.0) + 1.0).abs() < 1e-12);
    }
}
