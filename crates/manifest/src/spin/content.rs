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
