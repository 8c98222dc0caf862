//! Imports nothing on this node provides, answered as denials rather than refused at link
//! time.
//!
//! A platform's SDK may import every interface of its platform whether the app uses it or not
//! (Spin's Python SDK imports redis, MySQL, PostgreSQL, MQTT and LLM interfaces in every
//! component). Such a component must still instantiate and serve: for the packages the
//! caller names ([`AbsentImports`]), whatever the linker lacks is defined here, per component,
//! as functions that answer the interface's own error for a missing permission and write a
//! line in the workload's log. Imports of any other package that nothing links still fail
//! the load, naming the import: a typo in a WIT world is the user's to fix.
//!
//! The same answers serve the imports a composition renamed because a dependency was not
//! granted them ([`AbsentImports::ungranted`]): a dependency that does not inherit its app's
//! capabilities calls them and is denied, and its app's log says so.
//!
//! # Guarantees
//! - Only imports the linker does not already define are touched; a capability that links an
//!   interface always wins.
//! - A stub never grants anything: it returns an error value, an empty list or `none`, or
//!   traps when the function's type has none of those. No resource of an absent interface
//!   can be created, so its methods are never reached (they trap if they were); a resource
//!   another import defines (a `use`d type) stays that import's.

use crate::host::Host;
use wasmtime::Engine;
use wasmtime::component::types::{ComponentFunc, ComponentItem, Type};
use wasmtime::component::{Component, Linker, LinkerInstance, ResourceType, Val};

/// Which absent imports a component may have, and how calls to them are answered.
#[derive(Debug, Clone, Default)]
pub struct AbsentImports {
    /// The import names that may be absent: a prefix — a namespace (`spin:`) or a package
    /// (`fermyon:spin/`) — optionally followed by `*` and text the rest of the name must
    /// contain (`wasi:*@0.3.0-rc-`: every WASI 0.3 release candidate).
    pub packages: Vec<String>,
    /// The error cases a call is answered with, in order of preference: the first case of
    /// the function's error variant (or enum) that is named here, else its first case that
    /// carries a message.
    pub error_cases: Vec<String>,
    /// Import name prefixes that stand for interfaces a part of the component was not
    /// granted (a composition's renamed imports): answered the same way, logged as denials.
    pub ungranted: Vec<String>,
}

impl AbsentImports {
    /// No import may be absent: every one must be linked.
    pub fn none() -> Self {
        Self::default()
    }

    fn covers(&self, import: &str) -> bool {
        self.ungranted
            .iter()
            .any(|p| import.starts_with(p.as_str()))
            || self.packages.iter().any(|p| match p.split_once('*') {
                Some((prefix, within)) => import
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.contains(within)),
                None => import.starts_with(p.as_str()),
            })
    }
}

