//! A dependency that does not inherit its app's capabilities: the imports through which a
//! capability is granted are renamed, at the dependency's top level, to
//! `shoal-denied-…` plain names, so that in the composed component they are imports of their
//! own (never merged with the app's imports of the same interface), which the node answers as
//! denials.

use std::collections::BTreeSet;
use wasm_encoder::reencode::{self, Reencode, ReencodeComponent};

/// What every renamed import's name starts with.
pub const DENIED_PREFIX: &str = "shoal-denied-";

/// `wasm` with each top-level import whose name starts with one of `denied` renamed;
/// unchanged (`None`) when it has none.
///
/// # Errors
/// The component does not parse.
pub(crate) fn rename_denied(wasm: &[u8], denied: &[&str]) -> Result<Option<Vec<u8>>, String> {
    let mut renamer = Renamer {
        denied,
        depth: 0,
        taken: BTreeSet::new(),
        renamed: 0,
    };
    let mut out = wasm_encoder::Component::new();
    renamer
        .parse_component(&mut out, wasmparser::Parser::new(0), wasm)
        .map_err(|e| format!("cannot be read: {e}"))?;
    Ok((renamer.renamed > 0).then(|| out.finish()))
}

struct Renamer<'a> {
    denied: &'a [&'a str],
    /// How deep in nested components the reencoder is: only the top level is renamed.
    depth: u32,
    taken: BTreeSet<String>,
    renamed: usize,
}

impl Renamer<'_> {
    /// The plain name `interface` is imported under instead: `shoal-denied-` and its
    /// package and interface in kebab case (`shoal-denied-wasi-http-outgoing-handler`), with
    /// `-again` as often as needed to keep names unique (two versions of one interface).
    fn new_name(&mut self, interface: &str) -> String {
        let unversioned = interface.split('@').next().unwrap_or(interface);
        let words: Vec<String> = unversioned
            .split([':', '/', '-'])
            .filter(|w| !w.is_empty())
            .map(|w| w.to_ascii_lowercase())
            .collect();
        // A word of a plain name starts with a letter and holds only letters and digits.
        let kebab = words.iter().all(|w| {
            w.starts_with(|c: char| c.is_ascii_lowercase())
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
        let mut name = match kebab {
            true => format!("{DENIED_PREFIX}{}", words.join("-")),
            false => format!("{DENIED_PREFIX}import"),
        };
        while !self.taken.insert(name.clone()) {
            name.push_str("-again");
        }
        name
    }
}

impl Reencode for Renamer<'_> {
    type Error = std::convert::Infallible;
}

impl ReencodeComponent for Renamer<'_> {
    fn parse_component_subcomponent(
        &mut self,
        component: &mut wasm_encoder::Component,
        parser: wasmparser::Parser,
        subcomponent: &[u8],
        whole_component: &[u8],
    ) -> Result<(), reencode::Error<Self::Error>> {
        self.depth += 1;
        let done = reencode::component_utils::parse_component_subcomponent(
            self,
            component,
            parser,
            subcomponent,
            whole_component,
        );
        self.depth -= 1;
        done
    }

    fn parse_component_import_section(
        &mut self,
        imports: &mut wasm_encoder::ComponentImportSection,
        section: wasmparser::ComponentImportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        for import in section {
            let import = import?;
            let name = import.name.name;
            let ty = self.component_type_ref(import.ty)?;
            if self.depth == 0 && self.denied.iter().any(|d| name.starts_with(d)) {
                let renamed = self.new_name(name);
                self.renamed += 1;
                let plain = wasmparser::ComponentExternName {
                    name: &renamed,
                    implements: None,
                    version_suffix: None,
                    external_id: None,
                };
                imports.import(plain, ty);
            } else {
                imports.import(import.name, ty);
            }
        }
        Ok(())
    }
}
