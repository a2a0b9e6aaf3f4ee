//! Service level objectives: specs in Sloth's and OpenSLO's formats, the
//! PromQL their indicators are written in, and the multi-window,
//! multi-burn-rate alerts of the SRE workbook.

mod answer;
mod budget;
pub mod burn;
pub mod cause;
mod gauges;
pub mod offline;
pub mod promql;
pub mod report;
pub mod spec;
pub mod stage;
