//! Larq's `CaseOptimizer`: each variable goes to the one optimizer whose predicate claims it, or
//! to the default optimizer.

use std::sync::Arc;

use super::{Optimizer, Updates};
use crate::error::{Error, Result};
use crate::graph::{Graph, ValueId};
use crate::layers::Weight;
use crate::train::Schedule;

/// Which variables an optimizer claims.
pub type Predicate = Arc<dyn Fn(&Weight) -> bool + Send + Sync>;

/// Routes variables by predicate, as Larq does: a variable claimed by two predicates, or a
/// predicate that claims nothing, is an error; unclaimed variables go to the default optimizer
/// (or, without one, are not trained, with a warning).
#[derive(Clone)]
pub struct CaseOptimizer {
    /// Name.
    pub name: String,
    /// (predicate, optimizer) pairs.
    pub pairs: Vec<(Predicate, Arc<dyn Optimizer>)>,
    /// For unclaimed variables.
    pub default: Option<Arc<dyn Optimizer>>,
}

impl std::fmt::Debug for CaseOptimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.pairs.iter().map(|(_, o)| o.name()).collect();
        write!(f, "CaseOptimizer({names:?}, default {:?})", self.default.as_ref().map(|d| d.name().to_string()))
    }
}

impl CaseOptimizer {
    /// A case optimizer over `pairs` with an optional default.
    pub fn new(pairs: Vec<(Predicate, Arc<dyn Optimizer>)>, default: Option<Arc<dyn Optimizer>>) -> Self {
        CaseOptimizer { name: "optimizer_case".into(), pairs, default }
    }

    /// The optimizer for `w`, or `None` when nothing claims it and there is no default.
    fn route(&self, w: &Weight) -> Result<Option<&Arc<dyn Optimizer>>> {
        let mut claims = self.pairs.iter().filter(|(p, _)| p(w)).map(|(_, o)| o);
        match (claims.next(), claims.next()) {
            (Some(_), Some(_)) => {
                Err(Error::invalid("CaseOptimizer", "predicates", format!("Variable `{}` claimed by multiple optimizers.", w.name)))
            }
            (Some(o), None) => Ok(Some(o)),
            (None, _) => Ok(self.default.as_ref()),
        }
    }
}

impl Optimizer for CaseOptimizer {
    fn describe(&self) -> String {
        let claimed: Vec<String> =
            self.pairs.iter().map(|(_, o)| format!("{} for the variables its predicate claims", o.describe())).collect();
        let rest = match &self.default {
            Some(d) => format!("{} for the rest", d.describe()),
            None => "the rest not trained".to_string(),
        };
        format!("CaseOptimizer ({}; {rest})", claimed.join("; "))
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn hyperparameters(&self) -> Vec<(String, Schedule)> {
        self.pairs.iter().map(|(_, o)| o).chain(&self.default).flat_map(|o| o.hyperparameters()).collect()
    }

    fn prepare(&self, weights: &[&Weight]) -> Result<Vec<String>> {
        let mut names: Vec<&str> = self.pairs.iter().map(|(_, o)| o.name()).chain(self.default.iter().map(|o| o.name())).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::invalid(
                "CaseOptimizer",
                "optimizers",
                format!("two optimizers are named `{}`; give each its own name", w[0]),
            ));
        }
        let mut warnings = Vec::new();
        for w in weights {
            if self.route(w)?.is_none() {
                warnings.push(format!("No `default_optimizer` provided to train variable `{}`.", w.name));
            }
        }
        for (p, o) in &self.pairs {
            if !weights.iter().any(|w| p(w)) {
                return Err(Error::invalid(
                    "CaseOptimizer",
                    "predicates",
                    format!("Optimizer `{}` did not claim any variables.", o.name()),
                ));
            }
        }
        for w in &warnings {
            log::warn!("{w}");
        }
        Ok(warnings)
    }

    fn update(&self, g: &mut Graph, u: &mut Updates, w: &Weight, grad: ValueId) -> Result<ValueId> {
        match self.route(w)? {
            Some(o) => o.update(g, u, w, grad),
            None => Ok(w.variable),
        }
    }
}
