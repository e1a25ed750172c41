//! Known deviations stay true: the recorded trace of every deviation in the
//! expectations file is judged again (by the one verdict path) and must
//! still fail its rule.

use super::{Campaign, display_path};
use crate::expectations::Expectations;
use scopebus_sim::model::Layout;
use scopebus_sim::rules::Rule;
use scopebus_sim::trace::TraceFile;

/// The deviations whose recorded trace no longer fails their rule: (rule,
/// what happened instead). Any such makes the run fail, so the file stays
/// true.
pub fn stale(
    campaign: &Campaign,
    layout: Layout,
    expectations: &Expectations,
) -> Vec<(Rule, String)> {
    let mut stale = Vec::new();
    for d in &expectations.deviations {
        let path = expectations.trace_path(d);
        let file = match TraceFile::read(&path) {
            Ok(file) => file,
            Err(e) => {
                stale.push((d.rule, format!("its trace cannot be used: {e}")));
                continue;
            }
        };
        let shown = display_path(&path);
        match campaign
            .target
            .diagnosis(layout)
            .judge(&file.entries)
            .failure
        {
            Some(f) if f.rule == d.rule => {}
            Some(f) => stale.push((
                d.rule,
                format!(
                    "its trace {shown} now fails {} instead: {}",
                    f.rule, f.message
                ),
            )),
            None => stale.push((d.rule, format!("its trace {shown} no longer fails"))),
        }
    }
    stale
}