/// `linker` completed for `component`: every import `absent` covers that the linker lacks is
/// defined as a denial. `None` when the component imports nothing `absent` covers, so the
/// shared linker serves as it is.
///
/// # Errors
/// Only allocation failures; an import that still cannot be satisfied fails later, at
/// `instantiate_pre`, with wasmtime's message naming it.
pub(crate) fn complete(
    linker: &Linker<Host>,
    engine: &Engine,
    component: &Component,
    absent: &AbsentImports,
) -> wasmtime::Result<Option<Linker<Host>>> {
    let ty = component.component_type();
    let (covered, linked): (Vec<_>, Vec<_>) = ty
        .imports(engine)
        .partition(|(name, _)| absent.covers(name));
    if covered.is_empty() {
        return Ok(None);
    }
    // Resources the component's other imports define: an absent interface that `use`s one
    // refers to it and must not define it again.
    let resources_of = |import: &ComponentItem| match import {
        ComponentItem::ComponentInstance(i) => i
            .exports(engine)
            .filter_map(|(_, e)| match e.ty {
                ComponentItem::Resource(r) => Some(r),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut defined_elsewhere: Vec<ResourceType> = linked
        .iter()
        .flat_map(|(_, i)| resources_of(&i.ty))
        .collect();
    let mut linker = linker.clone();
    linker.allow_shadowing(false);
    for (name, import) in covered {
        let ComponentItem::ComponentInstance(instance) = &import.ty else {
            continue;
        };
        let mut root = linker.root();
        let Ok(mut defined) = root.instance(name) else {
            continue;
        };
        let ungranted = absent
            .ungranted
            .iter()
            .any(|p| name.starts_with(p.as_str()));
        for (item, export) in instance.exports(engine) {
            if let ComponentItem::Resource(r) = &export.ty
                && defined_elsewhere.contains(r)
            {
                continue;
            }
            // Defining what the linker already has fails (shadowing is off): that is the
            // capability's definition, which stays.
            let _ = stub(&mut defined, name, item, &export.ty, absent, ungranted);
        }
        defined_elsewhere.extend(resources_of(&import.ty));
    }
    Ok(Some(linker))
}

/// Defines one item of the absent interface `interface`.
fn stub(
    linker: &mut LinkerInstance<'_, Host>,
    interface: &str,
    item: &str,
    ty: &ComponentItem,
    absent: &AbsentImports,
    ungranted: bool,
) -> wasmtime::Result<()> {
    match ty {
        ComponentItem::Resource(_) => {
            linker.resource(item, ResourceType::host::<Absent>(), |_, _| Ok(()))
        }
        ComponentItem::ComponentFunc(func) => {
            let what = format!("{interface}#{item}");
            let answer = denial(func, absent);
            if func.async_() {
                linker.func_new_concurrent(item, move |accessor, _, _, results| {
                    let what = what.clone();
                    let answer = answer.clone();
                    Box::pin(async move {
                        accessor.with(|mut access| {
                            respond(access.data_mut(), &what, answer, ungranted, results)
                        })
                    })
                })
            } else {
                linker.func_new(item, move |mut store, _, _, results| {
                    respond(store.data_mut(), &what, answer.clone(), ungranted, results)
                })
            }
        }
        _ => Ok(()),
    }
}

/// The type of every resource of an absent interface; none is ever created.
struct Absent;

/// The value a call answers: the error result and the case's name (an empty list, `none`),
/// or `None` (a trap).
fn denial(func: &ComponentFunc, absent: &AbsentImports) -> Option<(Val, String)> {
    let result = match func.results().next() {
        Some(Type::Result(result)) => result,
        Some(Type::List(_)) => return Some((Val::List(Vec::new()), "an empty list".into())),
        Some(Type::Option(_)) => return Some((Val::Option(None), "none".into())),
        _ => return None,
    };
    let err = result.err()?;
    let (case, payload) = match &err {
        Type::Variant(variant) => {
            let cases: Vec<_> = variant
                .cases()
                .map(|c| (c.name.to_string(), c.ty))
                .collect();
            let (name, ty) = absent
                .error_cases
                .iter()
                .find_map(|want| cases.iter().find(|(n, _)| n == want))
                .or_else(|| cases.iter().find(|(_, t)| matches!(t, Some(Type::String))))?;
            (name.clone(), ty.clone())
        }
        Type::Enum(e) => {
            let names: Vec<_> = e.names().collect();
            let name = absent
                .error_cases
                .iter()
                .find(|want| names.contains(&want.as_str()))?;
            (name.clone(), None)
        }
        _ => return None,
    };
    let message = "not available: this node does not provide this interface".to_string();
    let value = match (&err, payload) {
        (Type::Enum(_), _) => Val::Enum(case.clone()),
        (_, None) => Val::Variant(case.clone(), None),
        (_, Some(Type::String)) => Val::Variant(case.clone(), Some(Box::new(Val::String(message)))),
        (_, Some(_)) => return None,
    };
    Some((Val::Result(Err(Some(Box::new(value)))), case))
}

/// Answers one call of `what` and logs it.
fn respond(
    host: &mut Host,
    what: &str,
    answer: Option<(Val, String)>,
    ungranted: bool,
    results: &mut [Val],
) -> wasmtime::Result<()> {
    host.workload()
        .metrics
        .denied(shoal_metrics::Denial::Import);
    let why = match ungranted {
        true => "a dependency called it, which its app did not grant it (inheritCapabilities)",
        false => "this node does not provide it",
    };
    let Some((value, case)) = answer else {
        host.workload()
            .event(&format!("{what}: {why}; the call traps"));
        wasmtime::bail!("{what}: {why}");
    };
    host.workload()
        .event(&format!("{what}: {why}; answered {case}"));
    if let Some(slot) = results.first_mut() {
        *slot = value;
    }
    Ok(())
}
