//! Static graphs: built once through [`GraphBuilder`], planned once into a [`Plan`], run many times.

pub mod build;
pub mod exec;
pub mod fuse;
pub mod ir;
pub mod plan;
pub mod profile;
mod record;
pub mod run;
pub mod run_batch;

pub use build::GraphBuilder;
pub use exec::{Engine, Executor};
pub use ir::{Graph, Node, Source, Value, ValueId};
pub use plan::{Plan, PlanOptions, PlanStats};
pub use profile::{NodeProfile, Profile};
pub use run::{NodeTiming, NonFinite};
