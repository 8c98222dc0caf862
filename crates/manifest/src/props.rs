//! Property tests: whatever text arrives, the parser answers objects or an error that names
//! the file — never a panic — and a well-formed App says what it was written to say.
#![cfg(test)]

use super::*;
use proptest::prelude::*;

fn valid_sources() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let mut texts: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    texts.sort();
    texts
}

/// Parses `text`; an error must name the source.
fn parses_or_names_the_file(text: &str) -> Result<(), TestCaseError> {
    if let Err(e) = parse("m.yaml", text) {
        prop_assert!(e.to_string().starts_with("m.yaml: "), "{e}");
        prop_assert!(!e.message.is_empty());
    }
    Ok(())
}

/// One edit of a manifest's text: cut a range, insert text, or repeat a line.
#[derive(Debug, Clone)]
enum Edit {
    Cut(usize, usize),
    Insert(usize, String),
    RepeatLine(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(at, n)| Edit::Cut(at, n)),
        (
            any::<usize>(),
            prop_oneof![
                Just(": ".to_string()),
                Just("\n  - ".to_string()),
                Just("{".to_string()),
                Just("[".to_string()),
                Just("&a ".to_string()),
                Just("*a".to_string()),
                Just("!!binary ".to_string()),
                Just("99999999999999999999Gi".to_string()),
                "[ -~\n]{0,12}",
            ]
        )
            .prop_map(|(at, s)| Edit::Insert(at, s)),
        any::<usize>().prop_map(Edit::RepeatLine),
    ]
}

fn apply(text: &str, edit: &Edit) -> String {
    let at = |i: usize| {
        let mut i = i % (text.len() + 1);
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    match edit {
        Edit::Cut(from, n) => {
            let from = at(*from);
            let mut to = (from + n).min(text.len());
            while !text.is_char_boundary(to) {
                to -= 1;
            }
            format!("{}{}", &text[..from], &text[to..])
        }
        Edit::Insert(i, s) => {
            let i = at(*i);
            format!("{}{s}{}", &text[..i], &text[i..])
        }
        Edit::RepeatLine(i) => {
            let lines: Vec<&str> = text.lines().collect();
            let n = i % lines.len().max(1);
            let mut out: Vec<&str> = lines.clone();
            if let Some(line) = lines.get(n) {
                out.insert(n, line);
            }
            out.join("\n")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_objects_or_an_error_naming_the_file(text in "\\PC{0,300}") {
        parses_or_names_the_file(&text)?;
    }

    #[test]
    fn edited_manifests_are_objects_or_an_error_naming_the_file(
        which in any::<usize>(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let sources = valid_sources();
        let mut text = sources[which % sources.len()].clone();
        for e in &edits {
            text = apply(&text, e);
        }
        parses_or_names_the_file(&text)?;
    }

    #[test]
    fn a_well_formed_app_says_what_it_was_written_to_say(
        name in "[a-z]([a-z0-9-]{0,30}[a-z0-9])?",
        path in "/[a-z0-9/_-]{0,20}",
        mib in 1u64..4096,
        concurrency in 1u32..10_000,
    ) {
        let text = format!(
            "apiVersion: shoal/v1alpha1\nkind: App\nmetadata: {{name: {name}}}\nspec:\n  component: ./a.wasm\n  routes: [{{path: \"{path}\"}}]\n  limits: {{memory: {mib}Mi, concurrency: {concurrency}}}\n"
        );
        let objects = parse("m.yaml", &text);
        // Paths with `//` or a trailing `/` are refused by the route rules; the rest parse.
        match objects {
            Ok(objects) => {
                let [Object::App(app)] = objects.as_slice() else {
                    return Err(TestCaseError::fail("not one App"));
                };
                prop_assert_eq!(&app.metadata.name, &name);
                prop_assert_eq!(&app.spec.routes[0].path, &path);
                prop_assert_eq!(app.spec.limits.memory.as_ref().map(shoal_api::Quantity::bytes), Some(mib << 20));
                prop_assert_eq!(app.spec.limits.concurrency, Some(concurrency));
            }
            Err(e) => prop_assert!(e.message.contains("path"), "{e}"),
        }
    }
}
