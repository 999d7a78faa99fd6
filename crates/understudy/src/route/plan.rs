//! The order of candidates for one request: chain order, and among the equivalent deployments of
//! one step either a weighted random order or, with `balance: latency`, power of two choices over
//! the peak-EWMA of time to first token. Health (open breakers, cooldowns) is checked by the
//! fallback loop at the moment of sending, since it can change while a request runs.

use std::sync::Arc;

use rand::Rng;

use super::table::{Deployment, Route};
use crate::config::Balance;

/// Candidates in the order they will be tried.
pub fn candidates(route: &Route, rng: &mut impl Rng) -> Vec<Arc<Deployment>> {
    let mut out = Vec::with_capacity(route.steps.iter().map(Vec::len).sum());
    for step in &route.steps {
        if step.len() == 1 {
            out.extend(step.iter().cloned());
            continue;
        }
        let mut left: Vec<&Arc<Deployment>> = step.iter().collect();
        while !left.is_empty() {
            let i = match route.balance {
                Balance::Weighted => weighted_pick(&left, rng),
                Balance::Latency => p2c_pick(&left, rng),
            };
            out.push(left.swap_remove(i).clone());
        }
    }
    out
}

/// An index drawn with probability proportional to weight.
fn weighted_pick(left: &[&Arc<Deployment>], rng: &mut impl Rng) -> usize {
    let total: u64 = left.iter().map(|d| u64::from(d.weight.max(1))).sum();
    let mut pick = rng.random_range(0..total.max(1));
    for (i, d) in left.iter().enumerate() {
        let w = u64::from(d.weight.max(1));
        if pick < w {
            return i;
        }
        pick -= w;
    }
    0
}

/// Two weighted draws; the one with the lower latency cost wins. Comparing only two keeps the
/// choice cheap and avoids herding every request onto the single fastest deployment.
fn p2c_pick(left: &[&Arc<Deployment>], rng: &mut impl Rng) -> usize {
    if left.len() == 1 {
        return 0;
    }
    let a = weighted_pick(left, rng);
    let mut b = weighted_pick(left, rng);
    if b == a {
        b = (a + 1 + rng.random_range(0..left.len() - 1)) % left.len();
    }
    if left[b].health.cost() < left[a].health.cost() {
        b
    } else {
        a
    }
}
