//! Typed composition (an App's `spec.dependencies`): a component's imports satisfied by other
//! components' exports before compilation, so that the calls between them are typed and in
//! memory (`wasm-compose`, of the wasm-tools release wasmtime 48 is built on).
//!
//! Each dependency is named by what it satisfies ([`names`]: an interface, a package, or a
//! plain import) and may name the export that satisfies it. The dependencies satisfy the
//! component's imports and each other's, so a dependency may have dependencies of its own in
//! the same list; a cycle is refused. Dependencies of one component (and one inheritance) are
//! one instance. What nothing satisfies stays an import of the composed component, for the
//! host, merged by name with the component's own; except that a dependency that does not
//! inherit the app's capabilities has its capability imports renamed first ([`deny`]), so
//! the node answers them as denials.
//!
//! Used by the server (to refuse a composition at apply, naming the dependency) and by the
//! node (to compose what it runs); it knows neither wasmtime nor the API.

mod deny;
mod names;

pub use deny::DENIED_PREFIX;
use names::{Name, unversioned};
use std::borrow::Cow;
use wasm_compose::graph::{Component, CompositionGraph, EncodeOptions, ExportIndex, InstanceId};
use wasmparser::{Validator, WasmFeatures};

/// One entry of `spec.dependencies`, its component read.
#[derive(Debug, Clone, Copy)]
pub struct Dependency<'a> {
    /// Its key: what it satisfies (`ns:pkg/iface@version`, `ns:pkg`, or a plain name).
    pub name: &'a str,
    /// The component.
    pub wasm: &'a [u8],
    /// What identifies the component (its digest): entries of one component and one
    /// inheritance share an instance.
    pub id: &'a str,
    /// The export that satisfies the import, when its name is not the import's.
    pub export: Option<&'a str>,
    /// Whether it may use the app's capabilities (`inheritCapabilities`); if not, every
    /// import of `denied` it has is answered as a denial.
    pub inherit: bool,
}

/// Why a composition is refused: the field, and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Refusal {
    /// `spec.dependencies["NAME"]`, `spec.dependencies` or `spec.component`.
    pub field: String,
    /// What is wrong, for the user.
    pub message: String,
}

impl From<std::io::Error> for Refusal {
    /// A file of the composition that cannot be read or written.
    fn from(e: std::io::Error) -> Self {
        Refusal {
            field: "spec.dependencies".into(),
            message: format!("cannot be composed: {e}"),
        }
    }
}

/// A dependency whose component is a file (see [`Dependency`]).
#[derive(Debug, Clone, Copy)]
pub struct DependencyFile<'a> {
    /// Its key: what it satisfies.
    pub name: &'a str,
    /// The component's file.
    pub path: &'a std::path::Path,
    /// What identifies the component (its digest).
    pub id: &'a str,
    /// The export that satisfies the import, when its name is not the import's.
    pub export: Option<&'a str>,
    /// Whether it may use the app's capabilities.
    pub inherit: bool,
}

