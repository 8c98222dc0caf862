//! Content a published Spin application names by digest: what the component sources and
//! files of a locked app become.

use shoal_api::Digest;

/// Content a locked app names: its digest, and its bytes when they are inline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// The digest of its bytes.
    pub digest: Digest,
    /// The bytes, when the locked app holds them.
    pub inline: Option<Vec<u8>>,
}

/// A dependency of a published application's component: its content, the export it names,
/// and whether it uses the component's capabilities (Spin's `inherit: All`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedDependency {
    /// Its Wasm.
    pub content: Content,
    /// The export of it that satisfies the import, when not the import's own name.
    pub export: Option<String>,
    /// Whether it gets the component's capabilities.
    pub inherit: bool,
}
