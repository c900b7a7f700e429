//! Random faults of the SCIM simulator: a share of requests answered 503 (`error_rate`), a
//! share answered 429 with a `Retry-After` (`throttle_rate`), and optionally a burst after
//! each drawn 429 during which every request to that org is answered 429
//! (`throttle_burst`), as a Webex under load would.
//!
//! The draws come from a seeded generator per org (seeded with [`Faults::seed`] and the org's
//! position among the orgs added), so a simulator given the same requests in the same order
//! answers them alike; with concurrent clients the order of requests, hence which request
//! draws which number, still varies from run to run. The faults can be changed at run time
//! ([`super::ScimSim::set_faults`]): every org then starts over from its seed.
//!
//! A random 429 counts in `throttled` (and `errors_4xx`) like the token bucket's, a random
//! 503 in `errors_5xx` like `fail_every`'s.

use std::time::{Duration, Instant};

use super::error::ScimError;

/// Random fault rates; all off by default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Probability, 0 to 1, that a request is answered 503 before it does anything.
    pub error_rate: f64,
    /// Probability, 0 to 1, that a request is answered 429 with `Retry-After:
    /// retry_after_secs`.
    pub throttle_rate: f64,
    /// The `Retry-After` of a random 429, whole seconds.
    pub retry_after_secs: u64,
    /// After a random 429, every request to that org is answered 429 for this long
    /// (zero: no burst).
    pub throttle_burst: Duration,
    /// Seeds every org's generator.
    pub seed: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            error_rate: 0.0,
            throttle_rate: 0.0,
            retry_after_secs: 1,
            throttle_burst: Duration::ZERO,
            seed: 1,
        }
    }
}

impl Faults {
    /// Whether no request can draw a fault.
    pub fn is_off(&self) -> bool {
        self.error_rate <= 0.0 && self.throttle_rate <= 0.0
    }

    /// Refuses a rate outside [0, 1] (or not a number), naming it.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("throttle_rate", self.throttle_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name}: must be between 0 and 1, not {rate}"));
            }
        }
        Ok(())
    }
}

/// One org's generator and burst, behind the org's own lock.
#[derive(Debug, Default)]
pub(crate) struct OrgFaults {
    /// The generator and the faults' generation it was seeded for; `None` until the first
    /// draw.
    rng: Option<(u64, fastrand::Rng)>,
    /// Every request is answered 429 until then.
    burst_until: Option<Instant>,
}

