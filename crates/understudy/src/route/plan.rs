//! The order of candidates for one request: chain order, and a weighted random order among
//! the equivalent deployments of one step.

use std::sync::Arc;

use rand::Rng;

use super::table::{Deployment, Route};

/// Candidates in the order they will be tried.
pub fn candidates(route: &Route, rng: &mut impl Rng) -> Vec<Arc<Deployment>> {
    let mut out = Vec::with_capacity(route.steps.iter().map(Vec::len).sum());
    for step in &route.steps {
        weighted_order(step, rng, &mut out);
    }
    out
}

/// Appends `group` in a weighted random order: each position is drawn with probability
/// proportional to weight among those not yet drawn.
fn weighted_order(group: &[Arc<Deployment>], rng: &mut impl Rng, out: &mut Vec<Arc<Deployment>>) {
    if group.len() == 1 {
        out.extend(group.iter().cloned());
        return;
    }
    let mut left: Vec<&Arc<Deployment>> = group.iter().collect();
    while !left.is_empty() {
        let total: u64 = left.iter().map(|d| u64::from(d.weight.max(1))).sum();
        let mut pick = rng.random_range(0..total);
        let mut chosen = 0;
        for (i, d) in left.iter().enumerate() {
            let w = u64::from(d.weight.max(1));
            if pick < w {
                chosen = i;
                break;
            }
            pick -= w;
        }
        out.push(left.remove(chosen).clone());
    }
}