/// [`compose`] of the component in file `root` with `dependencies` read from their files.
///
/// # Errors
/// As [`compose`], and a file that cannot be read (naming its field).
pub fn compose_files(
    root: &std::path::Path,
    dependencies: &[DependencyFile<'_>],
    denied: &[&str],
) -> Result<Vec<u8>, Refusal> {
    let read = |path: &std::path::Path, field: String| {
        std::fs::read(path).map_err(|e| Refusal {
            field,
            message: format!("cannot be read from {}: {e}", path.display()),
        })
    };
    let root = read(root, "spec.component".into())?;
    let wasm: Vec<Vec<u8>> = dependencies
        .iter()
        .map(|d| read(d.path, field(d.name)))
        .collect::<Result<_, _>>()?;
    let parts: Vec<Dependency<'_>> = dependencies
        .iter()
        .zip(&wasm)
        .map(|(d, wasm)| Dependency {
            name: d.name,
            wasm,
            id: d.id,
            export: d.export,
            inherit: d.inherit,
        })
        .collect();
    compose(&root, &parts, denied)
}

/// The field of dependency `name`.
pub fn field(name: &str) -> String {
    format!("spec.dependencies[\"{name}\"]")
}

/// `root` with its imports (and its dependencies' imports) satisfied by `dependencies`; the
/// composed component exports what `root` exports. `denied` lists the import name prefixes
/// through which capabilities are granted (`wasi:http/outgoing-handler`, …).
///
/// # Errors
/// A [`Refusal`] naming the dependency: it satisfies no import, it lacks the export, its
/// export's type does not match the import's, two dependencies satisfy one import, a
/// dependency would satisfy itself, or the dependencies form a cycle.
pub fn compose(
    root: &[u8],
    dependencies: &[Dependency<'_>],
    denied: &[&str],
) -> Result<Vec<u8>, Refusal> {
    let refuse = |field: String, message: String| Refusal { field, message };
    // One part per distinct (component, inheritance); `part_of[i]` is dependency i's part.
    let mut parts: Vec<(usize, Cow<'_, [u8]>)> = Vec::new();
    let mut part_of = Vec::with_capacity(dependencies.len());
    for (i, d) in dependencies.iter().enumerate() {
        if d.export.is_some() && !Name::parse(d.name).is_one_import() {
            return Err(refuse(
                field(d.name),
                "names a whole package, whose imports `export` cannot all be: name one interface (ns:pkg/iface) to give its export".into(),
            ));
        }
        let same = |&(first, _): &(usize, _)| {
            let f: &Dependency<'_> = &dependencies[first];
            f.id == d.id && f.inherit == d.inherit
        };
        if let Some(p) = parts.iter().position(same) {
            part_of.push(p);
            continue;
        }
        let wasm = match d.inherit {
            true => Cow::Borrowed(d.wasm),
            false => {
                match deny::rename_denied(d.wasm, denied).map_err(|e| refuse(field(d.name), e))? {
                    Some(renamed) => Cow::Owned(renamed),
                    None => Cow::Borrowed(d.wasm),
                }
            }
        };
        part_of.push(parts.len());
        parts.push((i, wasm));
    }

    let mut graph = CompositionGraph::new();
    // One validator for the whole graph: the types of its components are compared.
    let mut validator = Validator::new_with_features(WasmFeatures::all());
    fn read<'a>(
        validator: &mut Validator,
        name: String,
        wasm: Cow<'a, [u8]>,
        field: String,
    ) -> Result<Component<'a>, Refusal> {
        Component::from_bytes(validator, name, wasm).map_err(|e| Refusal {
            field,
            message: format!("is not a component that can be composed: {e:#}"),
        })
    }
    let root_id = graph
        .add_component(read(
            &mut validator,
            "root".into(),
            Cow::Borrowed(root),
            "spec.component".into(),
        )?)
        .map_err(|e| refuse("spec.component".into(), format!("{e:#}")))?;
    let root_instance = graph
        .instantiate(root_id)
        .map_err(|e| refuse("spec.component".into(), format!("{e:#}")))?;
    let mut instances: Vec<(Option<usize>, InstanceId)> = vec![(None, root_instance)];
    for (p, (first, wasm)) in parts.iter().enumerate() {
        let f = field(dependencies[*first].name);
        let name = format!("dependency-{}", letters(p));
        let component = read(&mut validator, name, wasm.clone(), f.clone())?;
        let id = graph
            .add_component(component)
            .map_err(|e| refuse(f.clone(), format!("{e:#}")))?;
        let instance = graph
            .instantiate(id)
            .map_err(|e| refuse(f, format!("{e:#}")))?;
        instances.push((Some(p), instance));
    }

    let mut used = vec![false; dependencies.len()];
    for &(who, instance) in &instances {
        let importer = match who {
            None => "the component".to_string(),
            Some(p) => format!("dependency \"{}\"", dependencies[parts[p].0].name),
        };
        let component = graph
            .get_component_of_instance(instance)
            .map(|(_, c)| c)
            .expect("instantiated above");
        let imports: Vec<_> = component
            .imports()
            .map(|(index, name, _)| (index, name.to_string()))
            .collect();
        for (index, import) in imports {
            let satisfying: Vec<usize> = (0..dependencies.len())
                .filter(|&i| Name::parse(dependencies[i].name).satisfies(&import))
                .collect();
            let d = match satisfying.as_slice() {
                [] => continue,
                [d] => *d,
                [a, b, ..] => {
                    return Err(refuse(
                        "spec.dependencies".into(),
                        format!(
                            "\"{}\" and \"{}\" both satisfy {import}, which {importer} imports; name it by one only",
                            dependencies[*a].name, dependencies[*b].name
                        ),
                    ));
                }
            };
            used[d] = true;
            let dependency = &dependencies[d];
            let part = part_of[d];
            if who == Some(part) {
                return Err(refuse(
                    field(dependency.name),
                    format!(
                        "the dependency imports {import}, which it is named to satisfy: a component cannot satisfy its own import"
                    ),
                ));
            }
            let (_, source) = instances[part + 1];
            let want = dependency.export.unwrap_or(&import);
            let export = export_named(&graph, source, want).ok_or_else(|| {
                refuse(
                    field(dependency.name),
                    format!(
                        "the dependency exports no {want} to satisfy {import}, which {importer} imports (it exports {})",
                        export_names(&graph, source)
                    ),
                )
            })?;
            graph
                .connect(source, Some(export), instance, index)
                .map_err(|e| {
                    let why = mismatch(&graph, source, export, instance, &import)
                        .unwrap_or_else(|| format!("{e:#}"));
                    refuse(
                        field(dependency.name),
                        format!(
                            "the dependency's {want} does not match the {import} {importer} imports: {why}"
                        ),
                    )
                })?;
        }
    }
    if let Some(d) = used.iter().position(|u| !u) {
        let imports = graph
            .get_component(root_id)
            .map(|c| {
                c.imports()
                    .map(|(_, n, _)| n.to_string())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        return Err(refuse(
            field(dependencies[d].name),
            format!(
                "neither the component nor its dependencies import what this names (the component imports {})",
                list(&imports)
            ),
        ));
    }
    graph
        .encode(EncodeOptions {
            define_components: true,
            export: Some(root_instance),
            validate: true,
        })
        .map_err(|e| {
            // The graph's names for the parts, as the user names them.
            let mut text = format!("{e:#}");
            for (p, (first, _)) in parts.iter().enumerate() {
                let ours = format!("component `dependency-{}`", letters(p));
                let theirs = format!("dependency \"{}\"", dependencies[*first].name);
                text = text.replace(&ours, &theirs);
            }
            let message = match text.contains("cycle") {
                true => format!("the dependencies form a cycle: {text}"),
                false => format!("cannot be composed: {text}"),
            };
            refuse("spec.dependencies".into(), message)
        })
}

/// The export of `instance`'s component named `name`, or one of the same interface at another
/// version.
fn export_named(
    graph: &CompositionGraph<'_>,
    instance: InstanceId,
    name: &str,
) -> Option<ExportIndex> {
    let (_, component) = graph.get_component_of_instance(instance)?;
    if let Some((index, ..)) = component.export_by_name(name) {
        return Some(index);
    }
    component
        .exports()
        .find(|(_, n, ..)| unversioned(n) == unversioned(name))
        .map(|(index, ..)| index)
}

/// Where export `export` of `source` differs from import `import` of `importer`, as the
/// component model's type check says it (`in greet: in parameter name: expected string,
/// found u32`); `None` when it finds no difference (the graph refused the connection for
/// something else).
fn mismatch(
    graph: &CompositionGraph<'_>,
    source: InstanceId,
    export: ExportIndex,
    importer: InstanceId,
    import: &str,
) -> Option<String> {
    let (_, exporter) = graph.get_component_of_instance(source)?;
    let (_, importer) = graph.get_component_of_instance(importer)?;
    let (name, ..) = exporter.export(export)?;
    let exported = exporter.types().component_item_for_export(name)?.ty;
    let imported = importer.types().component_item_for_import(import)?.ty;
    // Every component of the graph was validated by one validator, as the check needs.
    let mut check =
        wasmparser::component_types::SubtypeCx::new_with_refs(exporter.types(), importer.types());
    let error = check.component_entity_type(&exported, &imported, 0).err()?;
    let steps: Vec<String> = error
        .message()
        .lines()
        .map(|step| {
            step.replace("type mismatch in instance export ", "in ")
                .replace("type mismatch in function parameter ", "in parameter ")
                .replace("type mismatch in function result", "in the result")
                .replace("primitive ", "")
                .replace(" found ", ", found ")
                .replace(",, found ", ", found ")
                .replace('`', "")
        })
        .collect();
    Some(steps.join(": "))
}

fn export_names(graph: &CompositionGraph<'_>, instance: InstanceId) -> String {
    let names: Vec<String> = graph
        .get_component_of_instance(instance)
        .map(|(_, c)| c.exports().map(|(_, n, ..)| n.to_string()).collect())
        .unwrap_or_default();
    list(&names)
}

fn list(names: &[String]) -> String {
    match names.is_empty() {
        true => "nothing".into(),
        false => names.join(", "),
    }
}

/// `n` as letters (a, b, …, z, ba, …): component names are words that start with a letter.
fn letters(mut n: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).expect("ASCII")
}

#[cfg(test)]
mod tests;