/// The seed of the org at `index` (its position among the orgs added) under `seed`.
fn org_seed(seed: u64, index: u64) -> u64 {
    seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl OrgFaults {
    /// Draws this request's fault, if any. `generation` changes whenever the faults do, so
    /// the generator starts over from the seed; `index` is the org's position.
    pub fn draw(
        &mut self,
        faults: &Faults,
        generation: u64,
        index: u64,
        now: Instant,
    ) -> Result<(), ScimError> {
        let throttled = ScimError::Throttled {
            retry_after_secs: faults.retry_after_secs,
        };
        if self.burst_until.is_some_and(|until| now < until) {
            return Err(throttled);
        }
        let rng = match &mut self.rng {
            Some((g, rng)) if *g == generation => rng,
            slot => {
                &mut slot
                    .insert((
                        generation,
                        fastrand::Rng::with_seed(org_seed(faults.seed, index)),
                    ))
                    .1
            }
        };
        // Both numbers are drawn on every request, so the sequence of outcomes depends on
        // the seed and the order of requests only, not on which rates are on.
        let (throttle, error) = (rng.f64(), rng.f64());
        if throttle < faults.throttle_rate {
            if !faults.throttle_burst.is_zero() {
                self.burst_until = Some(now + faults.throttle_burst);
            }
            return Err(throttled);
        }
        if error < faults.error_rate {
            return Err(ScimError::Unavailable("injected random failure".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outcomes of `n` draws 1 ms apart: 'o' ok, 't' 429, 'e' 503.
    fn outcomes(faults: &Faults, n: u64) -> String {
        let mut org = OrgFaults::default();
        let t0 = Instant::now();
        (0..n)
            .map(
                |i| match org.draw(faults, 0, 3, t0 + Duration::from_millis(i)) {
                    Ok(()) => 'o',
                    Err(ScimError::Throttled { retry_after_secs }) => {
                        assert_eq!(retry_after_secs, faults.retry_after_secs);
                        't'
                    }
                    Err(ScimError::Unavailable(_)) => 'e',
                    Err(e) => panic!("unexpected {e}"),
                },
            )
            .collect()
    }

    fn share(s: &str, c: char) -> f64 {
        s.chars().filter(|&x| x == c).count() as f64 / s.len() as f64
    }

    #[test]
    fn rates_are_kept_and_seeds_repeat() {
        let off = Faults::default();
        assert!(off.is_off());
        assert!(outcomes(&off, 1000).chars().all(|c| c == 'o'));

        let always = Faults {
            error_rate: 1.0,
            ..Faults::default()
        };
        assert!(outcomes(&always, 100).chars().all(|c| c == 'e'));

        let some = Faults {
            error_rate: 0.3,
            throttle_rate: 0.1,
            retry_after_secs: 2,
            ..Faults::default()
        };
        let drawn = outcomes(&some, 20_000);
        // 429 first (10%), then 503 from the rest (30% of 90%).
        let (t, e) = (share(&drawn, 't'), share(&drawn, 'e'));
        assert!((0.09..0.11).contains(&t), "429 share {t}");
        assert!((0.25..0.29).contains(&e), "503 share {e}");
        assert_eq!(
            drawn,
            outcomes(&some, 20_000),
            "the same seed, the same draws"
        );
        let other = outcomes(&Faults { seed: 2, ..some }, 20_000);
        assert_ne!(drawn, other, "another seed, other draws");
    }

    #[test]
    fn a_drawn_429_starts_a_burst_on_that_org() {
        let faults = Faults {
            throttle_rate: 0.01,
            throttle_burst: Duration::from_millis(20),
            ..Faults::default()
        };
        // Draws 1 ms apart: each drawn 429 is followed by 19 more (the burst), then draws
        // resume.
        let drawn = outcomes(&faults, 5_000);
        let first = drawn.find('t').expect("some 429 in 5,000 draws");
        assert!(drawn[first..].starts_with(&"t".repeat(20)), "{drawn}");
        assert!(
            share(&drawn[first + 20..], 'o') > 0.5,
            "draws resume after the burst: {drawn}"
        );
        // The burst ends on time, whatever the rate.
        let mut org = OrgFaults::default();
        let t0 = Instant::now();
        let mut at = t0;
        while org.draw(&faults, 0, 0, at).is_ok() {
            at += Duration::from_millis(1);
        }
        assert!(
            org.draw(&faults, 0, 0, at + Duration::from_millis(19))
                .is_err()
        );
        let never = Faults {
            throttle_rate: 0.0,
            ..faults
        };
        assert!(
            org.draw(&never, 0, 0, at + Duration::from_millis(20))
                .is_ok()
        );
    }

    #[test]
    fn a_new_generation_starts_over_from_the_seed() {
        let faults = Faults {
            error_rate: 0.5,
            ..Faults::default()
        };
        let now = Instant::now();
        let mut org = OrgFaults::default();
        let first: Vec<bool> = (0..64)
            .map(|_| org.draw(&faults, 0, 0, now).is_ok())
            .collect();
        let again: Vec<bool> = (0..64)
            .map(|_| org.draw(&faults, 1, 0, now).is_ok())
            .collect();
        assert_eq!(first, again);
    }

    #[test]
    fn rates_outside_0_to_1_are_refused_by_name() {
        let cases = [
            (0.0, 0.0, None),
            (1.0, 1.0, None),
            (1.5, 0.0, Some("error_rate")),
            (-0.1, 0.0, Some("error_rate")),
            (0.0, f64::NAN, Some("throttle_rate")),
        ];
        for (error_rate, throttle_rate, wrong) in cases {
            let faults = Faults {
                error_rate,
                throttle_rate,
                ..Faults::default()
            };
            match (faults.validate(), wrong) {
                (Ok(()), None) => {}
                (Err(e), Some(name)) => assert!(e.starts_with(name), "{e}"),
                (got, _) => panic!("{error_rate}/{throttle_rate}: {got:?}"),
            }
        }
    }
}
